"""Schema inference: decide each column's kind from its values, or take the kind a user declares.

Every check works on whole columns or on the distinct values (``value_counts``), never row by
row, so a million-row column with a hundred thousand distinct values stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

import numpy as np
import pandas as pd
from pandas.api.types import (
    infer_dtype,
    is_bool_dtype,
    is_complex_dtype,
    is_datetime64_any_dtype,
    is_numeric_dtype,
)

from fedtab.connectors.dtypes import datetime_dtype_of, export_dtype
from fedtab.connectors.values import (
    DATE_SHARE,
    SPELLINGS,
    as_text,
    boolean_tokens,
    describe_bad,
    guess_date_format,
    is_boolean_pair,
    integer_codes,
    is_integral,
    to_boolean,
    to_datetime,
    to_number,
    value_decimals,
)
from fedtab.errors import ConfigError, SchemaError
from fedtab.schema import ColumnKind, ColumnSchema, TableSchema

PACKED_SPAN = 2.0
ID_SHARE = 0.95
"""Share of non-missing rows that must be distinct for a column to be identifier-like."""

CODED_MAX_DISTINCT = 12
"""At most this many distinct integers (credit default's PAY_0 holds 11: -2..8) for a column to read as codes."""
CODED_MAX_MAGNITUDE = 20
"""Codes are small: every value within ±20. Counts and measurements reach further and stay numerical."""
CODED_REPEATS = 5
"""Codes repeat: at least this many rows per distinct value on average, so [1, 2, 3] stays a number."""
CODED_NOTE = "coded categorical"
"""How a column's note starts when inference read its few small integers as category codes."""

_NUMBER_OBJECTS = frozenset({"integer", "floating", "mixed-integer-float", "decimal", "integer-na"})
_DATE_OBJECTS = frozenset({"datetime", "datetime64", "date"})
_BOOLEAN_CANDIDATES = 16

Overrides = Mapping[str, "str | ColumnKind"]


def infer_schema(
    frame: pd.DataFrame,
    *,
    overrides: Overrides | None = None,
    id_threshold: int = 1000,
    party: str = "?",
) -> TableSchema:
    """Infer each column's kind, export dtype and missingness; ``overrides`` win over inference.

    Parameters
    ----------
    frame : the party's rows, with text column names.
    overrides : column -> kind ("numerical", "categorical", "boolean", "datetime", "id").
    id_threshold : distinct count from which a mostly-unique text or integer column is an identifier.
    party : the party's name, used in error messages.
    """
    if isinstance(id_threshold, bool) or not isinstance(id_threshold, int) or id_threshold < 1:
        raise ConfigError(f"id_threshold must be an int >= 1; got {id_threshold!r}. Pass e.g. id_threshold=1000.")
    check_column_names(frame.columns, party)
    kinds = parse_kinds(overrides, party=party)
    unknown = sorted(set(kinds) - set(frame.columns))
    if unknown:
        raise ConfigError(
            f"Column kinds are set for columns that party '{party}' does not have: {unknown}; "
            f"its columns are {list(frame.columns)}. Fix the names in --column, [columns] or columns=."
        )
    written = frame.attrs.get(SPELLINGS, {})
    columns = (
        infer_column(frame[name], kind=kinds.get(name), id_threshold=id_threshold, party=party,
                     decimals_written="decimals" in written.get(name, {}))
        for name in frame.columns
    )
    return spelled(TableSchema(tuple(columns)), frame)


def spelled(schema: TableSchema, frame: pd.DataFrame) -> TableSchema:
    """The schema with the spellings the synthetic table is written back in: a CSV's missing marker and
    boolean words (left by the reader in ``frame.attrs``), or the words of a text column read as booleans."""
    found = frame.attrs.get(SPELLINGS, {})
    columns = []
    for column in schema:
        seen = found.get(column.name, {})
        tokens = column.tokens
        if column.kind is ColumnKind.BOOLEAN and tokens is None:
            if "true" in seen and "false" in seen:
                tokens = (seen["true"], seen["false"])
            elif column.name in frame.columns:
                tokens = boolean_tokens(frame[column.name])
        decimals = int(seen["decimals"]) if "decimals" in seen and not column.is_integer else column.decimals
        columns.append(replace(column, tokens=tokens if column.kind is ColumnKind.BOOLEAN else None,
                               missing_token=seen.get("missing", column.missing_token),
                               decimals=decimals if column.kind is ColumnKind.NUMERICAL else None))
    return TableSchema(tuple(columns))


def parse_kinds(overrides: Overrides | None, *, party: str = "?") -> dict[str, ColumnKind]:
    """Column -> ColumnKind from the words users write; every unknown word is reported at once."""
    kinds: dict[str, ColumnKind] = {}
    problems: list[str] = []
    for column, kind in (overrides or {}).items():
        try:
            kinds[column] = kind if isinstance(kind, ColumnKind) else ColumnKind(str(kind).strip().lower())
        except ValueError:
            problems.append(f"column '{column}': {kind!r} is not a kind; use one of {[k.value for k in ColumnKind]}")
    if problems:
        raise ConfigError(f"Invalid overrides for party '{party}':\n" + "\n".join(f"  - {p}" for p in problems))
    return kinds


def check_column_names(names: Iterable[object], party: str) -> None:
    """Column names must be unique text, since the schema addresses columns by name."""
    index = pd.Index(list(names), dtype=object)
    problems = [f"column name {n!r} is a {type(n).__name__}, not text" for n in index if not isinstance(n, str)]
    problems += [f"column name {n!r} appears more than once" for n in index[index.duplicated()].unique()]
    if problems:
        raise SchemaError(f"Party '{party}' has column names fedtab cannot use; rename them:", problems)


def infer_column(
    series: pd.Series, *, kind: ColumnKind | None = None, id_threshold: int = 1000, party: str = "?",
    decimals_written: bool = False,
) -> ColumnSchema:
    """One column's schema: detected from the values, or checked against a declared ``kind``.

    ``decimals_written``: the party's file writes the values with a decimal point ('1.0'), so whole
    values stay floats instead of becoming integers or integer codes.
    """
    name = str(series.name)
    present = int(series.notna().sum())
    if kind is None and present == 0:
        note = f"all {len(series)} values are missing; the kind is taken from the other parties"
        return ColumnSchema(name, ColumnKind.CATEGORICAL, "object", has_missing=len(series) > 0, note=note)
    typed = _typed(series, name, party)
    if kind is not None:
        return _declared(typed, name, kind, party)
    if is_bool_dtype(typed.dtype):
        return _boolean(typed, name)
    if is_datetime64_any_dtype(typed.dtype):
        return _datetime(typed, name)
    if is_numeric_dtype(typed.dtype):
        return _numerical(typed, name, present, id_threshold, decimals_written)
    return _text(typed, name, present, id_threshold)


def _typed(series: pd.Series, name: str, party: str) -> pd.Series:
    """Object columns that hold numbers, booleans or dates as Python objects get a typed dtype."""
    dtype = series.dtype
    if is_complex_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype) or isinstance(
        dtype, (pd.PeriodDtype, pd.IntervalDtype)
    ):
        raise SchemaError(
            f"Column '{name}' of party '{party}' has dtype {dtype}, which fedtab does not model. "
            "Convert it to numbers, text or dates before loading."
        )
    if dtype != object:
        return series
    found = infer_dtype(series, skipna=True)
    if found in _NUMBER_OBJECTS:
        return pd.to_numeric(series)
    if found == "boolean":
        return series.astype("boolean")
    if found in _DATE_OBJECTS:
        return to_datetime(series, None)[0]
    return series


