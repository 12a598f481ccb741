"""SDV metadata export and import: round trip, SDV's own loader, and what the format cannot carry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fedtab.connectors import load_party, schema_from_sdv_metadata, schema_to_sdv_metadata
from fedtab.errors import ConfigError, SchemaError
from fedtab.schema import ColumnKind, ColumnSchema, TableSchema

SCHEMA = TableSchema((
    ColumnSchema("age", ColumnKind.NUMERICAL, "Int64", is_integer=True),
    ColumnSchema("score", ColumnKind.NUMERICAL, "float64"),
    ColumnSchema("city", ColumnKind.CATEGORICAL, "object"),
    ColumnSchema("member", ColumnKind.BOOLEAN, "boolean"),
    ColumnSchema("joined", ColumnKind.DATETIME, "datetime64[ns]", datetime_format="%Y-%m-%d"),
    ColumnSchema("uid", ColumnKind.IDENTIFIER, "object"),
))


def test_export_shape() -> None:
    exported = schema_to_sdv_metadata(SCHEMA, table_name="people")
    assert exported["METADATA_SPEC_VERSION"] == "V1"
    assert exported["tables"]["people"]["columns"] == {
        "age": {"sdtype": "numerical", "computer_representation": "Int64"},
        "score": {"sdtype": "numerical", "computer_representation": "Float"},
        "city": {"sdtype": "categorical"},
        "member": {"sdtype": "boolean"},
        "joined": {"sdtype": "datetime", "datetime_format": "%Y-%m-%d"},
        "uid": {"sdtype": "id"},
    }


def test_round_trip_keeps_what_sdv_carries(tmp_path: Path) -> None:
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(schema_to_sdv_metadata(SCHEMA)))
    for source in (schema_to_sdv_metadata(SCHEMA), path, str(path)):
        assert schema_from_sdv_metadata(source) == SCHEMA


def test_lossy_fields_are_dropped() -> None:
    rich = TableSchema((
        ColumnSchema("a", ColumnKind.NUMERICAL, "int64", is_integer=True, bounds=(0.0, 9.0), note="n"),
        ColumnSchema("b", ColumnKind.CATEGORICAL, "object", has_missing=True, categories=("x", "y")),
    ))
    back = schema_from_sdv_metadata(schema_to_sdv_metadata(rich))
    assert [(c.kind, c.is_integer, c.bounds, c.categories, c.has_missing) for c in back] == [
        (ColumnKind.NUMERICAL, True, None, None, False), (ColumnKind.CATEGORICAL, False, None, None, False),
    ]


def test_sdv_accepts_the_export() -> None:
    from sdv.metadata import Metadata

    metadata = Metadata.load_from_dict(schema_to_sdv_metadata(SCHEMA, table_name="people"))
    metadata.validate()
    columns = metadata.to_dict()["tables"]["people"]["columns"]
    assert {name: spec["sdtype"] for name, spec in columns.items()} == {
        "age": "numerical", "score": "numerical", "city": "categorical", "member": "boolean",
        "joined": "datetime", "uid": "id",
    }
    assert schema_from_sdv_metadata(metadata.to_dict()).names == SCHEMA.names


def test_sdv_v2_without_representation_lets_the_data_decide_integers() -> None:
    metadata = schema_from_sdv_metadata({
        "tables": {"t": {"columns": {"n": {"sdtype": "numerical"}, "f": {"sdtype": "numerical"},
                                     "k": {"sdtype": "id"}}}},
        "relationships": [], "METADATA_SPEC_VERSION": "V2",
    })
    party = load_party("a", pd.DataFrame({"n": [1, 2], "f": [0.5, 1.0], "k": [7, 8]}), metadata=metadata)
    assert [(c.is_integer, c.dtype) for c in party.schema] == [(True, "int64"), (False, "float64"), (True, "int64")]


def test_legacy_single_table_format_and_semantic_sdtypes() -> None:
    schema = schema_from_sdv_metadata({
        "columns": {"mail": {"sdtype": "email", "pii": True}, "cc": {"sdtype": "country_code", "pii": False}},
        "METADATA_SPEC_VERSION": "SINGLE_TABLE_V1",
    })
    assert [c.kind for c in schema] == [ColumnKind.IDENTIFIER, ColumnKind.CATEGORICAL]
    assert "personal data" in schema["mail"].note


def test_multi_table_needs_a_name() -> None:
    data = {"tables": {"a": {"columns": {"x": {"sdtype": "categorical"}}},
                       "b": {"columns": {"y": {"sdtype": "boolean"}}}}}
    with pytest.raises(SchemaError, match=r"holds tables \['a', 'b'\]; pass table_name="):
        schema_from_sdv_metadata(data)
    assert schema_from_sdv_metadata(data, table_name="b").names == ["y"]
    with pytest.raises(SchemaError, match="has no table 'c'"):
        schema_from_sdv_metadata(data, table_name="c")


def test_bad_columns_listed_together() -> None:
    data = {"tables": {"t": {"columns": {"x": {"sdtype": "numerical", "computer_representation": "Int128"},
                                         "y": "categorical"}}}}
    with pytest.raises(SchemaError) as raised:
        schema_from_sdv_metadata(data)
    assert len(raised.value.problems) == 2
    assert "computer_representation 'Int128' is not one of" in raised.value.problems[0]


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        schema_from_sdv_metadata(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="is not readable JSON"):
        schema_from_sdv_metadata(bad)


def credit_like(rows: int = 200) -> pd.DataFrame:
    """Credit default's columns and codes (ID, amounts, SEX/EDUCATION/MARRIAGE/PAY_x codes, the 0/1 target)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"ID": np.arange(1, rows + 1), "LIMIT_BAL": rng.integers(1, 50, rows) * 10_000,
                          "SEX": rng.integers(1, 3, rows), "EDUCATION": rng.integers(0, 7, rows),
                          "MARRIAGE": rng.integers(0, 4, rows), "AGE": rng.integers(21, 76, rows)})
    for month in ("PAY_0", "PAY_2", "PAY_3"):
        frame[month] = rng.integers(-2, 7, rows)
    frame["BILL_AMT1"] = rng.normal(50_000, 20_000, rows).round(2)
    frame["default_payment_next_month"] = rng.integers(0, 2, rows)
    return frame


