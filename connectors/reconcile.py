"""Horizontal reconciliation: one schema that fits every party, or one error listing every misfit.

Parties infer their schemas alone, so a small party can see a boolean column holding a single
word, or a column with nothing in it. The merge resolves what can be resolved from the values
(see :func:`reconcile`) and reports the rest, each problem with its party and column.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from fedtab.connectors.casting import conform
from fedtab.connectors.dtypes import export_dtype
from fedtab.connectors.inference import CODED_NOTE
from fedtab.connectors.release import ReleasedSchema
from fedtab.connectors.values import describe_bad, to_boolean, to_datetime, to_number
from fedtab.errors import ConfigError, SchemaError
from fedtab.schema import ColumnKind, ColumnSchema, PartyTable, TableSchema

_RESOLVABLE = {
    frozenset({ColumnKind.BOOLEAN, ColumnKind.CATEGORICAL}): ColumnKind.BOOLEAN,
    frozenset({ColumnKind.BOOLEAN, ColumnKind.NUMERICAL}): ColumnKind.BOOLEAN,
    frozenset({ColumnKind.DATETIME, ColumnKind.CATEGORICAL}): ColumnKind.DATETIME,
}
"""Kind pairs one party may see where another sees the richer kind: a party whose yes/no column
holds only 'yes' infers categorical. Merged when every value fits the richer kind."""

_INTEGRAL_KINDS = (ColumnKind.NUMERICAL, ColumnKind.IDENTIFIER, ColumnKind.CATEGORICAL)


@dataclass(frozen=True)
class _Seen:
    """One party's view of one column: its values (central), or only what its party released."""

    party: str
    column: ColumnSchema
    values: pd.Series | None
    released_empty: bool = False
    released_reads_as: frozenset[ColumnKind] = frozenset()

    @property
    def empty(self) -> bool:
        return self.released_empty if self.values is None else not bool(self.values.notna().any())

    def reads_as(self, kind: ColumnKind, reference: ColumnSchema) -> bool:
        """Whether every value reads as ``kind``; a released schema answers from its party's own check."""
        if self.values is None:
            return kind in self.released_reads_as
        return not _bad(self.values, kind, reference).any()


def reconcile(parties: Sequence[PartyTable]) -> TableSchema:
    """The schema every party fits, columns in the first party's order.

    Numerical stays integer only if integer everywhere; ``has_missing`` is OR-ed; a column with
    only missing values in a party takes the other parties' kind; an identifier anywhere is an
    identifier. Raises one ``SchemaError`` listing every mismatch, each with party and column.
    """
    _check_parties(parties)
    return _reconciled(parties, lambda p, name: _Seen(p.name, p.schema[name], _values(p, name)))


def reconcile_released(released: Sequence[ReleasedSchema]) -> TableSchema:
    """The schema round's merge: :func:`reconcile` from what each party released, no value in sight."""
    _check_parties(released)

    def seen(r: ReleasedSchema, name: str) -> _Seen:
        return _Seen(r.party, r.schema[name], None, name in r.empty, (r.reads_as or {}).get(name, frozenset()))

    return _reconciled(released, seen)


def _reconciled(parties: Sequence[PartyTable] | Sequence[ReleasedSchema], seen: Callable[[Any, str], _Seen]) -> TableSchema:
    first = parties[0]
    problems = _column_set_problems(parties)
    common = [name for name in first.schema.names if all(name in p.schema.names for p in parties)]
    merged: list[ColumnSchema] = []
    for name in common:
        column, found = _merge(name, [seen(p, name) for p in parties])
        problems += found
        if column is not None:
            merged.append(column)
    if problems:
        raise SchemaError(f"The parties' schemas do not reconcile ({len(problems)} problem(s)):", problems)
    return TableSchema(tuple(merged))


def align(party: PartyTable, schema: TableSchema) -> PartyTable:
    """The party's frame reordered and cast to ``schema``; values that cannot be cast are named."""
    names = set(schema.names)
    problems = [f"column '{n}' is missing in party '{party.name}'" for n in schema.names if n not in party.frame]
    problems += [
        f"column '{n}' of party '{party.name}' is not in the schema; drop it"
        for n in party.frame.columns
        if n not in names
    ]
    if problems:
        raise SchemaError(f"Party '{party.name}' does not have the schema's columns:", problems)
    return PartyTable(party.name, conform(_as_written(party, schema), schema, party=party.name), schema)


