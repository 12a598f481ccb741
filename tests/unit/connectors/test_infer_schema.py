"""infer_schema: each rule of the brief on a tiny frame built here."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from fedtab.connectors import infer_schema, load_party
from fedtab.errors import ConfigError, SchemaError
from fedtab.schema import ColumnKind


def one(values: object, **kwargs: object):
    return infer_schema(pd.DataFrame({"x": values}), **kwargs)["x"]


def test_integers_are_integer_numerical() -> None:
    column = one([1, 2, 3])
    assert (column.kind, column.dtype, column.is_integer, column.has_missing) == (
        ColumnKind.NUMERICAL, "int64", True, False
    )


def test_whole_floats_with_nan_are_integer_and_nullable() -> None:
    column = one([1.0, np.nan, 3.0])
    assert (column.kind, column.dtype, column.is_integer, column.has_missing) == (
        ColumnKind.NUMERICAL, "Int64", True, True
    )


def test_fractional_floats_are_float() -> None:
    column = one([1.5, 2.0, np.nan])
    assert (column.dtype, column.is_integer, column.has_missing) == ("float64", False, True)


def test_numbers_held_as_python_objects_are_numerical() -> None:
    column = one(pd.Series([1, None, 3], dtype=object))
    assert (column.kind, column.dtype) == (ColumnKind.NUMERICAL, "Int64")


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        (["yes", "no", "yes"], "bool"),
        (["True", "false", "TRUE"], "bool"),
        (["0", "1", None], "boolean"),
        ([True, False, True], "bool"),
        (pd.Series([True, None, False], dtype="boolean"), "boolean"),
    ],
)
def test_two_boolean_words_are_boolean(values: object, dtype: str) -> None:
    column = one(values)
    assert (column.kind, column.dtype) == (ColumnKind.BOOLEAN, dtype)


@pytest.mark.parametrize("values", [["yes", "true", "yes"], ["yes", "yes"], ["yes", "no", "maybe"]])
def test_other_word_sets_stay_categorical(values: list[str]) -> None:
    assert one(values).kind is ColumnKind.CATEGORICAL


def test_zero_one_numbers_stay_numerical() -> None:
    assert one([0, 1, 1, 0]).kind is ColumnKind.NUMERICAL


@pytest.mark.parametrize(
    ("values", "fmt"),
    [
        (["2020-01-31", "2021-02-01", None], "%Y-%m-%d"),
        (["31/01/2020", "01/02/2021"], "%d/%m/%Y"),
        (["01/31/2020", "02/01/2021"], "%m/%d/%Y"),
        (["2020-01-31 10:00:00", "2021-02-01 23:59:59"], "%Y-%m-%d %H:%M:%S"),
    ],
)
def test_text_dates_are_datetime_with_their_format(values: list[str | None], fmt: str) -> None:
    column = one(values)
    assert (column.kind, column.dtype, column.datetime_format) == (ColumnKind.DATETIME, "datetime64[ns]", fmt)


def test_dates_tolerate_five_percent_that_do_not_parse() -> None:
    values = [f"2020-01-{d:02d}" for d in range(1, 29)] * 4 + ["soon"] * 4  # 112 dates, 4 others: 3.6 %
    column = one(values)
    assert column.kind is ColumnKind.DATETIME
    assert column.has_missing
    assert "4 of 116 values are not dates" in column.note
    assert "soon" not in column.note  # a schema note never carries a cell value


def test_text_with_too_many_non_dates_is_categorical() -> None:
    values = [f"2020-01-{d:02d}" for d in range(1, 19)] + ["soon", "later"]  # 10 % non-dates
    assert one(values).kind is ColumnKind.CATEGORICAL


def test_codes_that_look_like_years_are_not_dates() -> None:
    assert one(["2020", "2021", "1999"]).kind is ColumnKind.CATEGORICAL


def test_datetime_dtype_and_date_objects_are_datetime() -> None:
    frame = pd.DataFrame({
        "ts": pd.to_datetime(["2020-01-01", None]),
        "day": [dt.date(2020, 1, 1), dt.date(2020, 1, 2)],
        "utc": pd.to_datetime(["2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z"]),
    })
    schema = infer_schema(frame)
    assert [c.kind for c in schema] == [ColumnKind.DATETIME] * 3
    assert [c.dtype for c in schema] == ["datetime64[ns]", "datetime64[ns]", "datetime64[ns, UTC]"]
    assert schema["ts"].has_missing


def test_mostly_distinct_text_above_threshold_is_an_identifier() -> None:
    values = [f"user_{i}" for i in range(1200)]
    column = one(values)
    assert (column.kind, column.dtype) == (ColumnKind.IDENTIFIER, "object")
    assert column.note == (
        "identifier-like: 1200 distinct values in 1200 rows; not modelled, fresh ids are generated"
    )


def test_integer_ids_keep_their_integer_dtype() -> None:
    column = one(np.arange(2000))
    assert (column.kind, column.dtype, column.is_integer) == (ColumnKind.IDENTIFIER, "int64", True)
    assert column.note.endswith("fresh ids are generated; if it is a measurement, override it as numerical")


@pytest.mark.parametrize(
    ("values", "threshold"),
    [
        ([f"u{i}" for i in range(999)], 1000),  # distinct count under the threshold
        ([f"u{i % 1100}" for i in range(1200)], 1000),  # only 92 % distinct
        (np.linspace(0, 1, 5000), 1000),  # continuous floats are not ids
    ],
)
def test_not_identifier(values: object, threshold: int) -> None:
    assert one(values, id_threshold=threshold).kind is not ColumnKind.IDENTIFIER


def test_id_threshold_is_a_parameter() -> None:
    assert one([f"u{i}" for i in range(50)], id_threshold=50).kind is ColumnKind.IDENTIFIER


def test_all_missing_column_says_so() -> None:
    column = one([None, None, None])
    assert column.kind is ColumnKind.CATEGORICAL and column.has_missing
    assert "all 3 values are missing" in column.note


def test_overrides_win_over_inference() -> None:
    frame = pd.DataFrame({"zip": [1234, 5678], "flag": ["1", "0"], "n": ["1", "2"], "d": ["20200101", "20200102"]})
    schema = infer_schema(
        frame, overrides={"zip": "categorical", "flag": ColumnKind.CATEGORICAL, "n": "Numerical", "d": "datetime"}
    )
    assert [c.kind.value for c in schema] == ["categorical", "categorical", "numerical", "datetime"]
    assert schema["n"].dtype == "int64"
    assert schema["d"].datetime_format == "%Y%m%d"
    assert schema["zip"].note == "kind set by override"


def test_override_to_identifier() -> None:
    column = infer_schema(pd.DataFrame({"x": [3, 4]}), overrides={"x": "id"})["x"]
    assert (column.kind, column.dtype) == (ColumnKind.IDENTIFIER, "int64")


def test_override_that_the_values_refuse_names_them() -> None:
    frame = pd.DataFrame({"age": ["1", "unknown", "unknown", "3"]})
    with pytest.raises(SchemaError, match=r"Column 'age' of party 'p' is declared numerical but holds text "
                                          r"\('unknown' in 2 rows\)"):
        infer_schema(frame, overrides={"age": "numerical"}, party="p")


def test_override_boolean_on_other_words_is_refused() -> None:
    with pytest.raises(SchemaError, match=r"declared boolean.*'maybe' in 1 row\)"):
        infer_schema(pd.DataFrame({"x": ["yes", "maybe"]}), overrides={"x": "boolean"})


def test_unknown_override_kind_and_column_are_config_errors() -> None:
    frame = pd.DataFrame({"a": [1]})
    with pytest.raises(ConfigError, match=r"'float' is not a kind; use one of \['numerical'"):
        infer_schema(frame, overrides={"a": "float"})
    with pytest.raises(ConfigError, match=r"columns that party 'p' does not have: \['b'\]"):
        infer_schema(frame, overrides={"b": "numerical"}, party="p")


def test_bad_column_names_are_schema_errors() -> None:
    with pytest.raises(SchemaError, match="column name 0 is a int, not text"):
        infer_schema(pd.DataFrame({0: [1]}))
    with pytest.raises(SchemaError, match="column name 'a' appears more than once"):
        infer_schema(pd.DataFrame([[1, 2]], columns=["a", "a"]))


def test_unsupported_dtype_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="Column 'x' of party 'p' has dtype timedelta64"):
        infer_schema(pd.DataFrame({"x": pd.to_timedelta([1, 2], unit="s")}), party="p")


@pytest.mark.parametrize("threshold", [0, -3, 2.5, True])
def test_bad_id_threshold(threshold: object) -> None:
    with pytest.raises(ConfigError, match="id_threshold must be an int >= 1"):
        infer_schema(pd.DataFrame({"a": [1]}), id_threshold=threshold)  # type: ignore[arg-type]


@pytest.mark.slow
def test_million_rows_with_a_hundred_thousand_distinct_values() -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 100_000, 1_000_000)
    frame = pd.DataFrame({
        "category": pd.Series(np.char.add("c", codes.astype(str)), dtype=object),
        "user": pd.Series(np.char.add("u", np.arange(1_000_000).astype(str)), dtype=object),
    })
    schema = infer_schema(frame)
    assert schema["category"].kind is ColumnKind.CATEGORICAL
    assert schema["user"].kind is ColumnKind.IDENTIFIER
    assert schema["user"].note.startswith("identifier-like: 1000000 distinct values in 1000000 rows")


def test_mostly_unique_integer_measurement_is_numerical_not_an_identifier() -> None:
    """Adult's fnlwgt: ~all distinct, but spread far wider than a key would be."""
    weights = np.random.default_rng(0).integers(10_000, 1_500_000, size=2000)
    column = one(weights, id_threshold=1000)
    assert (column.kind, column.is_integer) == (ColumnKind.NUMERICAL, True)


