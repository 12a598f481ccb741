"""Cast a party's frame to a schema: the dtypes every later stage relies on.

Every column is cast; every column that does not fit is reported, with the party, the column,
a sample bad value and the number of rows, in one ``SchemaError``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api.types import is_datetime64_any_dtype, is_float_dtype

from fedtab.connectors.values import as_text, describe_bad, to_boolean, to_datetime, to_number
from fedtab.errors import SchemaError, private
from fedtab.schema import ColumnKind, ColumnSchema, TableSchema


def conform(
    frame: pd.DataFrame, schema: TableSchema, *, party: str, date_tolerance: float = 0.0
) -> pd.DataFrame:
    """A new frame with the schema's columns, in its order, each cast to its export dtype.

    ``date_tolerance`` is the share of a text date column's values allowed not to parse (they
    become missing); inference uses the share it measured, a declared schema allows none.
    """
    missing = [name for name in schema.names if name not in frame.columns]
    if missing:
        raise SchemaError(
            f"Party '{party}' lacks columns the schema needs: {missing}. Add them or drop them from the schema."
        )
    columns: dict[str, pd.Series] = {}
    problems: list[str] = []
    for column in schema:
        try:
            columns[column.name] = cast_column(frame[column.name], column, party=party, date_tolerance=date_tolerance)
        except SchemaError as err:
            problems.append(err.marked)
    if problems:
        raise SchemaError(f"Party '{party}' does not fit the schema ({len(problems)} column(s)):", problems)
    return pd.DataFrame(columns, index=frame.index)


def cast_column(series: pd.Series, column: ColumnSchema, *, party: str, date_tolerance: float = 0.0) -> pd.Series:
    """One column cast to ``column.dtype``; a ``SchemaError`` says which values do not fit and the fix."""
    where = f"Column '{column.name}' of party '{party}'"
    if column.kind is ColumnKind.NUMERICAL or (column.kind is ColumnKind.IDENTIFIER and column.is_integer):
        return _numerical(series, column, where)
    if column.kind is ColumnKind.BOOLEAN:
        return _boolean(series, column, where)
    if column.kind is ColumnKind.DATETIME:
        return _datetime(series, column, where, date_tolerance)
    return _categorical(series, column, where)


def _numerical(series: pd.Series, column: ColumnSchema, where: str) -> pd.Series:
    if is_datetime64_any_dtype(series.dtype):
        raise SchemaError(f"{where} holds dates; the schema says {column.kind.value}. Set its kind to datetime (--column {column.name}=datetime).")
    numbers, bad = to_number(series)
    if bad.any():
        raise SchemaError(
            f"{where} holds text ({describe_bad(series, bad)}); the schema says {column.kind.value}. "
            f"Clean those rows or set its kind to categorical (--column {column.name}=categorical)."
        )
    if column.bounds is not None:
        _check_bounds(numbers, column, where)
    if column.is_integer:
        return _integers(numbers, column, where)
    return _astype(numbers, column.dtype, where)


def _check_bounds(numbers: pd.Series, column: ColumnSchema, where: str) -> None:
    low, high = column.bounds or (-np.inf, np.inf)
    outside = numbers.notna() & ((numbers < low) | (numbers > high))
    if outside.any():
        raise SchemaError(
            f"{where} holds values outside the declared bounds [{low}, {high}] ({describe_bad(numbers, outside)}). "
            "Widen the bounds or clean those rows."
        )


def _integers(numbers: pd.Series, column: ColumnSchema, where: str) -> pd.Series:
    if is_float_dtype(numbers.dtype):
        values = numbers.to_numpy(dtype="float64", na_value=np.nan)
        whole = np.isfinite(values) & (values == np.floor(values))
        fractional = numbers.notna() & ~whole
        if fractional.any():
            raise SchemaError(
                f"{where} holds values that are not whole numbers ({describe_bad(numbers, fractional)}); "
                "the schema says integer. Round them or declare the column as float (is_integer false)."
            )
    _refuse_missing(numbers, column, where)
    return _astype(_astype(numbers, "Int64", where), column.dtype, where)


def _boolean(series: pd.Series, column: ColumnSchema, where: str) -> pd.Series:
    values, bad = to_boolean(series)
    if bad.any():
        raise SchemaError(
            f"{where} holds values that are not booleans ({describe_bad(series, bad)}); the schema says boolean "
            f"(true/false, yes/no, 1/0). Clean those rows or set its kind to categorical (--column {column.name}=categorical)."
        )
    _refuse_missing(values, column, where)
    return _astype(values, column.dtype, where)


def _datetime(series: pd.Series, column: ColumnSchema, where: str, tolerance: float) -> pd.Series:
    if is_datetime64_any_dtype(series.dtype):
        return _astype(series, column.dtype, where)
    values, bad = to_datetime(series, column.datetime_format)
    if bad.sum() > tolerance * series.notna().sum():
        spelled = f"in format {column.datetime_format!r}" if column.datetime_format else "in ISO 8601"
        raise SchemaError(
            f"{where} holds values that are not dates {spelled} ({describe_bad(series, bad)}). "
            f"Fix those rows, set the column's datetime_format, or set its kind to categorical (--column {column.name}=categorical)."
        )
    return _astype(values, column.dtype, where)


def _categorical(series: pd.Series, column: ColumnSchema, where: str) -> pd.Series:
    text = as_text(series)
    if column.categories is not None:
        unknown = text.notna() & ~text.isin(column.categories)
        if unknown.any():
            raise SchemaError(
                f"{where} holds values outside the declared categories ({describe_bad(text, unknown)}). "
                "Add them to the categories or clean those rows."
            )
    if column.is_integer:
        return _codes(series, column, where)
    return text


def _codes(series: pd.Series, column: ColumnSchema, where: str) -> pd.Series:
    """Integer category codes stay integers, so they come back as written (1, not '1' or 1.0)."""
    numbers, bad = to_number(series)
    if bad.any():
        raise SchemaError(
            f"{where} holds text ({describe_bad(series, bad)}) where the schema has integer category codes. "
            f"Set the column's kind to categorical in every party (--column {column.name}=categorical), "
            "so every party reads it as text."
        )
    return _integers(numbers, column, where)


def _refuse_missing(values: pd.Series, column: ColumnSchema, where: str) -> None:
    """A non-nullable dtype (``int64``, ``bool``) cannot hold missing values; say so, don't coerce."""
    count = int(values.isna().sum())
    if count and column.dtype in ("int64", "bool"):
        nullable = "Int64" if column.dtype == "int64" else "boolean"
        raise SchemaError(
            f"{where} has {private(count)} missing values, but the schema's dtype {column.dtype} holds none. "
            f"Declare the column with dtype {nullable} (has_missing) or fill those rows."
        )


def _astype(values: pd.Series, dtype: str, where: str) -> pd.Series:
    try:
        return values.astype(dtype)
    except (TypeError, ValueError, OverflowError) as err:
        raise SchemaError(f"{where} cannot be stored as {dtype}: {private(err)}. Check the schema's dtype for it.") from err
