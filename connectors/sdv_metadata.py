"""Import and export SDV single-table metadata (the ``Metadata`` JSON of SDV 1.x and later).

SDV metadata says what kind each column is; it cannot say whether values are missing, or carry
fedtab's declared bounds, categories and notes. Export drops those; import leaves them unset,
and ``load_party`` settles missingness from the data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fedtab.connectors.declared import INTEGER_FROM_DATA
from fedtab.errors import ConfigError, SchemaError
from fedtab.schema import ColumnKind, ColumnSchema, TableSchema

SPEC_VERSION = "V1"
_INTEGER_REPRESENTATIONS = frozenset({"Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64"})
_SDTYPES = {
    "numerical": ColumnKind.NUMERICAL,
    "categorical": ColumnKind.CATEGORICAL,
    "boolean": ColumnKind.BOOLEAN,
    "datetime": ColumnKind.DATETIME,
    "id": ColumnKind.IDENTIFIER,
}


def schema_to_sdv_metadata(schema: TableSchema, table_name: str = "table") -> dict[str, Any]:
    """SDV metadata for one table: each column's sdtype, integer representation and date format."""
    columns = {column.name: _sdv_column(column) for column in schema}
    return {"tables": {table_name: {"columns": columns}}, "METADATA_SPEC_VERSION": SPEC_VERSION}


def _sdv_column(column: ColumnSchema) -> dict[str, str]:
    if column.kind is ColumnKind.NUMERICAL:
        return {"sdtype": "numerical", "computer_representation": "Int64" if column.is_integer else "Float"}
    if column.kind is ColumnKind.DATETIME and column.datetime_format:
        return {"sdtype": "datetime", "datetime_format": column.datetime_format}
    sdtype = next(word for word, kind in _SDTYPES.items() if kind is column.kind)
    return {"sdtype": sdtype}


def schema_from_sdv_metadata(metadata: Mapping[str, Any] | str | Path, table_name: str | None = None) -> TableSchema:
    """A TableSchema from SDV metadata (a dict, or the path of its JSON file).

    Multi-table metadata needs ``table_name``. Semantic sdtypes (email, address, ...) are personal
    data in SDV's sense and become identifiers: not modelled, fresh values are generated.
    """
    data = metadata if isinstance(metadata, Mapping) else _read_json(Path(metadata))
    name, table = _pick_table(data, table_name)
    columns = table.get("columns")
    if not isinstance(columns, Mapping) or not columns:
        raise SchemaError(f"SDV metadata table '{name}' has no 'columns' mapping; add one column entry per column.")
    problems: list[str] = []
    parsed = [_column_from_sdv(str(col), spec, problems) for col, spec in columns.items()]
    if problems:
        raise SchemaError(f"SDV metadata table '{name}' has columns fedtab cannot read:", problems)
    return TableSchema(tuple(c for c in parsed if c is not None))


def _read_json(path: Path) -> Mapping[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ConfigError(f"SDV metadata file '{path}' does not exist; check the path.") from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"SDV metadata file '{path}' is not readable JSON ({err}). Re-export it from SDV.") from err
    if not isinstance(data, Mapping):
        raise ConfigError(f"SDV metadata file '{path}' holds {type(data).__name__}, not a JSON object.")
    return data


def _pick_table(data: Mapping[str, Any], table_name: str | None) -> tuple[str, Mapping[str, Any]]:
    """The one table asked for; the older single-table format has its columns at the top."""
    tables = data.get("tables")
    if tables is None and "columns" in data:
        return table_name or "table", data
    if not isinstance(tables, Mapping) or not tables:
        raise SchemaError("SDV metadata has no 'tables' mapping; export it with SDV's Metadata.save_to_json.")
    if table_name is None:
        if len(tables) > 1:
            raise SchemaError(f"SDV metadata holds tables {sorted(tables)}; pass table_name= to pick one.")
        table_name = next(iter(tables))
    if table_name not in tables:
        raise SchemaError(f"SDV metadata has no table '{table_name}'; it holds {sorted(tables)}.")
    return table_name, tables[table_name]


def _column_from_sdv(name: str, spec: Any, problems: list[str]) -> ColumnSchema | None:
    if not isinstance(spec, Mapping) or not isinstance(spec.get("sdtype"), str):
        problems.append(f"column '{name}': expected an object with an 'sdtype'; got {spec!r}")
        return None
    sdtype = spec["sdtype"]
    kind = _SDTYPES.get(sdtype)
    if kind is ColumnKind.NUMERICAL:
        return _numerical(name, spec.get("computer_representation"), problems)
    if kind is ColumnKind.DATETIME:
        return ColumnSchema(name, kind, "datetime64[ns]", datetime_format=spec.get("datetime_format"))
    if kind is ColumnKind.BOOLEAN:
        return ColumnSchema(name, kind, "boolean")
    if kind is not None:
        return ColumnSchema(name, kind, "object")
    if sdtype == "unknown" or spec.get("pii") is not False:
        note = f"SDV sdtype '{sdtype}' is personal data; not modelled, fresh values are generated"
        return ColumnSchema(name, ColumnKind.IDENTIFIER, "object", note=note)
    note = f"SDV sdtype '{sdtype}' (pii false) read as categorical"
    return ColumnSchema(name, ColumnKind.CATEGORICAL, "object", note=note)


def _numerical(name: str, representation: Any, problems: list[str]) -> ColumnSchema | None:
    if representation is None:
        return ColumnSchema(name, ColumnKind.NUMERICAL, "float64", note=INTEGER_FROM_DATA)
    if representation == "Float":
        return ColumnSchema(name, ColumnKind.NUMERICAL, "float64")
    if representation in _INTEGER_REPRESENTATIONS:
        return ColumnSchema(name, ColumnKind.NUMERICAL, "Int64", is_integer=True)
    problems.append(
        f"column '{name}': computer_representation {representation!r} is not one of "
        f"{['Float', *sorted(_INTEGER_REPRESENTATIONS)]}"
    )
    return None