def test_few_small_integers_are_coded_categories_with_a_note_on_changing_it() -> None:
    frame = pd.DataFrame({"SEX": [1, 2] * 33, "PAY_0": list(range(-2, 9)) * 6, "LIMIT": range(10_000, 10_660, 10)})
    schema = infer_schema(frame)
    assert [schema[c].kind for c in ("SEX", "PAY_0", "LIMIT")] == [ColumnKind.CATEGORICAL, ColumnKind.CATEGORICAL, ColumnKind.NUMERICAL]
    assert (schema["SEX"].dtype, schema["SEX"].is_integer) == ("int64", True)
    assert schema["SEX"].note.startswith("coded categorical") and "--column SEX=numerical" in schema["SEX"].note


def test_counts_wider_than_codes_stay_numerical() -> None:
    schema = infer_schema(pd.DataFrame({"big": [0, 50] * 26, "many": list(range(13)) * 4}))
    assert schema["big"].kind is ColumnKind.NUMERICAL and schema["many"].kind is ColumnKind.NUMERICAL
    assert infer_schema(pd.DataFrame({"x": [1, 2, 3]}))["x"].kind is ColumnKind.NUMERICAL


def test_a_kind_for_a_missing_column_names_it() -> None:
    with pytest.raises(ConfigError, match="'SEXX'"):
        infer_schema(pd.DataFrame({"SEX": [1, 2]}), overrides={"SEXX": "categorical"}, party="bank_a")


def test_a_dataframe_s_float_column_keeps_its_decimal_places_so_synthetic_values_are_written_on_its_grid():
    """A DataFrame has no text to read decimals from: its values tell them ('0.05': 2 places), so a synthetic
    0.0003 is written 0.0, as KDD's rate columns (real: 70-94 % zeros) need; a continuous column gets none."""
    from fedtab.sampler import spell

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"rate": np.where(rng.random(200) < 0.8, 0.0, rng.integers(1, 100, 200) / 100),
                          "reading": rng.normal(size=200)})
    schema = load_party("p", frame).schema
    assert schema["rate"].decimals == 2 and schema["reading"].decimals is None
    synthetic = pd.DataFrame({"rate": [0.0003, 0.4449, 0.999], "reading": [0.123456789, 1.0, 2.0]})
    written = spell(synthetic, schema)
    assert written["rate"].tolist() == [0.0, 0.44, 1.0]
    assert written["reading"].tolist() == synthetic["reading"].tolist()  # control: no grid, no rounding
