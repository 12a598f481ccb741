"""Read a party's CSV, TSV or Parquet file with polars, turning every failure into a PartyError.

polars reads UTF-8 (plain or gzip) natively; another encoding is decoded in Python first. When
polars refuses a file, its message rarely says where; the helpers at the bottom find the line
or byte offset on that error path only, so the user can open the file at the right place.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import polars as pl

from fedtab.connectors.values import NULL_TOKENS
from fedtab.errors import PartyError, private

SEPARATORS: dict[str, str] = {".csv": ",", ".csv.gz": ",", ".tsv": "\t", ".tsv.gz": "\t"}
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet", ".pq")
_CHUNK = 1 << 20
_CANDIDATES = (",", ";", "\t", "|")


def read_file(
    party: str, path: Path, *, encoding: str = "utf-8", text_columns: Collection[str] = ()
) -> pl.DataFrame:
    """The file's rows as polars; ``text_columns`` are read as text so their spelling is kept."""
    label = f"party '{party}': file '{path}'"
    if not path.exists():
        raise PartyError(f"{label} does not exist; check the path.")
    if not path.is_file():
        raise PartyError(f"{label} is not a file; pass the path of a .csv, .csv.gz, .tsv or .parquet file.")
    suffix = file_format(party, path)
    if suffix in PARQUET_SUFFIXES:
        frame = _read_parquet(label, path)
    else:
        frame = _read_text(label, path, _separator(path, suffix, encoding), encoding, text_columns)
    if frame.height == 0:
        raise PartyError(f"{label} has no rows (only a header, or nothing). Give the party a file with rows.")
    return frame


def file_format(party: str, path: Path) -> str:
    """The supported suffix the file name ends with (``.csv.gz`` counts as one)."""
    name = path.name.lower()
    for suffix in (*SEPARATORS, *PARQUET_SUFFIXES):
        if name.endswith(suffix):
            return suffix
    supported = ", ".join((*SEPARATORS, *PARQUET_SUFFIXES))
    raise PartyError(
        f"party '{party}': file '{path}' has an unsupported extension; fedtab reads {supported}, "
        "or a SQLAlchemy URL such as sqlite:///path.db?table=NAME. Convert the file or rename it."
    )


def _separator(path: Path, suffix: str, encoding: str) -> str:
    """The suffix's separator, unless the header holds none of it and one other candidate: a ';' CSV reads right."""
    expected = SEPARATORS[suffix]
    try:
        with _open_text(path, _codec("", encoding)) as handle:
            header = handle.readline()
    except (OSError, EOFError, PartyError):
        return expected
    if expected in header:
        return expected
    found = [c for c in _CANDIDATES if c != expected and c in header]
    return found[0] if len(found) == 1 else expected


def text_spellings(party: str, path: Path, frame: pl.DataFrame, *, encoding: str = "utf-8") -> dict[str, dict[str, str]]:
    """How a CSV wrote each column's missing cells ('?', 'NA') and booleans ('True', 'Y'), where polars read them.

    Only columns with nulls or booleans are re-read, as plain text, so the synthetic table can be
    written back in the file's spelling. Empty cells are the default and are not recorded.
    """
    suffix = file_format(party, path)
    wanted = [c for c in frame.columns if frame[c].dtype in (pl.Boolean, pl.Float64, pl.Float32) or frame[c].null_count() > 0]
    if suffix in PARQUET_SUFFIXES or not wanted:
        return {}
    codec = _codec(f"party '{party}'", encoding)
    source: Path | bytes = path if codec == "utf-8" else _reencode(f"party '{party}'", path, codec)
    raw = pl.read_csv(source, separator=_separator(path, suffix, encoding), columns=wanted, infer_schema=False)
    spellings: dict[str, dict[str, str]] = {}
    for name in wanted:
        typed, text = frame[name], raw[name]
        found = {"missing": _mode(text.filter(typed.is_null()))}
        if typed.dtype == pl.Boolean:
            found |= {"true": _mode(text.filter(typed.fill_null(False))), "false": _mode(text.filter(~typed.fill_null(True)))}
        if typed.dtype.is_float():
            found["decimals"] = _decimals(text.filter(typed.is_not_null()))
        spellings[name] = {k: v for k, v in found.items() if v}
    return {k: v for k, v in spellings.items() if v}


def _decimals(text: pl.Series) -> str | None:
    """The most decimal places a float column is written with ('0.05': 2); None for exponents ('1e-05')."""
    if text.str.contains("[eE]").any():
        return None
    places = text.str.extract(r"\.(\d*)$", 1).str.len_chars().max()
    return str(places or 0)


