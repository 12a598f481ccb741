"""Bad input is refused at the entry with what was expected, what came, where, and the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eval_population import population
from fedtab.errors import ConfigError, PartyError, SchemaError
from fedtab.evaluators import build_context, evaluate, party_scores
from fedtab.evaluators.inputs import CATEGORICAL, NUMERICAL, prepare, resolve_layout
from fedtab.schema import ColumnKind, ColumnSchema, TableSchema


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return population(200, 1)


def test_mismatched_columns_name_every_difference(train):
    synthetic = train.drop(columns=["city"]).assign(extra=1)
    with pytest.raises(SchemaError, match="same columns") as info:
        evaluate(train, synthetic)
    assert any("'city'" in p for p in info.value.problems)
    assert any("'extra'" in p for p in info.value.problems)


def test_holdout_with_other_columns_is_refused(train):
    with pytest.raises(SchemaError, match="holdout table has \\['wealth'\\]"):
        evaluate(train.drop(columns=["wealth"]), train.drop(columns=["wealth"]), holdout=train)


@pytest.mark.parametrize("which", ["real", "synthetic", "holdout"])
def test_empty_table(train, which):
    tables = {"real": train, "synthetic": train, "holdout": train}
    tables[which] = train.iloc[:0]
    with pytest.raises(PartyError, match=f"The {which} table is empty"):
        evaluate(tables["real"], tables["synthetic"], holdout=tables["holdout"])


def test_target_missing_from_synthetic(train):
    with pytest.raises(SchemaError, match="target 'label' is missing from the synthetic table"):
        evaluate(train, train.drop(columns=["label"]), holdout=train, target="label")


def test_unknown_target_lists_the_columns(train):
    with pytest.raises(ConfigError, match="'income' is not a column of the real table; its columns are"):
        evaluate(train, train, holdout=train, target="income")


def test_missing_target_values_cannot_be_learned(train):
    holdout = population(100, 2)
    holdout.loc[[3, 7], "label"] = None
    with pytest.raises(SchemaError, match="target column 'label' of the holdout table is missing in 2 of 100 rows"):
        evaluate(train, train, holdout=holdout, target="label")


def test_text_in_a_numerical_column(train):
    synthetic = train.copy()
    synthetic["age"] = synthetic["age"].astype(object)
    synthetic.loc[5, "age"] = "unknown"
    with pytest.raises(SchemaError, match="Column 'age' of the real table holds text"):
        evaluate(synthetic, train)


def test_infinite_numbers_are_refused(train):
    bad = train.copy()
    bad.loc[0, "wealth"] = np.inf
    with pytest.raises(SchemaError, match="'wealth' of the synthetic table holds infinite values in 1 rows"):
        evaluate(train, bad)


def test_not_a_dataframe(train):
    with pytest.raises(ConfigError, match="must be a pandas DataFrame; got ndarray"):
        evaluate(train, train.to_numpy())


def test_bad_seed(train):
    with pytest.raises(ConfigError, match="seed must be an int >= 0"):
        evaluate(train, train, seed=-1)


def test_missing_features_are_handled_not_refused(train):
    report = evaluate(train, train, holdout=population(200, 2), target="label")
    assert train["sector"].isna().any() and train["hours"].isna().any()
    assert report.fidelity.column_shapes == pytest.approx(1.0)


def test_schema_kinds_win_and_identifiers_are_left_out():
    frame = pd.DataFrame({"id": range(6), "code": [1, 2, 1, 2, 1, 2], "when": pd.date_range("2024-01-01", periods=6), "flag": [True, False] * 3})
    schema = TableSchema((
        ColumnSchema("id", ColumnKind.IDENTIFIER, "int64"),
        ColumnSchema("code", ColumnKind.CATEGORICAL, "int64"),
        ColumnSchema("when", ColumnKind.DATETIME, "datetime64[ns]"),
        ColumnSchema("flag", ColumnKind.BOOLEAN, "bool"),
    ))
    layout = resolve_layout(frame, schema)
    assert layout.kinds == {"code": CATEGORICAL, "when": NUMERICAL, "flag": CATEGORICAL}
    assert layout.excluded == ("id",)
    prepared = prepare(frame, layout, "real")
    assert prepared["code"].tolist()[:2] == ["1", "2"]
    assert prepared["when"].iloc[1] - prepared["when"].iloc[0] == pytest.approx(86400.0)


def test_whole_numbers_are_one_category_however_typed():
    layout = resolve_layout(pd.DataFrame({"c": ["x"]}))
    ints = prepare(pd.DataFrame({"c": [1, 2, None]}), layout, "a")
    floats = prepare(pd.DataFrame({"c": [1.0, 2.0, np.nan]}), layout, "b")
    assert ints["c"].tolist()[:2] == floats["c"].tolist()[:2] == ["1", "2"]
    assert pd.isna(floats["c"].iloc[2])


def test_a_party_scored_against_another_synthetic_table_is_refused(train):
    context = build_context(train, seed=0)
    with pytest.raises(ConfigError, match="not the one the evaluation context was built on"):
        party_scores(train, population(200, 9), context=context)


def test_a_party_without_a_column_is_named(train):
    context = build_context(train, seed=0)
    with pytest.raises(SchemaError, match="party 'clinic_b' real table lacks columns the evaluation needs: \\['city'\\]"):
        party_scores(train.drop(columns=["city"]), train, context=context, party="clinic_b")


def test_without_a_schema_keys_are_left_out_and_text_dates_are_read():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "key": np.arange(1500) + 10_000,
        "visit": pd.date_range("2024-01-01", periods=1500, freq="h").strftime("%Y-%m-%d %H:%M"),
        "dose": rng.normal(5, 1, 1500),
    })
    layout = resolve_layout(frame)
    assert layout.excluded == ("key",) and layout.kinds == {"visit": NUMERICAL, "dose": NUMERICAL}
    report = evaluate(frame, frame.assign(key=frame["key"] + 1_000_000))
    assert report.fidelity.column_shapes == pytest.approx(1.0)
    assert "key" not in report.columns
