"""The pandas dtype each column kind is exported with, decided in one place.

Inference, declared metadata and reconciliation all end in a ``ColumnSchema.dtype``; deriving
it from (kind, integer, missing) here keeps the three agreeing.
"""

from __future__ import annotations

import pandas as pd
from pandas.api.types import is_datetime64_any_dtype

from fedtab.schema import ColumnKind

NAIVE_DATETIME = "datetime64[ns]"


def export_dtype(
    kind: ColumnKind, *, is_integer: bool, has_missing: bool, datetime_dtype: str = NAIVE_DATETIME
) -> str:
    """The dtype string for a column: nullable variants only when the column has missing values."""
    if kind is ColumnKind.NUMERICAL or (kind in (ColumnKind.IDENTIFIER, ColumnKind.CATEGORICAL) and is_integer):
        if is_integer:
            return "Int64" if has_missing else "int64"
        return "float64"
    if kind is ColumnKind.BOOLEAN:
        return "boolean" if has_missing else "bool"
    if kind is ColumnKind.DATETIME:
        return datetime_dtype
    return "object"


def datetime_dtype_of(series: pd.Series) -> str:
    """``datetime64[ns]``, keeping the time zone of a zone-aware column."""
    tz = getattr(series.dtype, "tz", None) if is_datetime64_any_dtype(series.dtype) else None
    return f"datetime64[ns, {tz}]" if tz is not None else NAIVE_DATETIME