def test_metadata_written_by_sdv_itself_reads_every_column_as_the_right_kind(tmp_path: Path) -> None:
    from sdv.metadata import Metadata

    frame = credit_like()
    path = tmp_path / "credit.json"
    Metadata.detect_from_dataframes({"credit": frame}).save_to_json(str(path))
    sdtypes = {c: spec["sdtype"] for c, spec in json.loads(path.read_text())["tables"]["credit"]["columns"].items()}
    assert sdtypes["SEX"] == "ordinal" and sdtypes["default_payment_next_month"] == "ordinal"  # what SDV 2 writes
    schema = schema_from_sdv_metadata(path)
    kinds = {c.name: c.kind for c in schema}
    assert kinds["ID"] is ColumnKind.IDENTIFIER
    assert all(kinds[c] is ColumnKind.CATEGORICAL for c in ("SEX", "EDUCATION", "MARRIAGE", "PAY_0", "default_payment_next_month"))
    assert (schema["AGE"].kind, schema["AGE"].is_integer) == (ColumnKind.NUMERICAL, True)
    assert not any(c.note.startswith("personal data") for c in schema)
    party = load_party("bank_a", frame, metadata=schema)
    assert party.frame["SEX"].dtype == "int64" and party.schema["default_payment_next_month"].dtype == "int64"


def test_fedtab_metadata_is_valid_for_sdv_and_reads_back(tmp_path: Path) -> None:
    from sdv.metadata import Metadata

    schema = load_party("a", credit_like()).schema
    metadata = Metadata.load_from_dict(schema_to_sdv_metadata(schema, "credit"))
    metadata.validate()
    assert {c.name: c.kind for c in schema_from_sdv_metadata(metadata.to_dict())} == {c.name: c.kind for c in schema}


def test_an_unknown_sdtype_is_an_error_naming_the_column_and_pii_is_personal_data() -> None:
    with pytest.raises(SchemaError, match="column 'SEX': sdtype 'ordinall' is not an SDV sdtype"):
        schema_from_sdv_metadata({"columns": {"SEX": {"sdtype": "ordinall"}}})
    schema = schema_from_sdv_metadata({"columns": {"who": {"sdtype": "first_name"}, "x": {"sdtype": "unknown"}}})
    assert all(c.kind is ColumnKind.IDENTIFIER and c.note.startswith("personal data") for c in schema)
