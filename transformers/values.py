"""Read a party's column as model values: floats for numbers and dates, string labels for categories.

Parties and encoders must read a value the same way (the label '3' from an int column at one party
and from a float column with gaps at another must be the same category), so both go through here.
Work is done once per distinct value, never once per row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fedtab.errors import SchemaError, private

RARE_TOKEN = "__rare__"
MISSING_TOKEN = "__missing__"
RESERVED_TOKENS = (RARE_TOKEN, MISSING_TOKEN)

_TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "0.0"})
_EPOCH = pd.Timestamp(0, tz="UTC")


def _where(column: str, party: str | None) -> str:
    return f"Column '{column}'" + (f" of party '{party}'" if party else "")


def _examples(values: pd.Series) -> str:
    shown = ", ".join(repr(v) for v in values.unique()[:3])
    return f"{shown} in {len(values)} row{'s' if len(values) != 1 else ''}"


def numeric_values(
    series: pd.Series, *, column: str, party: str | None = None, is_datetime: bool = False,
    datetime_format: str | None = None,
) -> np.ndarray:
    """Float64 values (epoch seconds for dates); NaN marks missing, and so do ±inf."""
    if is_datetime:
        return _epoch_seconds(series, column=column, party=party, datetime_format=datetime_format)
    if pd.api.types.is_bool_dtype(series.dtype):
        series = series.astype("Float64")
    numbers = pd.to_numeric(series, errors="coerce")
    bad = numbers.isna() & series.notna()
    if bad.any():
        raise SchemaError(
            f"{_where(column, party)} holds text ({private(_examples(series[bad]))}); the schema says numerical. "
            "Clean those rows or declare the column categorical."
        )
    values = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    values[~np.isfinite(values)] = np.nan
    return values


def _epoch_seconds(series: pd.Series, *, column: str, party: str | None, datetime_format: str | None) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        stamps = pd.to_datetime(series, utc=True)
    else:
        stamps = pd.to_datetime(series, format=datetime_format or None, utc=True, errors="coerce")
        bad = stamps.isna() & series.notna()
        if bad.any():
            expected = f"format '{datetime_format}'" if datetime_format else "a recognisable date format"
            raise SchemaError(
                f"{_where(column, party)} holds values that are not dates in {expected} "
                f"({private(_examples(series[bad]))}). Fix those rows or set the column's datetime_format."
            )
    return ((stamps - _EPOCH) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64, na_value=np.nan)


def category_labels(
    series: pd.Series, *, column: str, party: str | None = None, boolean: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes per row (−1 for missing) and the distinct string labels they index.

    Integral numbers are labelled without a decimal point ('3', not '3.0'), so a column read as
    float because of gaps agrees with the same column read as int elsewhere.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    uniques = pd.Index(uniques)
    if boolean:
        labels = _boolean_labels(uniques, column=column, party=party)
    elif pd.api.types.is_numeric_dtype(uniques.dtype) and not pd.api.types.is_bool_dtype(uniques.dtype):
        labels = _number_labels(uniques.to_numpy(dtype=np.float64))
    else:
        labels = uniques.astype(str).to_numpy(dtype=object)
    merged_codes, merged = pd.factorize(labels)
    codes = np.append(merged_codes, -1).astype(np.int64)[codes]  # code −1 (missing) picks the appended −1
    return codes, np.asarray(merged, dtype=object)


def _number_labels(numbers: np.ndarray) -> np.ndarray:
    integral = np.isfinite(numbers) & (numbers == np.round(numbers)) & (np.abs(numbers) < 2**53)
    as_int = pd.Series(np.where(integral, numbers, 0).astype(np.int64)).astype(str).to_numpy(dtype=object)
    as_float = pd.Series(numbers).astype(str).to_numpy(dtype=object)
    return np.where(integral, as_int, as_float)


def _boolean_labels(uniques: pd.Index, *, column: str, party: str | None) -> np.ndarray:
    words = uniques.astype(str).str.strip().str.lower()
    truth = words.isin(_TRUE_WORDS)
    falsity = words.isin(_FALSE_WORDS)
    unknown = ~(truth | falsity)
    if unknown.any():
        shown = ", ".join(repr(v) for v in list(uniques[unknown])[:3])
        raise SchemaError(
            f"{_where(column, party)} holds {shown}; the schema says boolean (true/false, yes/no, 1/0). "
            "Clean those values or declare the column categorical."
        )
    return np.where(truth, "True", "False").astype(object)
