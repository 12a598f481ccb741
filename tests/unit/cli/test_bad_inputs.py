"""The four bad inputs of issue 13 through the CLI, on the credit-default fixture: each is one line that names
the column (or, for a semicolon file, is read with its own separator), with the words a user can act on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "credit_default"


def parties(first: Path | None = None) -> list[str]:
    return ["--party", f"bank_a={first or FIXTURE / 'bank_a.csv'}", "--party", f"bank_b={FIXTURE / 'bank_b.csv'}",
            "--engine", "local"]


def one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


def test_a_semicolon_file_is_read_by_its_own_separator(tmp_path, cli):
    """Asked about a column it lacks, the semicolon party lists its 24 columns: the separator was sniffed."""
    semicolon = tmp_path / "bank_a.csv"
    semicolon.write_text((FIXTURE / "bank_a.csv").read_text().replace(",", ";"))
    code, output = cli("synthesize", *parties(semicolon), "--column", "NOPE=categorical")
    line = one_line(output)
    assert code == 2 and "'NOPE'" in line and "'SEX', 'EDUCATION'" in line and "default_payment_next_month']" in line


@pytest.mark.parametrize(("flag", "words"), [
    ("SEX=categorial", "error: Invalid fedtab configuration: column 'SEX': kind 'categorial' is not one of "
                       "['numerical', 'categorical', 'boolean', 'datetime', 'id']. Fix it in --column, [columns.SEX] or columns="),
    ("NOPE=categorical", "error: Column kinds are set for columns that party 'bank_a' does not have: ['NOPE']"),
])
def test_a_bad_kind_flag_names_the_column_and_keeps_its_fix(cli, flag, words):
    code, output = cli("synthesize", *parties(), "--column", flag)
    line = one_line(output)
    assert code == 2 and line.startswith(words), line  # '[columns.SEX]' is text, not console markup
    assert ":;" not in line


def test_sdv_metadata_with_an_unknown_sdtype_names_the_column(tmp_path, cli):
    columns = {c: {"sdtype": "numerical"} for c in (FIXTURE / "bank_a.csv").read_text().splitlines()[0].split(",")}
    columns["SEX"] = {"sdtype": "weird"}
    (tmp_path / "meta.json").write_text(json.dumps({"METADATA_SPEC_VERSION": "V1", "tables": {"credit": {"columns": columns}}}))
    code, output = cli("synthesize", *parties(), "--metadata", str(tmp_path / "meta.json"))
    line = one_line(output)
    assert code == 3 and "cannot read: column 'SEX': sdtype 'weird' is not an SDV sdtype" in line, line
