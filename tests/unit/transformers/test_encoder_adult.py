"""The encoders on the real Adult table: 5 parties = pooled, known missing counts, exact round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fedtab.config import FedtabConfig
from fedtab.transformers import MISSING_TOKEN, fit_plan, mixture_log_likelihood
from transformer_tables import ADULT_NUMERICAL, split_parties

from fedtab.schema import PartyTable, TableSchema

pytestmark = pytest.mark.slow


def test_five_parties_match_pooled_on_adult(adult: tuple[pd.DataFrame, TableSchema]) -> None:
    frame, schema = adult
    federated = fit_plan(split_parties(frame, schema, 5), sample_cap=40_000)
    pooled = fit_plan([PartyTable("all", frame, schema)], sample_cap=40_000)
    for fed, pool in zip(federated.columns, pooled.columns):
        assert fed.vocabulary == pool.vocabulary and fed.counts == pool.counts
        for field in ("weights", "means", "stds"):
            np.testing.assert_allclose(getattr(fed, field), getattr(pool, field), rtol=1e-6)


CAPPED_LL_TOL = 0.005
"""Nats per row between five parties and one pooled party when the sample cap binds: each party draws
its own share of the cap with its own seed, so the EM runs on different rows (measured: at most
0.0006, capital-gain; 0.36 between capped and uncapped fits of the same column)."""


def test_five_parties_match_pooled_on_adult_when_the_default_sample_cap_binds(adult: tuple[pd.DataFrame, TableSchema]) -> None:
    frame, schema = adult
    cap = FedtabConfig().bgm_sample_cap  # 20,000 of 32,561 rows: the cap every Adult run works under
    federated = fit_plan(split_parties(frame, schema, 5), sample_cap=cap)
    pooled = fit_plan([PartyTable("all", frame, schema)], sample_cap=cap)
    uncapped = fit_plan([PartyTable("all", frame, schema)], sample_cap=len(frame))
    binds = []
    for name in ADULT_NUMERICAL:
        values = frame[name].to_numpy(dtype=np.float64)
        gap = _log_likelihood(federated, name, values) - _log_likelihood(pooled, name, values)
        assert abs(gap) < CAPPED_LL_TOL, (name, gap)
        binds.append(_log_likelihood(pooled, name, values) != _log_likelihood(uncapped, name, values))
    assert sum(binds) >= 3  # positive control: the cap changes the fit (fnlwgt, capital gain and loss)


def _log_likelihood(plan, name: str, values: np.ndarray) -> float:
    column = next(c for c in plan.columns if c.name == name)
    return mixture_log_likelihood(values, np.array(column.weights), np.array(column.means), np.array(column.stds))


def test_adult_missing_counts_and_round_trip(adult: tuple[pd.DataFrame, TableSchema]) -> None:
    frame, schema = adult
    plan = fit_plan(split_parties(frame, schema, 5))
    by_name = {c.name: c for c in plan.columns}
    for name, missing in {"workclass": 1836, "occupation": 1843, "native-country": 583}.items():
        column = by_name[name]
        assert column.vocabulary[-1] == MISSING_TOKEN and column.counts[-1] == missing
    decoded = plan.decode(plan.encode(frame, np.random.default_rng(0)), np.random.default_rng(0))
    assert list(decoded.columns) == list(frame.columns)
    for name in frame.columns:
        if name in ADULT_NUMERICAL:
            assert decoded[name].dtype == np.int64
            assert (decoded[name] == frame[name]).mean() > 0.97, name
        else:
            pd.testing.assert_series_equal(decoded[name], frame[name])
