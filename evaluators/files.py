"""Read a table to evaluate from CSV or Parquet through polars; ``?`` and empty text are missing.

Adult, like many public tables, writes its missing values as ``?``; read as text they would
become a category of their own in every column that has them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import polars as pl

from fedtab.errors import ConfigError, PartyError

MISSING_TOKENS = ("?", "")
_CSV = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt")
_PARQUET = (".parquet", ".pq")


def read_table(path: str | Path, label: str) -> pd.DataFrame:
    """A pandas frame from a CSV (optionally gzipped) or Parquet file."""
    path = Path(path)
    if not path.is_file():
        raise PartyError(f"The {label} table '{path}' does not exist or is not a file. Check the path given with --{label}.")
    name = path.name.lower()
    try:
        if name.endswith(_PARQUET):
            frame = pl.read_parquet(path)
        elif name.endswith(_CSV):
            separator = "\t" if ".tsv" in name else ","
            frame = pl.read_csv(path, separator=separator, null_values=list(MISSING_TOKENS), infer_schema_length=10_000)
        else:
            raise ConfigError(
                f"The {label} table '{path}' is neither CSV ({', '.join(_CSV)}) nor Parquet ({', '.join(_PARQUET)}). "
                "Convert it, or rename it if the suffix is wrong."
            )
    except pl.exceptions.PolarsError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise PartyError(f"The {label} table '{path}' could not be read: {first}. Check that it is a well-formed file.") from error
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    frame = frame.with_columns([pl.when(pl.col(c).is_in(list(MISSING_TOKENS))).then(None).otherwise(pl.col(c)).alias(c) for c in text])
    return frame.to_pandas()
