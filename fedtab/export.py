"""Write synthetic tables to CSV or Parquet with polars, keeping names, order, dtypes, spellings and missing values."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import polars as pl

from fedtab.errors import ConfigError
from fedtab.schema import ColumnKind, TableSchema

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def export_table(frame: pd.DataFrame, path: str | Path, *, schema: TableSchema | None = None) -> Path:
    """Write ``frame``; with the run's ``schema``, a CSV writes dates in their files' format and missing
    numbers and dates with the files' marker ('?', 'NA'), as the parties' CSVs did."""
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(f"Output '{path}' must end in .parquet or .csv; got '{path.suffix or 'no suffix'}'.")
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pl.from_pandas(frame)
    if kind == "parquet":
        table.write_parquet(path)
    else:
        (table if schema is None else _as_written(table, schema)).write_csv(path)
    return path


def _as_written(table: pl.DataFrame, schema: TableSchema) -> pl.DataFrame:
    """Dates in their format and missing cells as their marker, column by column, for a CSV."""
    changes = []
    for column in schema:
        if column.name not in table.columns:
            continue
        expression = pl.col(column.name)
        dated = column.kind is ColumnKind.DATETIME and column.datetime_format and table[column.name].dtype.is_temporal()
        if dated:
            expression = expression.dt.strftime(column.datetime_format)
        if column.missing_token is not None and table[column.name].null_count():
            expression = expression.cast(pl.String).fill_null(column.missing_token)
        if dated or column.missing_token is not None:
            changes.append(expression)
    return table.with_columns(changes) if changes else table