def _boolean(series: pd.Series, name: str, note: str = "") -> ColumnSchema:
    missing = bool(series.isna().any())
    dtype = export_dtype(ColumnKind.BOOLEAN, is_integer=False, has_missing=missing)
    return ColumnSchema(name, ColumnKind.BOOLEAN, dtype, has_missing=missing, note=note)


def _datetime(series: pd.Series, name: str, note: str = "") -> ColumnSchema:
    missing = bool(series.isna().any())
    return ColumnSchema(name, ColumnKind.DATETIME, datetime_dtype_of(series), has_missing=missing, note=note)


def _numerical(series: pd.Series, name: str, present: int, id_threshold: int, decimals_written: bool = False) -> ColumnSchema:
    integer = is_integral(series) and not decimals_written
    missing = bool(series.isna().any())
    if integer and _coded(series):
        return _coded_categorical(series, name, missing)
    distinct = int(series.nunique(dropna=True)) if integer and present >= id_threshold else 0
    if _id_like(distinct, present, id_threshold) and _packed(series, distinct):
        note = _id_note(distinct, present) + "; if it is a measurement, override it as numerical"
        return _identifier(series, name, note, integer=True)
    dtype = export_dtype(ColumnKind.NUMERICAL, is_integer=integer, has_missing=missing)
    decimals = None if integer or decimals_written else value_decimals(series)
    return ColumnSchema(name, ColumnKind.NUMERICAL, dtype, is_integer=integer, has_missing=missing, decimals=decimals)


def _coded(series: pd.Series) -> bool:
    """Few distinct small integers (a 0/1 flag, SEX 1/2, EDUCATION 0..6): category codes, not a quantity."""
    values = series.dropna()
    if values.empty or float(values.abs().max()) > CODED_MAX_MAGNITUDE:
        return False
    distinct = int(values.nunique())
    return distinct <= CODED_MAX_DISTINCT and len(values) >= CODED_REPEATS * distinct


def _coded_categorical(series: pd.Series, name: str, missing: bool) -> ColumnSchema:
    codes = sorted(int(v) for v in series.dropna().unique())
    shown = ", ".join(str(c) for c in codes[:6]) + (", …" if len(codes) > 6 else "")
    note = (f"{CODED_NOTE}: {len(codes)} distinct small integers ({shown}) read as categories; "
            f"to model it as a number, set its kind to numerical (--column {name}=numerical)")
    dtype = export_dtype(ColumnKind.CATEGORICAL, is_integer=True, has_missing=missing)
    return ColumnSchema(name, ColumnKind.CATEGORICAL, dtype, is_integer=True, has_missing=missing, note=note)


