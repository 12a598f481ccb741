"""How values spelled as text are read: null tokens, boolean words, numbers, dates.

Inference, casting and reconciliation all read text the same way through these helpers, so
a value that inference accepts is a value that the cast accepts. Each reader returns the
converted column and a mask of the rows it could not read, so callers can either tolerate
them or name them in an error.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype, is_bool_dtype, is_float_dtype, is_numeric_dtype
from pandas.tseries.api import guess_datetime_format

from fedtab.connectors.dtypes import datetime_dtype_of
from fedtab.errors import private

NULL_TOKENS: tuple[str, ...] = ("", "NA", "NaN", "null", "?")
TRUE_WORDS: frozenset[str] = frozenset({"true", "yes", "y", "1"})
FALSE_WORDS: frozenset[str] = frozenset({"false", "no", "n", "0"})
SPELLINGS = "fedtab_spellings"
"""Key in ``DataFrame.attrs`` where the file reader leaves how a CSV wrote each column's missing cells and booleans."""

DATE_SHARE: float = 0.95
"""Share of non-missing text values that must parse as dates for a column to be a date column."""

_DATE_SAMPLE = 10
_MAX_EXACT_FLOAT = 2.0**53


def as_text(series: pd.Series) -> pd.Series:
    """The column as object strings with missing values as ``None``; strings stay as written."""
    missing = series.isna()
    if is_float_dtype(series.dtype) and is_integral(series):
        series = series.astype("Int64")
    if infer_dtype(series, skipna=True) == "string" and series.dtype == object:
        return series.where(~missing, None)
    return series.astype(str).astype(object).where(~missing, None)


def is_integral(series: pd.Series) -> bool:
    """Whether every non-missing value is a whole number that a float holds exactly."""
    values = series.dropna().to_numpy(dtype="float64", na_value=np.nan)
    if values.size == 0:
        return True
    finite = np.isfinite(values)
    return bool(finite.all() and (np.abs(values) <= _MAX_EXACT_FLOAT).all() and (values == np.floor(values)).all())


MAX_DECIMALS = 6
"""Above this many places a float column is treated as continuous (no rounding on the way out)."""


def value_decimals(series: pd.Series) -> int | None:
    """The fewest decimal places that write every value exactly ('0.05' and '0.1': 2); None beyond ``MAX_DECIMALS``.

    A CSV tells its decimals by its text (``files.spellings``); a DataFrame only by its values, and
    without them a synthetic 0.0003 is written where the party's column holds 0.00 in four rows of five.
    """
    values = series.dropna().to_numpy(dtype="float64", na_value=np.nan)
    values = values[np.isfinite(values)]
    tolerance = 1e-9 * np.maximum(1.0, np.abs(values))
    for places in range(MAX_DECIMALS + 1):
        if (np.abs(values - np.round(values, places)) <= tolerance).all():
            return places
    return None


def integer_codes(series: pd.Series) -> bool:
    """Whether a categorical column holds integers (as numbers, or as text spelled exactly like them: '7', not '007')."""
    if is_bool_dtype(series.dtype) or series.notna().sum() == 0:
        return False
    if is_numeric_dtype(series.dtype):
        return is_integral(series)
    words = pd.Index(as_text(series).dropna().unique())
    numbers = pd.to_numeric(words, errors="coerce")
    if numbers.isna().any() or not is_integral(pd.Series(numbers)):
        return False
    return bool((pd.Index(numbers.astype("int64").astype(str)) == words).all())


