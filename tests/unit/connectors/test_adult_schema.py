"""Inference on the real Adult training file (read in place, never copied)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fedtab.connectors import check_party, load_party, reconcile

from fedtab.schema import ColumnKind

NUMERICAL = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]


@pytest.mark.slow
def test_adult_schema(adult_train_path: Path) -> None:
    party = load_party("adult", adult_train_path)
    numerical = [c.name for c in party.schema if c.kind is ColumnKind.NUMERICAL]
    categorical = [c.name for c in party.schema if c.kind is ColumnKind.CATEGORICAL]
    assert numerical == NUMERICAL
    assert all(party.schema[n].is_integer and party.schema[n].dtype == "int64" for n in numerical)
    assert len(categorical) == 9
    assert [c.name for c in party.schema if c.has_missing] == ["workclass", "occupation", "native-country"]
    missing = party.frame[["workclass", "occupation", "native-country"]].isna().sum().tolist()
    assert missing == [1836, 1843, 583]  # the '?' counts published by UCI
    assert (party.frame["income"].value_counts().to_dict()) == {"<=50K": 24720, ">50K": 7841}
    check_party(party, min_rows=100)
    assert reconcile([party]) == party.schema