def _packed(series: pd.Series, distinct: int) -> bool:
    """Integer keys are near-sequential (1..n, 10001..20000); a mostly-unique measurement such as a
    sampling weight spreads over a range far wider than its distinct count and stays numerical."""
    span = float(series.max()) - float(series.min()) + 1.0
    return span <= PACKED_SPAN * distinct


def _id_like(distinct: int, present: int, id_threshold: int) -> bool:
    return distinct >= id_threshold and distinct >= ID_SHARE * present


def _id_note(distinct: int, present: int) -> str:
    return f"identifier-like: {distinct} distinct values in {present} rows; not modelled, fresh ids are generated"


def _identifier(series: pd.Series, name: str, note: str, *, integer: bool) -> ColumnSchema:
    missing = bool(series.isna().any())
    dtype = export_dtype(ColumnKind.IDENTIFIER, is_integer=integer, has_missing=missing)
    return ColumnSchema(name, ColumnKind.IDENTIFIER, dtype, is_integer=integer, has_missing=missing, note=note)


def _text(series: pd.Series, name: str, present: int, id_threshold: int) -> ColumnSchema:
    """Text: boolean words, then dates, then identifiers, and categorical otherwise."""
    counts = as_text(series).value_counts(dropna=True)
    missing = bool(series.isna().any())
    if len(counts) <= _BOOLEAN_CANDIDATES and is_boolean_pair(counts.index):
        return _boolean(series, name)
    guess = guess_date_format(counts)
    if guess is not None and guess.share >= DATE_SHARE:
        note = ""
        if guess.unparsed_rows:
            note = (
                f"{guess.unparsed_rows} of {guess.rows} values are not dates and are read as missing "
                "(the values themselves are never written into a schema)"
            )
        return ColumnSchema(
            name, ColumnKind.DATETIME, guess.dtype, has_missing=missing or guess.unparsed_rows > 0,
            datetime_format=guess.format, note=note,
        )
    if _id_like(len(counts), present, id_threshold):
        return _identifier(series, name, _id_note(len(counts), present), integer=False)
    return ColumnSchema(name, ColumnKind.CATEGORICAL, "object", has_missing=missing)


def _declared(series: pd.Series, name: str, kind: ColumnKind, party: str) -> ColumnSchema:
    """The schema of a column whose kind the user set; values that cannot be that kind are an error."""
    note = "kind set by override"
    where = f"Column '{name}' of party '{party}' is declared {kind.value}"
    if kind is ColumnKind.NUMERICAL:
        numbers = _declared_numbers(series, where)
        integer, missing = is_integral(numbers), bool(numbers.isna().any())
        dtype = export_dtype(kind, is_integer=integer, has_missing=missing)
        return ColumnSchema(name, kind, dtype, is_integer=integer, has_missing=missing, note=note)
    if kind is ColumnKind.BOOLEAN:
        _, bad = to_boolean(series)
        _refuse(series, bad, f"{where} but holds values that are not true/false/yes/no/1/0", "categorical")
        return _boolean(series, name, note)
    if kind is ColumnKind.DATETIME:
        return _declared_dates(series, name, where, note)
    if kind is ColumnKind.IDENTIFIER:
        integer = is_numeric_dtype(series.dtype) and not is_bool_dtype(series.dtype) and is_integral(series)
        return _identifier(series, name, "declared identifier; not modelled, fresh ids are generated", integer=integer)
    missing = bool(series.isna().any())
    integer = integer_codes(series)
    dtype = export_dtype(kind, is_integer=integer, has_missing=missing)
    return ColumnSchema(name, kind, dtype, is_integer=integer, has_missing=missing, note=note)


def _declared_numbers(series: pd.Series, where: str) -> pd.Series:
    if is_datetime64_any_dtype(series.dtype):
        raise SchemaError(f"{where} but holds dates. Set its kind to datetime instead (--column {series.name}=datetime).")
    numbers, bad = to_number(series)
    _refuse(series, bad, f"{where} but holds text", "categorical")
    return numbers


def _declared_dates(series: pd.Series, name: str, where: str, note: str) -> ColumnSchema:
    """Dates in the format most values share; at most 5 % may fail to parse (read as missing)."""
    fmt = None
    if not is_datetime64_any_dtype(series.dtype):
        guess = guess_date_format(as_text(series).value_counts(dropna=True))
        fmt = guess.format if guess is not None else None
    parsed, bad = to_datetime(series, fmt)
    if bad.sum() > (1.0 - DATE_SHARE) * series.notna().sum():
        _refuse(series, bad, f"{where} but more than 5 % of its values are not dates", "categorical")
    return ColumnSchema(name, ColumnKind.DATETIME, datetime_dtype_of(parsed), has_missing=bool(parsed.isna().any()),
                        datetime_format=fmt, note=note)


def _refuse(series: pd.Series, bad: pd.Series, what: str, other_kind: str) -> None:
    if bool(np.any(bad)):
        raise SchemaError(
            f"{what} ({describe_bad(series, bad)}). Clean those rows or set its kind to {other_kind} "
            f"(--column {series.name}={other_kind})."
        )
