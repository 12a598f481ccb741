"""The encoders on the real Adult table: 5 parties = pooled, known missing counts, exact round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from transformer_tables import split_parties

from fedtab.schema import ColumnKind, ColumnSchema, PartyTable, TableSchema
from fedtab.transformers import MISSING_TOKEN, fit_plan

ADULT = Path("/work/shared/datasets/adult_train.csv.gz")
NUMERICAL = ("age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ADULT.exists(), reason=f"the Adult benchmark file {ADULT} is not on this machine"),
]


@pytest.fixture(scope="module")
def adult() -> tuple[pd.DataFrame, TableSchema]:
    frame = pd.read_csv(ADULT, na_values="?")
    schema = TableSchema(
        tuple(
            ColumnSchema(c, ColumnKind.NUMERICAL, "int64", is_integer=True)
            if c in NUMERICAL
            else ColumnSchema(c, ColumnKind.CATEGORICAL, "object", has_missing=bool(frame[c].isna().any()))
            for c in frame.columns
        )
    )
    return frame, schema


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
        if name in NUMERICAL:
            assert decoded[name].dtype == np.int64
            assert (decoded[name] == frame[name]).mean() > 0.97, name
        else:
            pd.testing.assert_series_equal(decoded[name], frame[name])