def _mode(text: pl.Series) -> str | None:
    """The most frequent spelling (ties: the first in sort order); None when all are empty cells."""
    counts = text.drop_nulls().value_counts(sort=True)
    if counts.height == 0 or counts[counts.columns[1]][0] < text.null_count():
        return None
    top = counts.filter(pl.col(counts.columns[1]) == counts[counts.columns[1]][0])
    return str(top[text.name].sort()[0])


def _read_parquet(label: str, path: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as err:
        raise PartyError(f"{label} is not a readable Parquet file: {private(_first_line(err))}. Re-export it.") from err


def _read_text(label: str, path: Path, separator: str, encoding: str, text_columns: Collection[str]) -> pl.DataFrame:
    codec = _codec(label, encoding)
    source: Path | bytes = path if codec == "utf-8" else _reencode(label, path, codec)
    try:
        return pl.read_csv(
            source,
            separator=separator,
            null_values=list(NULL_TOKENS),
            infer_schema_length=None,
            schema_overrides={name: pl.String for name in text_columns},
        )
    except pl.exceptions.NoDataError as err:
        raise PartyError(
            f"{label} is empty (0 bytes or no header). Give the party a file with a header and rows."
        ) from err
    except pl.exceptions.PolarsError as err:
        raise _explain(label, path, separator, codec, err) from err
    except OSError as err:
        raise PartyError(f"{label} cannot be read: {private(err)}. Check its permissions.") from err


def _codec(label: str, encoding: str) -> str:
    try:
        name = codecs.lookup(encoding).name
    except LookupError as err:
        raise PartyError(f"{label}: unknown encoding {encoding!r}. Pass e.g. encoding='utf-8' or 'latin-1'.") from err
    return "utf-8" if name in ("utf-8", "utf-8-sig") else name


def _reencode(label: str, path: Path, codec: str) -> bytes:
    """Decode a non-UTF-8 file in Python and hand polars UTF-8 bytes (polars cannot, for gzip)."""
    with _open_bytes(path) as handle:
        raw = handle.read()
    try:
        return raw.decode(codec).encode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise PartyError(
            f"{label} is not valid {codec}: byte offset {err.start} (line {line}) holds "
            f"{private(repr(raw[err.start:err.end]))}. Re-save it in {codec} or pass the right encoding=..."
        ) from err


def _explain(label: str, path: Path, separator: str, codec: str, err: pl.exceptions.PolarsError) -> PartyError:
    """A PartyError that says what is wrong with a CSV polars refused, and where."""
    message = str(err).lower()
    try:
        if "utf-8" in message or "utf8" in message:
            where = _first_bad_utf8(path)
            at = f" at byte offset {where[0]} (line {where[1]})" if where else ""
            return PartyError(
                f"{label} is not valid UTF-8{at}. Re-save it as UTF-8, or pass encoding=... "
                "(e.g. encoding='latin-1') to load_party."
            )
        problem = _csv_problem(path, separator, codec)
    except OSError:
        problem = None
    detail = private(problem or _first_line(err))
    return PartyError(f"{label} is not a well-formed CSV: {detail}. Fix that line or re-export the file.")


def _first_bad_utf8(path: Path) -> tuple[int, int] | None:
    """(byte offset, line) of the first byte that is not UTF-8, reading 1 MiB at a time."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, lines = 0, 1
    with _open_bytes(path) as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            pending = decoder.getstate()[0]
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as err:
                data = pending + chunk
                return offset - len(pending) + err.start, lines + data.count(b"\n", 0, err.start)
            offset += len(chunk)
            lines += chunk.count(b"\n")
    return None


def _csv_problem(path: Path, separator: str, codec: str) -> str | None:
    """The first ragged row or unclosed quote, found with the csv module (error path only)."""
    start = 1
    with _open_text(path, codec) as handle:
        reader = csv.reader(handle, delimiter=separator, strict=True)
        try:
            width = len(next(reader, []))
            start = reader.line_num + 1
            for record in reader:
                if record and len(record) != width:
                    return f"line {start} has {len(record)} fields but the header has {width}"
                start = reader.line_num + 1
        except csv.Error as err:
            return f"the record that starts on line {start} is malformed ({err}); is a quote left open?"
    return None


@contextmanager
def _open_bytes(path: Path) -> Iterator[IO[bytes]]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        yield handle


@contextmanager
def _open_text(path: Path, codec: str) -> Iterator[IO[str]]:
    with _open_bytes(path) as raw:
        yield io.TextIOWrapper(raw, encoding=codec, errors="replace", newline="")


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
