"""Fit a user's declared schema (metadata) to a party's data: check names, settle dtypes.

Declared kinds are never second-guessed. What the data decides is only what a declaration
cannot know for every party: whether values are missing here (so ``int64`` or ``Int64``), and
whether an identifier is stored as integers or text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from fedtab.connectors.dtypes import NAIVE_DATETIME, export_dtype
from fedtab.connectors.values import integer_codes, is_integral, to_number
from fedtab.errors import ConfigError, SchemaError
from fedtab.schema import ColumnKind, ColumnSchema, TableSchema

INTEGER_FROM_DATA = "whether the values are integers is taken from the data (the metadata does not say)"
"""Note on a declared numerical column whose integer-ness the data decides (SDV metadata without
``computer_representation``)."""


def fit_declared(frame: pd.DataFrame, metadata: TableSchema, *, party: str) -> TableSchema:
    """The declared schema with ``has_missing`` and dtypes settled by this party's data."""
    declared = set(metadata.names)
    problems = [f"column '{n}' is in the metadata but not in party '{party}'" for n in metadata.names
                if n not in frame.columns]
    problems += [f"column '{n}' of party '{party}' is not in the metadata" for n in frame.columns if n not in declared]
    if problems:
        raise SchemaError(
            f"Party '{party}' does not match the given metadata; rename its columns or edit the metadata:", problems
        )
    return TableSchema(tuple(_fit_column(frame[c.name], c) for c in metadata))


def with_kinds(metadata: TableSchema, kinds: Mapping[str, ColumnKind], *, party: str) -> TableSchema:
    """The declared schema with the kinds a user set on top (``--column``); the data settles the rest."""
    unknown = sorted(set(kinds) - set(metadata.names))
    if unknown:
        raise ConfigError(f"Column kinds are set for columns the metadata does not have: {unknown}; "
                          f"party '{party}' has {metadata.names}. Fix the names in --column, [columns] or columns=.")
    changed = []
    for column in metadata:
        kind = kinds.get(column.name)
        if kind is None or kind is column.kind:
            changed.append(column)
            continue
        note = INTEGER_FROM_DATA if kind is ColumnKind.NUMERICAL else "kind set by override"
        changed.append(replace(column, kind=kind, is_integer=False, datetime_format=None, note=note,
                               dtype=NAIVE_DATETIME if kind is ColumnKind.DATETIME else "object"))
    return TableSchema(tuple(changed))


def _fit_column(series: pd.Series, column: ColumnSchema) -> ColumnSchema:
    has_missing = column.has_missing or bool(series.isna().any())
    is_integer = column.is_integer
    if column.kind is ColumnKind.IDENTIFIER:
        is_integer = is_numeric_dtype(series.dtype) and not is_bool_dtype(series.dtype) and is_integral(series)
    elif column.kind is ColumnKind.NUMERICAL and column.note == INTEGER_FROM_DATA:
        is_integer = is_integral(to_number(series)[0])
    elif column.kind is ColumnKind.CATEGORICAL and column.categories is None:
        is_integer = integer_codes(series)
    datetime_dtype = column.dtype if column.dtype.startswith("datetime64") else NAIVE_DATETIME
    dtype = export_dtype(column.kind, is_integer=is_integer, has_missing=has_missing, datetime_dtype=datetime_dtype)
    return replace(column, is_integer=is_integer, has_missing=has_missing, dtype=dtype)
