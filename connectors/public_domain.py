"""Declare what is public about the columns: numerical bounds and category lists.

Under DP, whatever the data has to tell costs budget: a bound estimated from a noisy grid, a
category name that must pass partition selection. What the user already knows without looking
(a code book, a census questionnaire, a regulation) is declared here and spent on nothing, so
the whole encoder share goes to the histograms. The declaration is applied to the reconciled
schema; every party's values are then checked against it.

A domain is a mapping ``column -> {"bounds": [low, high]}`` or ``{"categories": [...]}``, read
from the config's ``[public.<column>]`` tables or from a JSON/TOML file. A numerical column may
add ``integer = true``: under DP the schema round does not release whether a column holds whole
numbers, so only a declaration makes the synthetic column decode to them.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from fedtab.errors import ConfigError, SchemaError
from fedtab.schema import ColumnKind, ColumnSchema, TableSchema

PublicDomain = Mapping[str, Mapping[str, Any]]
_KEYS = frozenset({"bounds", "categories", "integer"})


def domain_problems(domain: Any) -> list[str]:
    """Shape checks that need no schema: the config validates a domain with these."""
    if not isinstance(domain, Mapping):
        return [f"'public' must be a table of columns; got {type(domain).__name__}"]
    out: list[str] = []
    for column, entry in domain.items():
        where = f"public domain of column '{column}'"
        if not isinstance(entry, Mapping) or not entry or set(entry) - _KEYS:
            out.append(f"{where}: expected a table with 'bounds' or 'categories' (and optionally 'integer'); got {entry!r}")
            continue
        if "integer" in entry and (entry["integer"] is not True or "categories" in entry):
            out.append(f"{where}: integer may only be true, on a numerical column; got {entry['integer']!r}")
        if "bounds" in entry and "categories" in entry:
            out.append(f"{where}: give bounds (numerical) or categories (categorical), not both")
        if "bounds" in entry:
            out += _bounds_problems(where, entry["bounds"])
        if "categories" in entry:
            out += _categories_problems(where, entry["categories"])
    return out


def _bounds_problems(where: str, bounds: Any) -> list[str]:
    numbers = isinstance(bounds, (list, tuple)) and len(bounds) == 2 and all(
        isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) for b in bounds
    )
    if not numbers or bounds[0] >= bounds[1]:
        return [f"{where}: bounds must be [low, high] with finite low < high; got {bounds!r}"]
    return []


def _categories_problems(where: str, categories: Any) -> list[str]:
    if not isinstance(categories, (list, tuple)) or not categories or not all(isinstance(c, str) for c in categories):
        return [f"{where}: categories must be a non-empty list of strings; got {categories!r}"]
    repeated = sorted({c for c in categories if categories.count(c) > 1})
    return [f"{where}: categories repeat {repeated}"] if repeated else []


def read_public_domain(path: str | Path) -> dict[str, dict[str, Any]]:
    """A domain file (``.json``, or ``.toml`` with one table per column); checked before it is used."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except FileNotFoundError as err:
        raise ConfigError(f"Public domain file '{path}' does not exist; check the path.") from err
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ConfigError(f"Public domain file '{path}' is not readable {path.suffix.lstrip('.') or 'JSON'} ({err}). Fix the file.") from err
    data = data.get("public", data) if isinstance(data, Mapping) else data
    problems = domain_problems(data)
    if problems:
        raise ConfigError(f"Public domain file '{path}' is not valid:\n" + "\n".join(f"  - {p}" for p in problems))
    return {str(k): dict(v) for k, v in data.items()}


def declare_public(schema: TableSchema, domain: PublicDomain) -> TableSchema:
    """``schema`` with the declared bounds and categories set; a column that cannot take them is named."""
    problems = [f"column '{n}' is not in the parties' tables (they have {schema.names})" for n in domain if n not in schema.names]
    columns = []
    for column in schema:
        entry = domain.get(column.name)
        if entry is None:
            columns.append(column)
            continue
        problem = _kind_problem(column, entry)
        if problem:
            problems.append(problem)
            continue
        columns.append(_declared(column, entry))
    if problems:
        raise SchemaError("The public domain does not fit the parties' schema; fix the domain:", problems)
    return TableSchema(tuple(columns))


def _kind_problem(column: ColumnSchema, entry: Mapping[str, Any]) -> str | None:
    for key in ("bounds", "integer"):
        if key in entry and column.kind is not ColumnKind.NUMERICAL:
            return f"column '{column.name}' is {column.kind.value}; {key} applies to numerical columns"
    if "categories" in entry and column.kind is not ColumnKind.CATEGORICAL:
        return f"column '{column.name}' is {column.kind.value}; categories apply to categorical columns"
    return None


def _declared(column: ColumnSchema, entry: Mapping[str, Any]) -> ColumnSchema:
    if "integer" in entry:
        column = replace(column, is_integer=True, dtype="int64" if column.dtype == "int64" else "Int64")
    if "bounds" in entry:
        low, high = (float(b) for b in entry["bounds"])
        return replace(column, bounds=(low, high))
    if "categories" in entry:
        return replace(column, categories=tuple(str(c) for c in entry["categories"]))
    return column