def _as_written(party: PartyTable, schema: TableSchema) -> pd.DataFrame:
    """Booleans the party read from words go back to its words where the schema wants text ('yes', not 'True')."""
    frame = party.frame
    for column in schema:
        own = party.schema[column.name] if column.name in party.schema.names else None
        if column.kind is ColumnKind.CATEGORICAL and own is not None and own.kind is ColumnKind.BOOLEAN and own.tokens:
            values = frame[column.name]
            words = pd.Series(None, index=values.index, dtype=object)
            words[values.notna() & values.fillna(False).astype(bool)] = own.tokens[0]
            words[values.notna() & ~values.fillna(True).astype(bool)] = own.tokens[1]
            frame = frame.assign(**{column.name: words})
    return frame


def _check_parties(parties: Sequence[PartyTable] | Sequence[ReleasedSchema]) -> None:
    if not parties:
        raise ConfigError("reconcile needs at least one party; got none. Load the parties first.")
    names = [_name(p) for p in parties]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"Party names must be unique; {duplicated} appear more than once. Rename them.")


def _name(party: PartyTable | ReleasedSchema) -> str:
    return party.party if isinstance(party, ReleasedSchema) else party.name


def _column_set_problems(parties: Sequence[PartyTable] | Sequence[ReleasedSchema]) -> list[str]:
    first = parties[0]
    reference = set(first.schema.names)
    problems: list[str] = []
    for party in parties[1:]:
        own = set(party.schema.names)
        problems += [
            f"column '{n}' is missing in party '{_name(party)}' (party '{_name(first)}' has it)"
            for n in first.schema.names if n not in own
        ]
        problems += [
            f"column '{n}' of party '{_name(party)}' is not in party '{_name(first)}'"
            for n in party.schema.names if n not in reference
        ]
    return problems


def _values(party: PartyTable, name: str) -> pd.Series:
    if name in party.frame.columns:
        return party.frame[name]
    return pd.Series([], dtype=object, name=name)


def _merge(name: str, seen: list[_Seen]) -> tuple[ColumnSchema | None, list[str]]:
    """One column merged over the parties, or the problems that prevent it."""
    present = [s for s in seen if not s.empty]
    if not present:
        parties = ", ".join(f"'{s.party}'" for s in seen)
        return None, [f"column '{name}' has only missing values in every party ({parties}); drop the column"]
    kinds = {s.column.kind for s in present}
    if ColumnKind.IDENTIFIER in kinds:
        kind = ColumnKind.IDENTIFIER
    elif len(kinds) == 1:
        kind = kinds.pop()
    elif _coded_against_numbers(kinds, present):
        return _merged_column(name, ColumnKind.NUMERICAL, seen, present, note=_coded_note(name, present))
    else:
        resolved = _resolve(kinds, present)
        if resolved is None:
            return None, _conflicts(name, present)
        kind = resolved
    return _merged_column(name, kind, seen, present)


def _coded_against_numbers(kinds: set[ColumnKind], present: list[_Seen]) -> bool:
    """Integers read as codes at some parties (few distinct values there) and as numbers at others."""
    return kinds == {ColumnKind.NUMERICAL, ColumnKind.CATEGORICAL} and all(
        _coded(s) for s in present if s.column.kind is ColumnKind.CATEGORICAL
    )


def _coded(side: _Seen) -> bool:
    """Read as codes: the party's own note says so, or (a released schema, no notes) all its values read as numbers."""
    if side.values is None:
        return ColumnKind.NUMERICAL in side.released_reads_as
    return side.column.note.startswith(CODED_NOTE)


def _coded_note(name: str, present: list[_Seen]) -> str:
    coded = ", ".join(f"'{s.party}'" for s in present if s.column.kind is ColumnKind.CATEGORICAL)
    return (f"integers read as category codes at {coded} but as numbers at other parties; modelled as numerical. "
            f"To model it as categories, set its kind (--column {name}=categorical)")


def _resolve(kinds: set[ColumnKind], present: list[_Seen]) -> ColumnKind | None:
    """The richer kind every other kind seen can be read as, when every value really fits it."""
    for richer in (ColumnKind.BOOLEAN, ColumnKind.DATETIME):
        plainer = kinds - {richer}
        if richer not in kinds or any(_RESOLVABLE.get(frozenset({richer, k})) is not richer for k in plainer):
            continue
        reference = next(s.column for s in present if s.column.kind is richer)
        if all(s.reads_as(richer, reference) for s in present if s.column.kind in plainer):
            return richer
    return None


def _bad(values: pd.Series, kind: ColumnKind, reference: ColumnSchema) -> pd.Series:
    """Rows whose value cannot be read as ``kind`` (the other party's kind)."""
    if kind is ColumnKind.NUMERICAL:
        return to_number(values)[1]
    if kind is ColumnKind.BOOLEAN:
        return to_boolean(values)[1]
    if kind is ColumnKind.DATETIME:
        return to_datetime(values, reference.datetime_format)[1]
    return pd.Series(False, index=values.index)


