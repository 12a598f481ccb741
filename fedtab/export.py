"""Write synthetic tables to CSV or Parquet with polars, keeping names, order, dtypes and missing values."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import polars as pl

from fedtab.errors import ConfigError

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def export_table(frame: pd.DataFrame, path: str | Path) -> Path:
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(f"Output '{path}' must end in .parquet or .csv; got '{path.suffix or 'no suffix'}'.")
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pl.from_pandas(frame)
    if kind == "parquet":
        table.write_parquet(path)
    else:
        table.write_csv(path)
    return path
