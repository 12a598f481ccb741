"""Check the tables an evaluation reads and decide each column's kind, once, at the public entry.

Everything downstream reads frames that went through :func:`prepare`: the columns in one order,
numbers as float64 (datetimes as seconds), categories as text with missing values as NaN. So a
category written ``1`` in one table and ``1.0`` in another is the same category, and a number
that arrives as text is caught here with its column named, not deep inside a metric.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fedtab.errors import ConfigError, PartyError, SchemaError
from fedtab.schema import ColumnKind, TableSchema

NUMERICAL = "numerical"
CATEGORICAL = "categorical"

_EVALUATED_AS = {
    ColumnKind.NUMERICAL: NUMERICAL,
    ColumnKind.DATETIME: NUMERICAL,
    ColumnKind.CATEGORICAL: CATEGORICAL,
    ColumnKind.BOOLEAN: CATEGORICAL,
}


@dataclass(frozen=True)
class ColumnLayout:
    """Which columns are evaluated, in which order, as which kind; identifiers are left out."""

    kinds: Mapping[str, str]
    excluded: tuple[str, ...] = ()
    dates: Mapping[str, str | None] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.kinds)

    @property
    def numerical(self) -> list[str]:
        return [name for name, kind in self.kinds.items() if kind == NUMERICAL]

    @property
    def categorical(self) -> list[str]:
        return [name for name, kind in self.kinds.items() if kind == CATEGORICAL]

    def without(self, name: str | None) -> ColumnLayout:
        """The layout of the features: every column but ``name`` (the target)."""
        return ColumnLayout({k: v for k, v in self.kinds.items() if k != name}, self.excluded, self.dates)

    def to_dict(self) -> dict[str, object]:
        return {"kinds": dict(self.kinds), "excluded": list(self.excluded), "dates": dict(self.dates)}


def resolve_layout(synthetic: pd.DataFrame, schema: TableSchema | None = None) -> ColumnLayout:
    """Kinds from the schema when given, else inferred from the synthetic table by the connectors.

    Inference (``fedtab.connectors.infer_schema``) reads numbers, categories, booleans, dates (also
    written as text) and identifiers; identifiers — mostly-unique keys — are left out, since a fresh
    key per row would make every row look unique.
    """
    if schema is None:
        from fedtab.connectors import infer_schema

        schema = infer_schema(synthetic, party="synthetic table")
    missing = [name for name in schema.names if name not in synthetic.columns]
    if missing:
        raise SchemaError(
            f"The schema names columns the synthetic table lacks: {missing}. "
            "Pass the schema the synthetic table was made with, or drop those columns from it."
        )
    kinds = {c.name: _EVALUATED_AS[c.kind] for c in schema if c.kind in _EVALUATED_AS}
    excluded = tuple(c.name for c in schema if c.kind not in _EVALUATED_AS)
    dates = {c.name: c.datetime_format for c in schema if c.kind is ColumnKind.DATETIME}
    return ColumnLayout(kinds, excluded, dates)


def check_tables(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None,
    target: str | None,
) -> None:
    """Refuse empty tables, a misplaced target and mismatched column sets, naming each problem."""
    for label, frame in (("real", real), ("synthetic", synthetic), ("holdout", holdout)):
        if frame is not None:
            _check_frame(frame, label)
    if target is not None:
        _check_target(target, real, synthetic, holdout)
    problems = _column_problems(real, synthetic, "real")
    if holdout is not None:
        problems += _column_problems(holdout, synthetic, "holdout")
    if problems:
        raise SchemaError(
            "The real, holdout and synthetic tables must hold the same columns.", problems
        )


def check_columns(frame: pd.DataFrame, layout: ColumnLayout, label: str) -> None:
    """A party's table against the broadcast layout: every evaluated column must be there."""
    _check_frame(frame, label)
    missing = [name for name in layout.names if name not in frame.columns]
    if missing:
        raise SchemaError(
            f"The {label} table lacks columns the evaluation needs: {missing}. "
            "Give it the same columns as the synthetic table."
        )


def prepare(frame: pd.DataFrame, layout: ColumnLayout, label: str) -> pd.DataFrame:
    """The evaluated columns in layout order: numbers as float64, categories as text or NaN."""
    columns = {}
    for name, kind in layout.kinds.items():
        series = _dates(frame[name], layout.dates[name]) if name in layout.dates else frame[name]
        columns[name] = _numbers(series, name, label) if kind == NUMERICAL else _categories(series)
    return pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))


