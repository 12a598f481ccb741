"""What a party's schema tells the others in the schema round: enough to reconcile, never a value.

A party infers its own schema (``load_party``) and releases, per column: its name, its kind,
whether it is empty at this party and which richer kinds (boolean, datetime) all its values read
as (so reconciliation can settle 'yes'-only against yes/no), and the facts the run declared
(bounds, categories, declared integer-ness). Notes are never released: they are the party's own.

Without DP, ``has_missing``, ``is_integer`` and ``datetime_format`` leave as inferred (exact,
data-dependent facts; the README says so). Under DP none of them leaves as the data says:

- missing values: a categorical or boolean column is assumed to may be missing, and the encoder
  keeps a missing bucket only where the noisy (charged) missing count clears the noise; a
  numerical or date column has a missing span only where declared (SDV metadata), and a party
  imputes its own missing cells otherwise (per row, on the party);
- integer-ness: only where declared (SDV metadata); otherwise numbers decode as floats;
- date formats: each party keeps its own and parses its dates itself; dates leave as datetimes;
- decimal places written in the file (a maximum over the rows): only where declared.

Spellings that leave in both cases come from fixed lists, not from a person's row: boolean words
(yes/no, y/n, true/false, 1/0) and the reader's missing marker ('?', 'NA', an empty cell).

Every exported dtype is the nullable one, so any party's gaps fit. Kinds, emptiness and 'reads
as' are data-dependent bits that leave uncharged; declare the kinds to make them public.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from fedtab.connectors.dtypes import export_dtype
from fedtab.connectors.values import as_text, guess_date_format, to_boolean, to_datetime, to_number
from fedtab.schema import ColumnKind, ColumnSchema, PartyTable, TableSchema

_PLAIN_KINDS = (ColumnKind.CATEGORICAL, ColumnKind.NUMERICAL)
_DISCRETE_KINDS = (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN)


@dataclass(frozen=True)
class ReleasedSchema:
    """One party's released schema: columns without notes, the columns empty at this party, and
    per plain column the richer kinds all its values read as."""

    party: str
    schema: TableSchema
    empty: frozenset[str] = frozenset()
    reads_as: Mapping[str, frozenset[ColumnKind]] | None = None

    def to_dict(self) -> dict[str, Any]:
        reads = {name: sorted(k.value for k in kinds) for name, kinds in (self.reads_as or {}).items()}
        return {"party": self.party, "schema": self.schema.to_dict(), "empty": sorted(self.empty), "reads_as": reads}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReleasedSchema:
        reads = {str(n): frozenset(ColumnKind(k) for k in kinds) for n, kinds in dict(data.get("reads_as", {})).items()}
        return cls(str(data["party"]), TableSchema.from_dict(data["schema"]), frozenset(data.get("empty", ())), reads)


def release_schema(table: PartyTable, *, private: bool, declared: TableSchema | None = None) -> ReleasedSchema:
    """The party's inferred schema as it may leave: see the module docstring for what, with and without DP."""
    columns = tuple(_released(c, private, declared) for c in table.schema)
    empty = frozenset(c.name for c in table.schema if not bool(table.frame[c.name].notna().any()))
    reads = {c.name: _reads_as(table.frame[c.name], c.kind) for c in table.schema if c.kind in _PLAIN_KINDS}
    return ReleasedSchema(table.name, TableSchema(columns), empty, reads)


def _released(column: ColumnSchema, private: bool, declared: TableSchema | None) -> ColumnSchema:
    column = replace(column, note="")
    if not private:
        return column
    said = declared[column.name] if declared is not None and column.name in declared.names else None
    is_integer = said is not None and said.is_integer
    has_missing = column.kind in _DISCRETE_KINDS or (said is not None and said.has_missing)
    dtype = export_dtype(column.kind, is_integer=is_integer, has_missing=True,
                         datetime_dtype=column.dtype if column.kind is ColumnKind.DATETIME else "datetime64[ns]")
    decimals = said.decimals if said is not None else None
    return replace(column, has_missing=has_missing, is_integer=is_integer, datetime_format=None, dtype=dtype,
                   decimals=decimals)


def _reads_as(values: pd.Series, kind: ColumnKind) -> frozenset[ColumnKind]:
    """The kinds every value of a plain column reads as (computed here, only the answer leaves): boolean for
    text or numbers, dates (in the format most of them share) for text, numbers for text (so a column read as
    category codes here and as numbers elsewhere reconciles as numerical)."""
    out = set()
    if not to_boolean(values)[1].any():
        out.add(ColumnKind.BOOLEAN)
    if kind is ColumnKind.CATEGORICAL and values.notna().any() and not to_number(values)[1].any():
        out.add(ColumnKind.NUMERICAL)
    if kind is ColumnKind.CATEGORICAL and values.notna().any():
        guess = guess_date_format(as_text(values).value_counts(dropna=True))
        if not to_datetime(values, guess.format if guess is not None else None)[1].any():
            out.add(ColumnKind.DATETIME)
    return frozenset(out)
