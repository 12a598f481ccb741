"""Turn whatever a party's source is (path, SQL URL, pandas or polars frame) into a pandas frame.

The frame that leaves here has text column names, a fresh 0..n-1 index and at least one row and
one column; its dtypes are still the reader's, the schema step normalises them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from pathlib import Path

import pandas as pd
import polars as pl

from fedtab.connectors.files import read_file, text_spellings
from fedtab.connectors.values import SPELLINGS
from fedtab.connectors.inference import check_column_names
from fedtab.errors import PartyError

Source = str | Path | pd.DataFrame | pl.DataFrame
_URL_START = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def is_sql_url(text: str) -> bool:
    """Whether a source string is a URL (``scheme://...``) rather than a file path."""
    return bool(_URL_START.match(text))


def read_source(
    party: str,
    source: Source,
    *,
    table: str | None = None,
    query: str | None = None,
    encoding: str = "utf-8",
    text_columns: Collection[str] = (),
) -> pd.DataFrame:
    """The party's rows as pandas, with reader dtypes; every failure is a PartyError naming the party."""
    sql = isinstance(source, str) and is_sql_url(source)
    if (table is not None or query is not None) and not sql:
        raise PartyError(
            f"party '{party}': table= and query= apply to SQL URLs only, but the source is "
            f"{_kind(source)}. Drop them, or pass a URL such as sqlite:///path.db."
        )
    if isinstance(source, pd.DataFrame):
        frame, label = source.copy(deep=False), "the pandas DataFrame"
    elif isinstance(source, pl.DataFrame):
        frame, label = _from_polars(party, source), "the polars DataFrame"
    elif sql:
        from fedtab.connectors.sql import read_sql  # SQLAlchemy loads only for a SQL source (0.14 s of every start)

        frame, label = read_sql(party, str(source), table=table, query=query), "the SQL source"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        raw = read_file(party, path, encoding=encoding, text_columns=text_columns)
        frame, label = _from_polars(party, raw), f"file '{path}'"
        tidy = _tidy(party, frame, label)
        tidy.attrs[SPELLINGS] = text_spellings(party, path, raw, encoding=encoding)
        return tidy
    else:
        raise PartyError(
            f"party '{party}': a source must be a file path, a SQLAlchemy URL, or a pandas or polars "
            f"DataFrame; got {_kind(source)}."
        )
    return _tidy(party, frame, label)


def _from_polars(party: str, frame: pl.DataFrame) -> pd.DataFrame:
    nested = [name for name, dtype in frame.schema.items() if dtype.is_nested() or dtype == pl.Object]
    if nested:
        raise PartyError(
            f"party '{party}': columns {nested} hold nested values (lists or structs); fedtab reads flat "
            "tables. Flatten or drop those columns."
        )
    return frame.to_pandas()


def _tidy(party: str, frame: pd.DataFrame, label: str) -> pd.DataFrame:
    if frame.shape[1] == 0:
        raise PartyError(f"party '{party}': {label} has no columns. Give the party a table with columns.")
    if frame.shape[0] == 0:
        raise PartyError(f"party '{party}': {label} has no rows. Give the party a table with rows.")
    frame = frame.copy(deep=False)
    frame.index = pd.RangeIndex(len(frame))
    frame.columns = [name if isinstance(name, str) else str(name) for name in frame.columns]
    check_column_names(frame.columns, party)
    return frame


def _kind(source: object) -> str:
    return f"{type(source).__name__} {source!r}" if isinstance(source, (str, os.PathLike)) else type(source).__name__
