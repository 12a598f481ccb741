"""The schema round's release: what reconciliation needs, no value, and under DP no exact column fact."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pytest

from fedtab.connectors import load_party, reconcile
from fedtab.connectors.reconcile import reconcile_released
from fedtab.connectors.release import ReleasedSchema, release_schema
from fedtab.errors import SchemaError
from fedtab.schema import ColumnKind, TableSchema

SECRET = "never-a-date-9931"


def dated() -> pd.DataFrame:
    days = [f"2020-03-{d:02d}" for d in range(1, 29)] * 2 + [SECRET]  # 1 of 57 is not a date: tolerated
    return pd.DataFrame({"day": days, "count": [float(i) for i in range(56)] + [None], "flag": ["yes"] * 57})


def test_a_release_carries_no_note_and_no_value():
    table = load_party("a", dated())
    assert "not dates" in table.schema["day"].note  # the party's own note says so, without the value
    assert SECRET not in table.schema["day"].note
    released = release_schema(table, private=False)
    text = json.dumps(released.to_dict())
    assert SECRET not in text and all(c.note == "" for c in released.schema)
    assert ReleasedSchema.from_dict(json.loads(text)) == released


def test_without_dp_the_exact_facts_leave_and_under_dp_they_do_not():
    table = load_party("a", dated())
    exact = release_schema(table, private=False).schema
    assert exact["count"].has_missing and exact["count"].is_integer and exact["day"].datetime_format == "%Y-%m-%d"
    private = release_schema(table, private=True).schema
    assert not private["count"].has_missing and not private["count"].is_integer and private["count"].dtype == "float64"
    assert private["day"].datetime_format is None
    assert private["flag"].has_missing and private["flag"].dtype == "object"  # discrete: the noisy count decides


def test_under_dp_declared_facts_still_leave():
    table = load_party("a", dated())
    declared = TableSchema(tuple(replace(c, is_integer=True, has_missing=True) if c.name == "count" else c
                                 for c in table.schema))
    released = release_schema(table, private=True, declared=declared).schema["count"]
    assert released.is_integer and released.has_missing and released.dtype == "Int64"


def test_released_schemas_reconcile_like_the_parties_tables(demo_frames):
    tables = [load_party(name, frame) for name, frame in demo_frames.items()]
    from_values = reconcile(tables)
    from_releases = reconcile_released([release_schema(t, private=False) for t in tables])
    assert from_releases == TableSchema(tuple(replace(c, note="") for c in from_values))


def test_a_yes_only_party_reconciles_by_what_it_reports_not_by_its_values():
    a = load_party("a", pd.DataFrame({"flag": ["yes", "no"] * 6}))
    b = load_party("b", pd.DataFrame({"flag": ["yes"] * 12}))
    c = load_party("c", pd.DataFrame({"flag": ["yes", "maybe"] * 6}))
    assert b.schema["flag"].kind is ColumnKind.CATEGORICAL
    merged = reconcile_released([release_schema(t, private=True) for t in (a, b)])
    assert merged["flag"].kind is ColumnKind.BOOLEAN
    with pytest.raises(SchemaError, match="boolean in party 'a' but categorical in party 'c' .some values do not read as boolean"):
        reconcile_released([release_schema(t, private=True) for t in (a, c)])


def test_codes_at_one_party_and_numbers_at_another_reconcile_as_numerical_from_releases_alone():
    codes = load_party("a", pd.DataFrame({"grade": [1, 2, 3, 4] * 10}))
    numbers = load_party("b", pd.DataFrame({"grade": list(range(1, 41))}))
    words = load_party("c", pd.DataFrame({"grade": ["low", "high"] * 20}))
    assert (codes.schema["grade"].kind, numbers.schema["grade"].kind) == (ColumnKind.CATEGORICAL, ColumnKind.NUMERICAL)
    for private in (False, True):
        released = [release_schema(t, private=private) for t in (codes, numbers)]
        assert reconcile_released(released)["grade"].kind is ColumnKind.NUMERICAL
    with pytest.raises(SchemaError, match="grade"):  # control: text that is not numbers does not merge
        reconcile_released([release_schema(t, private=False) for t in (words, numbers)])
