"""Column kinds from the command line: --column, [columns.NAME] in fedtab.toml, --metadata, and what the summary says."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fedtab.model_state import ModelState
from fedtab.schema import ColumnKind

Cli = Callable[..., tuple[int, str]]


def bank_csvs(folder: Path, rows: int = 150) -> list[str]:
    """Two banks with credit default's coded columns (SEX, EDUCATION, PAY_0, the 0/1 target) and amounts."""
    args = []
    for seed, name in enumerate(("bank_b", "bank_a")):
        rng = np.random.default_rng(seed)
        pd.DataFrame({
            "ID": np.arange(seed * rows, (seed + 1) * rows), "LIMIT_BAL": rng.integers(1, 50, rows) * 10_000,
            "SEX": rng.integers(1, 3, rows), "EDUCATION": rng.integers(0, 7, rows), "PAY_0": rng.integers(-2, 9, rows),
            "default": rng.integers(0, 2, rows),
        }).to_csv(folder / f"{name}.csv", index=False)
        args += ["--party", f"{name}={folder / f'{name}.csv'}"]
    return args


def test_coded_columns_are_listed_and_a_column_flag_changes_one(tmp_path: Path, cli: Cli) -> None:
    code, output = cli("synthesize", *bank_csvs(tmp_path), "--column", "SEX=numerical", "--rounds", "1",
                       "--engine", "local", "--out", str(tmp_path / "s.csv"), "--format", "json")
    assert code == 0, output
    summary = json.loads(output[output.index("{"):])
    assert summary["coded_categorical"] == ["EDUCATION", "PAY_0", "default"]
    assert list(summary["parties"]) == ["bank_a", "bank_b"]
    written = pd.read_csv(tmp_path / "s.csv")
    assert all(pd.api.types.is_integer_dtype(written[c]) for c in ("SEX", "EDUCATION", "PAY_0", "default"))


@pytest.mark.parametrize(("flag", "words"), [
    ("SEXX=categorical", "'SEXX'"),
    ("SEX=categorial", "column 'SEX': kind 'categorial' is not one of"),
    ("SEX", "--column must look like NAME=KIND"),
])
def test_a_bad_column_flag_is_one_line_naming_the_column(tmp_path: Path, cli: Cli, flag: str, words: str) -> None:
    code, output = cli("synthesize", *bank_csvs(tmp_path), "--column", flag, "--engine", "local")
    assert code == 2 and words in output and len(output.strip().splitlines()) == 1, output


def test_toml_columns_and_sdv_personal_data_are_announced(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "fedtab.toml").write_text('[run]\nrounds = 1\n\n[columns.EDUCATION]\nkind = "numerical"\n')
    columns = {"ID": {"sdtype": "ssn"}, "LIMIT_BAL": {"sdtype": "numerical", "decimal_places": 0},
               **{c: {"sdtype": "ordinal"} for c in ("SEX", "EDUCATION", "PAY_0", "default")}}
    (tmp_path / "meta.json").write_text(json.dumps({"tables": {"credit": {"columns": columns}}, "METADATA_SPEC_VERSION": "V2"}))
    code, output = cli("synthesize", *bank_csvs(tmp_path), "--config", str(tmp_path / "fedtab.toml"),
                       "--metadata", str(tmp_path / "meta.json"), "--engine", "local", "--out", str(tmp_path / "s.parquet"),
                       "--save-model", str(tmp_path / "m.fedtab"))
    assert code == 0, output
    assert "personal data" in output and "ID: not modelled" in output
    assert "1 round;" in output
    assert pd.read_parquet(tmp_path / "s.parquet")["ID"].tolist() == list(range(1, 301))  # fresh ids, not modelled
    schema = ModelState.load(tmp_path / "m.fedtab").plan.schema
    assert (schema["EDUCATION"].kind, schema["SEX"].kind, schema["ID"].kind) == (
        ColumnKind.NUMERICAL, ColumnKind.CATEGORICAL, ColumnKind.IDENTIFIER)