def _conflicts(name: str, present: list[_Seen]) -> list[str]:
    """One problem per party whose kind differs from the first party that has values."""
    ref = present[0]
    return [_conflict(name, ref, other) for other in present[1:] if other.column.kind is not ref.column.kind]


def _conflict(name: str, ref: _Seen, other: _Seen) -> str:
    left, right = ref.column.kind.value, other.column.kind.value
    text = f"column '{name}' is {left} in party '{ref.party}'{_why(ref, other)} "
    text += f"but {right} in party '{other.party}'{_why(other, ref)}"
    if ColumnKind.CATEGORICAL in (ref.column.kind, other.column.kind):
        text_side, typed = (ref, other) if ref.column.kind is ColumnKind.CATEGORICAL else (other, ref)
        if _some_bad(text_side, typed):
            return text + (f"; clean those rows in party '{text_side.party}', or set the column's kind at every "
                           f"party (--column {name}=categorical)")
        return text + f"; set the column's kind at every party (--column {name}={typed.column.kind.value})"
    return text + f"; set one kind for it at every party (e.g. --column {name}={left})"


def _some_bad(text_side: _Seen, typed: _Seen) -> bool:
    """Whether some of the text side's values do not read as the typed side's kind (from its release when no values are seen)."""
    if text_side.values is None:
        return not text_side.reads_as(typed.column.kind, typed.column)
    return bool(_bad(text_side.values, typed.column.kind, typed.column).any())


def _why(side: _Seen, against: _Seen) -> str:
    """For the plainer side (text, or numbers against booleans), the values that keep it so."""
    kinds = frozenset({side.column.kind, against.column.kind})
    plainer = side.column.kind is ColumnKind.CATEGORICAL or _RESOLVABLE.get(kinds) is against.column.kind
    if not plainer or against.column.kind is ColumnKind.CATEGORICAL:
        return ""
    if side.values is None:
        return "" if side.reads_as(against.column.kind, against.column) else f" (some values do not read as {against.column.kind.value})"
    bad = _bad(side.values, against.column.kind, against.column)
    if not bad.any():
        return f" (every value would read as {against.column.kind.value})"
    return f" ({describe_bad(side.values, bad)})"


def _merged_column(
    name: str, kind: ColumnKind, seen: list[_Seen], present: list[_Seen], note: str | None = None
) -> tuple[ColumnSchema | None, list[str]]:
    problems = _declared_disagreements(name, present)
    has_missing = any(s.column.has_missing or (s.values is not None and s.values.isna().any()) for s in seen)
    is_integer = all(s.column.is_integer for s in present)
    formats = {s.column.datetime_format for s in present if s.column.kind is ColumnKind.DATETIME}
    datetime_dtypes = sorted({s.column.dtype for s in present if s.column.kind is ColumnKind.DATETIME})
    if len(datetime_dtypes) > 1:
        problems.append(f"column '{name}' has different time zones across parties ({datetime_dtypes}); convert to one")
    base = next((s.column for s in present if s.column.kind is kind), present[0].column)
    dtype = export_dtype(kind, is_integer=is_integer, has_missing=has_missing,
                         datetime_dtype=datetime_dtypes[0] if datetime_dtypes else "datetime64[ns]")
    column = replace(
        base, kind=kind, dtype=dtype, is_integer=is_integer and kind in _INTEGRAL_KINDS, has_missing=has_missing,
        datetime_format=formats.pop() if len(formats) == 1 else None,
        bounds=next((s.column.bounds for s in present if s.column.bounds is not None), None),
        categories=next((s.column.categories for s in present if s.column.categories is not None), None),
        note=base.note if note is None else note,
        tokens=next((s.column.tokens for s in present if s.column.tokens is not None), None) if kind is ColumnKind.BOOLEAN else None,
        missing_token=next((s.column.missing_token for s in seen if s.column.missing_token is not None), None),
        decimals=max((s.column.decimals for s in present if s.column.decimals is not None), default=None),
    )
    return (None, problems) if problems else (column, [])


def _declared_disagreements(name: str, present: list[_Seen]) -> list[str]:
    """Declared bounds and categories are public facts; parties must declare the same ones."""
    problems = []
    for attribute in ("bounds", "categories"):
        declared = {(s.party, getattr(s.column, attribute)) for s in present}
        declared = {(p, value) for p, value in declared if value is not None}
        if len({value for _, value in declared}) > 1:
            listed = "; ".join(f"party '{p}': {v}" for p, v in sorted(declared, key=lambda d: d[0]))
            problems.append(
                f"column '{name}' has different declared {attribute} ({listed}); declare the same in every party"
            )
    return problems
