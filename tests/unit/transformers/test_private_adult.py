"""The private encoder fit on the real Adult table, 5 parties, at σ = 1: close to the non-private fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from private_fakes import gaussian_releases
from transformer_tables import ADULT_NUMERICAL, split_parties

from fedtab.schema import TableSchema
from fedtab.transformers import MISSING_TOKEN, PlanFitter, fit_plan, mixture_log_likelihood

# Per-value log-likelihood, private (σ = 1) vs the histogram-mode fit, the median over three noise
# draws: measured within 0.05 on every numerical column; capital gain and loss score ~8.9 higher (their
# zero spikes are pinned to the bound). One draw in three lands education-num in a local optimum that
# merges the 11 and 12 components (0.12 lower) — with or without the noise floor — hence the median.
ADULT_LL_TOL = 0.1
NOISE_DRAWS = (0, 10, 20)

pytestmark = pytest.mark.slow


def test_private_fit_on_adult_is_close_to_the_histogram_fit(adult: tuple[pd.DataFrame, TableSchema]) -> None:
    frame, schema = adult
    tables = split_parties(frame, schema, 5)
    assert PlanFitter.release_plan(schema) == (30, 9)
    draws = [gaussian_releases(tables, sigma=1.0, seed=seed) for seed in NOISE_DRAWS]
    fits = [fit_plan(tables, mode="private", noise_multiplier=1.0, releases=r, threshold_delta=1e-7) for r in draws]
    private = fits[0]
    reference = fit_plan(tables, mode="histogram")
    assert all(r.accountant.steps("encoder") == 30 for releases in draws for r in releases)
    for j, (mine, theirs) in enumerate(zip(private.columns, reference.columns)):
        if mine.name in ADULT_NUMERICAL:
            values = frame[mine.name].to_numpy(dtype=float)
            ours = np.median([_log_likelihood(values, fit.columns[j]) for fit in fits])
            assert ours >= _log_likelihood(values, theirs) - ADULT_LL_TOL, mine.name
        else:
            frequent = frame[mine.name].value_counts()
            assert set(frequent[frequent >= 100].index) <= set(mine.vocabulary), mine.name
    by_name = {c.name: c for c in private.columns}
    for name, missing in {"workclass": 1836, "occupation": 1843, "native-country": 583}.items():
        counts = dict(zip(by_name[name].vocabulary, by_name[name].counts))
        assert counts[MISSING_TOKEN] == pytest.approx(missing, abs=10)
    decoded = private.decode(private.encode(frame, np.random.default_rng(0)), np.random.default_rng(0))
    assert list(decoded.columns) == list(frame.columns)
    assert (decoded["age"] == frame["age"]).mean() > 0.9


def _log_likelihood(values: np.ndarray, column) -> float:  # type: ignore[no-untyped-def]
    return mixture_log_likelihood(values, *(np.array(getattr(column, f)) for f in ("weights", "means", "stds")))