def to_number(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Numbers from any column: the converted column and the rows that are not numbers."""
    if is_bool_dtype(series.dtype):
        return series.astype("Int64"), pd.Series(False, index=series.index)
    converted = pd.to_numeric(series, errors="coerce")
    return converted, series.notna() & converted.isna()


def is_boolean_pair(words: pd.Index) -> bool:
    """Whether the distinct values, ignoring case and spaces, are one true word and one false word."""
    lowered = {str(w).strip().lower() for w in words}
    return len(lowered) == 2 and len(lowered & TRUE_WORDS) == 1 and len(lowered & FALSE_WORDS) == 1


def boolean_tokens(series: pd.Series) -> tuple[str, str] | None:
    """The (true, false) words a text column spells its booleans with, the most frequent of each; None for bools."""
    if is_bool_dtype(series.dtype) or is_numeric_dtype(series.dtype) or infer_dtype(series, skipna=True) != "string":
        return None
    counts = as_text(series).value_counts(dropna=True)
    lowered = counts.index.str.strip().str.lower()
    true, false = counts[lowered.isin(TRUE_WORDS)], counts[lowered.isin(FALSE_WORDS)]
    if true.empty or false.empty:
        return None
    return str(true.index[0]), str(false.index[0])


def to_boolean(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Booleans from bools, 0/1 numbers or true/false/yes/no words, mapped once per distinct value."""
    if is_bool_dtype(series.dtype):
        return series.astype("boolean"), pd.Series(False, index=series.index)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    words = pd.Index(uniques).map(lambda u: str(u).strip().lower().removesuffix(".0"))
    mapped = np.where(words.isin(TRUE_WORDS), 1, np.where(words.isin(FALSE_WORDS), 0, -1))
    lookup = np.append(mapped, -2)  # code -1 (missing) reads slot -1
    per_row = lookup[codes]
    result = pd.array(np.where(per_row == 1, True, False), dtype="boolean")
    result[per_row < 0] = pd.NA
    return pd.Series(result, index=series.index), pd.Series(per_row == -1, index=series.index)


@dataclass(frozen=True)
class DateGuess:
    """A date format found in a text column, and how many non-missing rows it leaves unparsed."""

    format: str | None
    dtype: str
    rows: int
    unparsed_rows: int
    unparsed_example: str | None

    @property
    def share(self) -> float:
        return 1.0 - self.unparsed_rows / self.rows if self.rows else 0.0


def guess_date_format(counts: pd.Series) -> DateGuess | None:
    """The format that parses most rows, from the distinct values and their row counts.

    ``counts`` is a ``value_counts`` result (distinct text values, most frequent first). The
    candidates come from a few frequent values, read month-first and day-first; the one that
    parses the most rows wins. ISO 8601 with mixed precision is tried last and recorded with no
    single format. ``None`` when no value looks like a date.
    """
    values = pd.Series(counts.index.astype(str), dtype=object)
    candidates = _format_candidates(values.iloc[:_DATE_SAMPLE])
    if not candidates:
        return None
    weights = counts.to_numpy(dtype="int64")
    best: DateGuess | None = None
    for fmt in (*candidates, None):
        parsed, bad = to_datetime(values, fmt)
        unparsed = int(weights[bad.to_numpy()].sum())
        if best is None or unparsed < best.unparsed_rows:
            example = str(values[bad].iloc[0]) if unparsed else None
            best = DateGuess(fmt, datetime_dtype_of(parsed), int(weights.sum()), unparsed, example)
    return best


def _format_candidates(sample: pd.Series) -> list[str]:
    """Formats pandas guesses for a few values; only formats with a year and a month count."""
    found: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for value in sample:
            for dayfirst in (False, True):
                fmt = guess_datetime_format(value, dayfirst=dayfirst)
                if fmt and fmt not in found and _has_year_and_month(fmt):
                    found.append(fmt)
    return found


def _has_year_and_month(fmt: str) -> bool:
    return ("%Y" in fmt or "%y" in fmt) and any(m in fmt for m in ("%m", "%b", "%B"))


def to_datetime(series: pd.Series, fmt: str | None) -> tuple[pd.Series, pd.Series]:
    """Dates from text in ``fmt`` (ISO 8601 when ``None``), or from date objects as they are."""
    kind = infer_dtype(series, skipna=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if kind in ("datetime", "datetime64", "date"):
            converted = pd.to_datetime(series, errors="coerce")
        else:
            converted = _parse_text_dates(as_text(series), fmt or "ISO8601")
    return converted, series.notna() & converted.isna()


def _parse_text_dates(text: pd.Series, fmt: str) -> pd.Series:
    """Parse with one format; text with mixed UTC offsets is read as UTC rather than refused."""
    try:
        return pd.to_datetime(text, format=fmt, errors="coerce", cache=True)
    except ValueError:
        return pd.to_datetime(text, format=fmt, errors="coerce", cache=True, utc=True)


def describe_bad(series: pd.Series, bad: pd.Series) -> str:
    """A sample bad value and how many rows hold bad values, e.g. ``'unknown' in 3 rows``.

    Marked private: the party's own user reads it, an error reply on the wire withholds it.
    """
    total = int(bad.sum())
    counts = series[bad].astype(str).value_counts()
    value, count = counts.index[0], int(counts.iloc[0])
    text = f"{value!r} in {_rows(count)}"
    if total > count:
        text += f"; {_rows(total)} in all hold such values"
    return private(text)


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"
