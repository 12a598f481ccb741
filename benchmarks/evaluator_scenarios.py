"""The Adult tables and issue 3's four synthetic scenarios, shared by the evaluator benchmarks.

Reads the benchmark files in place (never copies them into the repository). Jitter: each number
moves by Gaussian noise of 2 % of its column's standard deviation and 2 % of the categorical cells
are redrawn from the column's values.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(os.environ.get("FEDTAB_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))


def adult() -> tuple[pd.DataFrame, pd.DataFrame]:
    train, test = DATA / "adult_train.csv.gz", DATA / "adult_test.csv.gz"
    if not train.exists() or not test.exists():
        raise SystemExit(f"The Adult files are not at {DATA}; set FEDTAB_DATASETS to the folder that holds them.")
    return pd.read_csv(train, na_values=["?"]), pd.read_csv(test, na_values=["?"])


def jittered(frame: pd.DataFrame, share: float, rng: np.random.Generator) -> pd.DataFrame:
    out = frame.copy()
    for name in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[name]):
            out[name] = frame[name] + rng.normal(0, share * frame[name].std(), len(frame))
        else:
            redraw = rng.random(len(frame)) < share
            out.loc[redraw, name] = rng.choice(frame[name].dropna().to_numpy(), int(redraw.sum()))
    return out


def scenarios(seed: int = 0) -> dict[str, tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]:
    """name -> (train, synthetic, holdout)."""
    train, test = adult()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(test))
    half_a = test.iloc[order[: len(test) // 2]].reset_index(drop=True)
    half_b = test.iloc[order[len(test) // 2 :]].reset_index(drop=True)
    shuffled = pd.DataFrame({c: train[c].to_numpy()[rng.permutation(len(train))] for c in train.columns})
    return {
        "copy of train": (train, train, test),
        "2% jittered copy": (train, jittered(train, 0.02, rng), test),
        "half of test (fresh draws)": (train, half_a, half_b),
        "shuffled columns": (train, shuffled, test),
    }
