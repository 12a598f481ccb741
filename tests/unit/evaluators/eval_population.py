"""A small seeded population with mixed columns, relationships, missing values and a learnable label.

Different seeds draw different people from the same distribution: ``population(n, 1)`` as train,
``population(n, 2)`` as holdout and ``population(n, 3)`` as a perfect generator's output.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def population(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(42, 12, n).round().clip(18, 90)
    education = rng.choice(["school", "bachelor", "master", "doctorate"], n, p=[0.4, 0.35, 0.2, 0.05])
    years = {"school": 12, "bachelor": 15, "master": 17, "doctorate": 20}
    schooling = np.vectorize(years.get)(education) + rng.integers(-1, 2, n)
    hours = (40 + 0.2 * (age - 42) + rng.normal(0, 8, n)).round(1)
    wealth = np.exp(9 + 0.02 * age + 0.1 * schooling + rng.normal(0, 0.6, n)).round(2)
    sector = rng.choice(["private", "public", "self"], n, p=[0.6, 0.3, 0.1]).astype(object)
    city = rng.choice([f"city{i}" for i in range(6)], n)
    logit = -9 + 0.05 * age + 0.35 * schooling + 0.03 * hours + np.where(sector == "self", 0.8, 0.0)
    label = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "high", "low")
    sector[rng.random(n) < 0.03] = None
    hours[rng.random(n) < 0.02] = np.nan
    return pd.DataFrame({
        "age": age, "education": education, "schooling": schooling.astype(np.int64), "hours": hours,
        "wealth": wealth, "sector": sector, "city": city, "label": label,
    })


def jittered(frame: pd.DataFrame, scale: float, seed: int) -> pd.DataFrame:
    """Numbers moved by ``scale`` of their standard deviation; that share of categories redrawn."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column):
            out[name] = column + rng.normal(0, scale * column.std(), len(frame))
        else:
            redraw = rng.random(len(frame)) < scale
            out.loc[redraw, name] = rng.choice(column.dropna().to_numpy(), int(redraw.sum()))
    return out


def shuffled(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Every column permuted on its own: the marginals stay, every relationship goes."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({name: frame[name].to_numpy()[rng.permutation(len(frame))] for name in frame.columns})
