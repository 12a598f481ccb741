"""The table schema and the party table: values that every stage reads and none mutates."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import pandas as pd

from fedtab.errors import SchemaError


class ColumnKind(str, enum.Enum):
    """How a column is modelled; the value is the word users write in overrides and TOML."""

    NUMERICAL = "numerical"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    IDENTIFIER = "id"


@dataclass(frozen=True)
class ColumnSchema:
    """One column: its kind, the pandas dtype it is exported with, and what inference decided.

    ``bounds`` and ``categories`` are *public* knowledge when the user declares them (DP treats
    them as free); inferred values are not public and stay ``None`` here.
    """

    name: str
    kind: ColumnKind
    dtype: str
    is_integer: bool = False
    has_missing: bool = False
    datetime_format: str | None = None
    bounds: tuple[float, float] | None = None
    categories: tuple[str, ...] | None = None
    note: str = ""
    tokens: tuple[str, str] | None = None
    """How the parties' files spell a boolean's (true, false), e.g. ('Yes', 'No'); None: as booleans."""
    missing_token: str | None = None
    """How the parties' files mark a missing value ('?', 'NA'); None: an empty cell or a null."""
    decimals: int | None = None
    """Decimal places the parties' files write a float column with (SDV's ``decimal_places``); None: as computed."""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["kind"] = self.kind.value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnSchema:
        data = dict(data)
        data["kind"] = ColumnKind(data["kind"])
        if data.get("bounds") is not None:
            data["bounds"] = tuple(float(b) for b in data["bounds"])
        if data.get("tokens") is not None:
            data["tokens"] = tuple(str(t) for t in data["tokens"])
        if data.get("categories") is not None:
            data["categories"] = tuple(str(c) for c in data["categories"])
        return cls(**data)


@dataclass(frozen=True)
class TableSchema:
    """An ordered set of columns; the synthetic table comes out with exactly this schema."""

    columns: tuple[ColumnSchema, ...]

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise SchemaError(f"Column names must be unique; got duplicates {duplicated}.")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def __iter__(self) -> Iterator[ColumnSchema]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    def __getitem__(self, name: str) -> ColumnSchema:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def replace_column(self, column: ColumnSchema) -> TableSchema:
        return TableSchema(tuple(column if c.name == column.name else c for c in self.columns))

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableSchema:
        return cls(tuple(ColumnSchema.from_dict(c) for c in data["columns"]))


@dataclass(frozen=True)
class PartyTable:
    """A party's rows and their schema. It never leaves the party's process."""

    name: str
    frame: pd.DataFrame = field(repr=False)
    schema: TableSchema

    @property
    def num_rows(self) -> int:
        return len(self.frame)

    def with_schema(self, schema: TableSchema) -> PartyTable:
        return replace(self, schema=schema)