def refuse_missing_target(frame: pd.DataFrame, target: str, label: str) -> None:
    """A model cannot learn from or be scored on a row without a label."""
    missing = int(frame[target].isna().sum())
    if missing:
        raise SchemaError(
            f"The target column '{target}' of the {label} table is missing in {missing} of "
            f"{len(frame)} rows; a model can neither learn from nor be scored on those rows. "
            f"Drop the rows without '{target}' from the {label} table, or choose another target."
        )


def _dates(series: pd.Series, pattern: str | None) -> pd.Series:
    """Dates written as text become datetimes; a value that is no date becomes missing, as the connectors read it."""
    if pd.api.types.is_datetime64_any_dtype(series):
        return series
    return pd.to_datetime(series, format=pattern or "mixed", errors="coerce")


def _check_frame(frame: pd.DataFrame, label: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(
            f"The {label} table must be a pandas DataFrame; got {type(frame).__name__}. "
            "Convert it first (polars: frame.to_pandas())."
        )
    if len(frame) == 0 or frame.shape[1] == 0:
        raise PartyError(
            f"The {label} table is empty ({len(frame)} rows, {frame.shape[1]} columns); "
            "an evaluation needs rows to compare. Check the file or query that produced it."
        )
    names = [str(c) for c in frame.columns]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise SchemaError(f"The {label} table repeats column names {duplicated}; rename them so each is unique.")


def _check_target(target: str, real: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame | None) -> None:
    if target not in real.columns:
        raise ConfigError(
            f"The target '{target}' is not a column of the real table; its columns are "
            f"{[str(c) for c in real.columns]}. Pass one of them as the target."
        )
    for label, frame in (("synthetic", synthetic), ("holdout", holdout)):
        if frame is not None and target not in frame.columns:
            raise SchemaError(
                f"The target '{target}' is missing from the {label} table, which the real table has. "
                f"Evaluate a {label} table that holds '{target}', or choose a target it holds."
            )


def _column_problems(frame: pd.DataFrame, synthetic: pd.DataFrame, label: str) -> list[str]:
    ours, theirs = set(map(str, frame.columns)), set(map(str, synthetic.columns))
    problems = []
    if ours - theirs:
        problems.append(
            f"the {label} table has {sorted(ours - theirs)} which the synthetic table lacks; "
            "drop them or regenerate the synthetic table with them"
        )
    if theirs - ours:
        problems.append(
            f"the synthetic table has {sorted(theirs - ours)} which the {label} table lacks; "
            f"drop them from the synthetic table or add them to the {label} table"
        )
    return problems


def _numbers(series: pd.Series, name: str, label: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(series):
        moments = series.dt.tz_convert(None) if series.dt.tz is not None else series
        seconds = moments.to_numpy(dtype="datetime64[ns]").view("int64").astype(np.float64) / 1e9
        return pd.Series(np.where(series.isna().to_numpy(), np.nan, seconds))
    if pd.api.types.is_bool_dtype(series):
        return pd.Series(series.astype(float).to_numpy())
    numbers = pd.to_numeric(series, errors="coerce").astype(np.float64)
    text = series.notna().to_numpy() & numbers.isna().to_numpy()
    if text.any():
        example = series[text].iloc[0]
        raise SchemaError(
            f"Column '{name}' of the {label} table holds text ({example!r} in {int(text.sum())} rows) "
            "where a number is expected. Clean those rows, or declare the column categorical in the schema."
        )
    infinite = np.isinf(numbers.to_numpy())
    if infinite.any():
        raise SchemaError(
            f"Column '{name}' of the {label} table holds infinite values in {int(infinite.sum())} rows; "
            "distances and correlations cannot use them. Replace them with a finite value or leave them missing."
        )
    return pd.Series(numbers.to_numpy())


def _categories(series: pd.Series) -> pd.Series:
    values = series.astype(object)
    present = values.notna().to_numpy()
    text = np.full(len(values), np.nan, dtype=object)
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        numbers = series.astype(float).to_numpy()
        whole = present & (np.mod(numbers, 1) == 0)
        text[whole] = numbers[whole].astype(np.int64).astype(str)
        rest = present & ~whole
        text[rest] = numbers[rest].astype(str)
    else:
        text[present] = values[present].astype(str).to_numpy()
    return pd.Series(text, dtype=object)
