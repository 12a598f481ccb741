"""The encoders on the real Adult table: 5 parties = pooled, known missing counts, exact round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fedtab.transformers import MISSING_TOKEN, fit_plan
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
