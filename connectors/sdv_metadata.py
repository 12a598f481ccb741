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
PERSONAL_NOTE = "personal data"
"""How a column's note starts when SDV metadata marks it personal data (the CLI and the app announce these)."""
_INTEGER_REPRESENTATIONS = frozenset({"Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64"})
_SDTYPES = {
    "numerical": ColumnKind.NUMERICAL,
    "categorical": ColumnKind.CATEGORICAL,
    "ordinal": ColumnKind.CATEGORICAL,
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
    sdtype = next(word for word, kind in _SDTYPES.items() if kind is column.kind)  # categorical before ordinal
    return {"sdtype": sdtype}


def schema_from_sdv_metadata(metadata: Mapping[str, Any] | str | Path, table_name: str | None = None) -> TableSchema:
    """A TableSchema from SDV metadata (a dict, or the path of its JSON file).

    Multi-table metadata needs ``table_name``. SDV 1.x and 2.x files both read: ``ordinal`` is
    categorical; SDV 2's ``decimal_places`` 0 means integers; its detected ``range_min``/``range_max``/
    ``range_values`` come from the rows, so they are not taken as public bounds or categories.
    Semantic sdtypes (email, address, ...) are personal data in SDV's sense and become identifiers:
    not modelled, fresh values are generated. An sdtype SDV does not know is an error naming the column.
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


def read_schema(path: str | Path, table_name: str | None = None) -> TableSchema:
    """A declared schema from a JSON file: fedtab's own schema (``{"columns": [...]}``) or SDV metadata."""
    data = _read_json(Path(path))
    if isinstance(data.get("columns"), list):
        return TableSchema.from_dict(data)
    return schema_from_sdv_metadata(data, table_name)


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
        return _numerical(name, spec, problems)
    if kind is ColumnKind.DATETIME:
        return ColumnSchema(name, kind, "datetime64[ns]", datetime_format=spec.get("datetime_format"))
    if kind is ColumnKind.BOOLEAN:
        return ColumnSchema(name, kind, "boolean")
    if kind is not None:
        return ColumnSchema(name, kind, "object")
    if not _personal_sdtype(sdtype):
        problems.append(
            f"column '{name}': sdtype {sdtype!r} is not an SDV sdtype; use one of {sorted(_SDTYPES)}, "
            "'unknown', or a personal-data type such as 'email' or 'first_name'"
        )
        return None
    if sdtype != "unknown" and spec.get("pii") is False:
        return ColumnSchema(name, ColumnKind.CATEGORICAL, "object", note=f"SDV sdtype '{sdtype}' (pii false) read as categorical")
    note = (f"{PERSONAL_NOTE} (SDV sdtype '{sdtype}'): not modelled, fresh values are generated; "
            f"to model it, set its kind (--column {name}=categorical)")
    return ColumnSchema(name, ColumnKind.IDENTIFIER, "object", note=note)


def _personal_sdtype(sdtype: str) -> bool:
    """SDV's 'unknown' and its personal-data types: rdt's anonymizers and any Faker provider name."""
    if sdtype == "unknown":
        return True
    try:
        from rdt.transformers.pii.anonymization import SDTYPE_ANONYMIZERS, is_faker_function
    except ImportError:  # SDV metadata without SDV installed: trust the file
        return True
    return sdtype in SDTYPE_ANONYMIZERS or bool(is_faker_function(sdtype))


def _numerical(name: str, spec: Mapping[str, Any], problems: list[str]) -> ColumnSchema | None:
    """SDV 1.x says ``computer_representation``; SDV 2.x says ``decimal_places`` (0: integers)."""
    representation, places = spec.get("computer_representation"), spec.get("decimal_places")
    if representation is None and places is None:
        return ColumnSchema(name, ColumnKind.NUMERICAL, "float64", note=INTEGER_FROM_DATA)
    if representation == "Float" or (representation is None and places != 0):
        decimals = places if isinstance(places, int) and not isinstance(places, bool) else None
        return ColumnSchema(name, ColumnKind.NUMERICAL, "float64", decimals=decimals)
    if representation in _INTEGER_REPRESENTATIONS or (representation is None and places == 0):
        return ColumnSchema(name, ColumnKind.NUMERICAL, "Int64", is_integer=True)
    problems.append(
        f"column '{name}': computer_representation {representation!r} is not one of "
        f"{['Float', *sorted(_INTEGER_REPRESENTATIONS)]}"
    )
    return None
