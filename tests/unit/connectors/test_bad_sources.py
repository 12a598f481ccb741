"""Every bad file or source ends in one PartyError that names the party and says what to do."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from fedtab.connectors import load_party
from fedtab.errors import PartyError, SchemaError


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(PartyError, match=rf"party 'x': file '{path}' does not exist; check the path"):
        load_party("x", path)


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(PartyError, match="is not a file"):
        load_party("x", tmp_path)


def test_ragged_row_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", "a,b\n1,2\n3,4,5\n6,7\n")
    with pytest.raises(PartyError, match=r"party 'x': .* not a well-formed CSV: line 3 has 3 fields but the "
                                         r"header has 2"):
        load_party("x", path)


def test_unclosed_quote_names_the_line_it_opens(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", 'a,b\n1,"x\n2,y\n3,z\n')
    with pytest.raises(PartyError, match=r"not a well-formed CSV: the record that starts on line 2 is malformed"):
        load_party("x", path)


def test_non_utf8_bytes_give_offset_and_fix(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", "city,n\nAachen,1\nM\xfcnchen,2\n".encode("latin-1"))
    with pytest.raises(PartyError, match=r"is not valid UTF-8 at byte offset 17 \(line 3\)\. Re-save it as UTF-8, "
                                         r"or pass encoding="):
        load_party("x", path)


def test_non_utf8_bytes_in_gzip_are_found_too(tmp_path: Path) -> None:
    path = tmp_path / "t.csv.gz"
    with gzip.open(path, "wb") as handle:
        handle.write("n,city\n1,M\xfcnchen\n".encode("latin-1"))
    with pytest.raises(PartyError, match=r"not valid UTF-8 at byte offset 10 \(line 2\)"):
        load_party("x", path)


def test_bytes_invalid_in_the_given_encoding(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", b"a\n\xff\n")
    with pytest.raises(PartyError, match=r"is not valid ascii: byte offset 2 \(line 2\) holds b'\\xff'"):
        load_party("x", path, encoding="ascii")


def test_unknown_encoding(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", "a\n1\n")
    with pytest.raises(PartyError, match="unknown encoding 'klingon'"):
        load_party("x", path, encoding="klingon")


@pytest.mark.parametrize("name", ["t.xlsx", "t.json", "t"])
def test_unsupported_extension(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name, "a\n1\n")
    with pytest.raises(PartyError, match="has an unsupported extension; fedtab reads .csv, .csv.gz, .tsv"):
        load_party("x", path)


@pytest.mark.parametrize(("content", "words"), [("", "is empty"), ("a,b\n", "has no rows")])
def test_empty_files(tmp_path: Path, content: str, words: str) -> None:
    path = write(tmp_path, "t.csv", content)
    with pytest.raises(PartyError, match=f"party 'x': file .* {words}"):
        load_party("x", path)


def test_corrupt_parquet(tmp_path: Path) -> None:
    path = write(tmp_path, "t.parquet", b"PAR1 this is not parquet")
    with pytest.raises(PartyError, match="is not a readable Parquet file"):
        load_party("x", path)


def test_empty_and_columnless_frames() -> None:
    with pytest.raises(PartyError, match="the pandas DataFrame has no rows"):
        load_party("x", pd.DataFrame({"a": []}))
    with pytest.raises(PartyError, match="the polars DataFrame has no columns"):
        load_party("x", pl.DataFrame())


def test_nested_polars_columns() -> None:
    with pytest.raises(PartyError, match=r"columns \['tags'\] hold nested values"):
        load_party("x", pl.DataFrame({"tags": [[1, 2], [3]], "n": [1, 2]}))


def test_python_lists_in_a_frame_are_read_as_their_text() -> None:
    party = load_party("x", pd.DataFrame({"tags": [[1, 2], [3], None]}))
    assert party.frame["tags"].tolist() == ["[1, 2]", "[3]", None]


def test_duplicate_column_names_in_a_frame() -> None:
    with pytest.raises(SchemaError, match="column name 'a' appears more than once"):
        load_party("x", pd.DataFrame([[1, 2]], columns=["a", "a"]))


def test_wrong_source_type() -> None:
    with pytest.raises(PartyError, match="a source must be a file path, a SQLAlchemy URL, or a pandas or polars "
                                         "DataFrame; got int"):
        load_party("x", 42)  # type: ignore[arg-type]


def test_table_with_a_file_source(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", "a\n1\n")
    with pytest.raises(PartyError, match="table= and query= apply to SQL URLs only"):
        load_party("x", path, table="t")
