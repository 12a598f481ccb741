"""Which pandas dtype a decoded column gets: the schema's, made nullable when it can be missing."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fedtab.schema import TableSchema


def is_textual(dtype: str) -> bool:
    """Text-like columns can hold the rare token as a value; others decode it as missing."""
    resolved = pd.api.types.pandas_dtype(dtype)
    return resolved == np.dtype(object) or isinstance(resolved, (pd.StringDtype, pd.CategoricalDtype))


def nullable(dtype: str) -> str:
    """The dtype that can hold missing values: int64 → Int64, uint8 → UInt8, bool → boolean."""
    resolved = pd.api.types.pandas_dtype(dtype)
    if isinstance(resolved, np.dtype) and resolved.kind in "iu":
        return ("Int" if resolved.kind == "i" else "UInt") + str(resolved.itemsize * 8)
    if isinstance(resolved, np.dtype) and resolved.kind == "b":
        return "boolean"
    return dtype


def is_integer_dtype(dtype: str) -> bool:
    return pd.api.types.is_integer_dtype(pd.api.types.pandas_dtype(dtype))


def dtype_problems(schema: TableSchema) -> list[str]:
    """Every column whose dtype pandas does not know, each with its place and fix."""
    problems = []
    for column in schema:
        try:
            pd.api.types.pandas_dtype(column.dtype)
        except TypeError:
            problems.append(
                f"column '{column.name}': dtype {column.dtype!r} is not a pandas dtype; "
                "use one such as 'int64', 'Int64', 'float64', 'object', 'string', 'bool', 'datetime64[ns]'."
            )
    return problems
