"""load_party on every source kind: the same table gives the same schema and the same frame."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from fedtab.connectors import infer_schema, load_party
from fedtab.errors import ConfigError, SchemaError
from fedtab.schema import ColumnKind, ColumnSchema, PartyTable, TableSchema

CSV = (
    "age,city,member,joined,score,code\n"
    "39,Paris,yes,2020-01-31,1.5,007\n"
    ",NA,no,2021-02-01,NaN,012\n"
    "41,?,yes,,2.25,?\n"
    "52,null,no,2019-12-24,,100\n"
)
EXPECTED_KINDS = {
    "age": ("numerical", "Int64"),
    "city": ("categorical", "object"),
    "member": ("boolean", "bool"),
    "joined": ("datetime", "datetime64[ns]"),
    "score": ("numerical", "float64"),
    "code": ("numerical", "Int64"),
}


def expected_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "age": pd.array([39, None, 41, 52], dtype="Int64"),
        "city": pd.Series(["Paris", None, None, None], dtype=object),
        "member": [True, False, True, False],
        "joined": pd.to_datetime(["2020-01-31", "2021-02-01", None, "2019-12-24"]),
        "score": [1.5, np.nan, 2.25, np.nan],
        "code": pd.array([7, 12, None, 100], dtype="Int64"),
    })


def write_sources(tmp_path: Path) -> dict[str, object]:
    """The same table as CSV, CSV.gz, TSV, Parquet, SQLite, pandas and polars."""
    (tmp_path / "t.csv").write_text(CSV)
    with gzip.open(tmp_path / "t.csv.gz", "wt") as handle:
        handle.write(CSV)
    (tmp_path / "t.tsv").write_text(CSV.replace(",", "\t"))
    frame = expected_frame()
    frame.to_parquet(tmp_path / "t.parquet")
    engine = sa.create_engine(f"sqlite:///{tmp_path / 't.db'}")
    frame.to_sql("people", engine, index=False)
    engine.dispose()
    return {
        "csv": tmp_path / "t.csv",
        "csv.gz": str(tmp_path / "t.csv.gz"),
        "tsv": tmp_path / "t.tsv",
        "parquet": tmp_path / "t.parquet",
        "sqlite": f"sqlite:///{tmp_path / 't.db'}?table=people",
        "pandas": frame,
        "polars": pl.from_pandas(frame),
    }


@pytest.mark.parametrize("kind", ["csv", "csv.gz", "tsv", "parquet", "sqlite", "pandas", "polars"])
def test_every_source_gives_the_same_table(tmp_path: Path, kind: str) -> None:
    party = load_party("a", write_sources(tmp_path)[kind])
    assert isinstance(party, PartyTable) and party.name == "a"
    assert {c.name: (c.kind.value, c.dtype) for c in party.schema} == EXPECTED_KINDS
    assert [str(party.frame[c.name].dtype) for c in party.schema] == [c.dtype for c in party.schema]
    pd.testing.assert_frame_equal(party.frame, expected_frame())


def test_null_tokens_are_missing_and_text_is_kept_as_written(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("name,n\n Ann ,1\nNA,2\nnull,3\n?,4\n,5\nNaN,6\nnan,7\n")
    party = load_party("a", path)
    assert party.frame["name"].tolist() == [" Ann ", None, None, None, None, None, "nan"]
    assert party.schema["name"].has_missing


def test_categorical_override_keeps_leading_zeros(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(CSV)
    party = load_party("a", path, overrides={"code": "categorical"})
    assert party.frame["code"].tolist() == ["007", "012", None, "100"]
    assert party.schema["code"].dtype == "object"


def test_categorical_override_keeps_whole_numbers_integers() -> None:
    party = load_party("a", pd.DataFrame({"n": [1.0, np.nan, 3.0]}), overrides={"n": "categorical"})
    assert party.frame["n"].tolist() == [1, pd.NA, 3]
    assert (party.schema["n"].kind.value, party.schema["n"].dtype, party.schema["n"].is_integer) == ("categorical", "Int64", True)


def test_latin1_file_with_encoding(tmp_path: Path) -> None:
    path = tmp_path / "t.csv.gz"
    with gzip.open(path, "wb") as handle:
        handle.write("city,n\nMünchen,1\nZürich,2\n".encode("latin-1"))
    party = load_party("a", path, encoding="latin-1")
    assert party.frame["city"].tolist() == ["München", "Zürich"]


def test_identifier_column_is_kept_with_its_note() -> None:
    frame = pd.DataFrame({"id": [f"p{i}" for i in range(30)], "v": range(30)})
    party = load_party("a", frame, id_threshold=20)
    assert party.schema["id"].kind is ColumnKind.IDENTIFIER
    assert party.frame["id"].iloc[3] == "p3"


def test_input_frame_is_not_modified_and_index_is_fresh() -> None:
    frame = pd.DataFrame({"a": ["1", "0"], 7: [1.0, 2.0]}, index=[10, 20])
    before = frame.copy()
    party = load_party("a", frame)
    pd.testing.assert_frame_equal(frame, before)
    assert list(party.frame.index) == [0, 1]
    assert list(party.frame.columns) == ["a", "7"]
    assert party.frame["a"].tolist() == [True, False]


def test_dates_that_do_not_parse_become_missing_within_tolerance() -> None:
    values = [f"2020-03-{d:02d}" for d in range(1, 29)] + ["never"]
    party = load_party("a", pd.DataFrame({"d": values}))
    assert party.frame["d"].isna().sum() == 1
    assert party.schema["d"].has_missing


def metadata_schema() -> TableSchema:
    return TableSchema((
        ColumnSchema("score", ColumnKind.NUMERICAL, "float64"),
        ColumnSchema("age", ColumnKind.NUMERICAL, "Int64", is_integer=True),
        ColumnSchema("code", ColumnKind.CATEGORICAL, "object"),
        ColumnSchema("member", ColumnKind.BOOLEAN, "boolean"),
        ColumnSchema("joined", ColumnKind.DATETIME, "datetime64[ns]", datetime_format="%Y-%m-%d"),
        ColumnSchema("city", ColumnKind.CATEGORICAL, "object"),
    ))


def test_metadata_is_checked_not_inferred(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(CSV)
    party = load_party("a", path, metadata=metadata_schema())
    assert party.schema.names == ["score", "age", "code", "member", "joined", "city"]
    assert list(party.frame.columns) == party.schema.names
    assert party.frame["code"].tolist() == ["007", "012", None, "100"]
    assert party.schema["member"].dtype == "bool"  # no missing here, so the plain dtype
    assert party.schema["age"].has_missing and party.schema["age"].dtype == "Int64"
    assert [str(party.frame[c.name].dtype) for c in party.schema] == [c.dtype for c in party.schema]


def test_metadata_that_does_not_match_lists_every_column(tmp_path: Path) -> None:
    frame = pd.DataFrame({"score": [1.0], "extra": [1]})
    with pytest.raises(SchemaError) as raised:
        load_party("b", frame, metadata=metadata_schema())
    problems = raised.value.problems
    assert "column 'age' is in the metadata but not in party 'b'" in problems
    assert "column 'extra' of party 'b' is not in the metadata" in problems
    assert len(problems) == 6


def test_metadata_values_that_do_not_fit_are_named() -> None:
    metadata = TableSchema((ColumnSchema("age", ColumnKind.NUMERICAL, "int64", is_integer=True, bounds=(0, 120)),))
    with pytest.raises(SchemaError, match=r"Column 'age' of party 'b' holds values outside the declared bounds "
                                          r"\[0, 120\] \('130' in 2 rows\)"):
        load_party("b", pd.DataFrame({"age": [5, 130, 130]}), metadata=metadata)
    with pytest.raises(SchemaError, match=r"not whole numbers \('2.5' in 1 row\)"):
        load_party("b", pd.DataFrame({"age": [5, 2.5]}), metadata=metadata)


def test_kinds_set_by_the_user_win_over_the_metadata() -> None:
    frame = pd.DataFrame({"score": [1.0, 2.0], "age": [30, 40], "code": ["a", "b"], "member": [True, False],
                          "joined": ["2020-01-01", "2020-02-01"], "city": ["x", "y"]})
    party = load_party("a", frame, overrides={"score": "categorical", "city": "id"}, metadata=metadata_schema())
    assert (party.schema["score"].kind, party.schema["city"].kind) == (ColumnKind.CATEGORICAL, ColumnKind.IDENTIFIER)
    with pytest.raises(ConfigError, match=r"columns the metadata does not have: \['nope'\]"):
        load_party("a", frame, overrides={"nope": "categorical"}, metadata=metadata_schema())


@pytest.mark.parametrize("name", ["", "  ", None])
def test_party_needs_a_name(name: object) -> None:
    with pytest.raises(ConfigError, match="party name must be non-empty text"):
        load_party(name, pd.DataFrame({"a": [1]}))  # type: ignore[arg-type]


cells = st.one_of(
    st.none(),
    st.integers(-1000, 1000),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from(["a", "b", "yes", "no", "2020-01-02", "?"]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(cells, cells, cells), min_size=1, max_size=12))
def test_loaded_dtypes_always_match_the_schema(rows: list[tuple[object, object, object]]) -> None:
    frame = pd.DataFrame(rows, columns=["x", "y", "z"])
    party = load_party("h", frame, id_threshold=5)
    assert [str(party.frame[c.name].dtype) for c in party.schema] == [c.dtype for c in party.schema]
    assert party.frame.isna().to_numpy().sum() >= frame.isna().to_numpy().sum()
    assert infer_schema(party.frame, id_threshold=5).names == party.schema.names
