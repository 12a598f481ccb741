"""`fedtab evaluate` end to end through the real entry point: files in, report and JSON out, clean errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    sector = rng.choice(["private", "public", "?"], n, p=[0.6, 0.3, 0.1])
    label = np.where(rng.random(n) < 1 / (1 + np.exp(-(age - 45) / 8)), ">50K", "<=50K")
    return pd.DataFrame({"age": age, "hours": rng.normal(40, 8, n).round(1), "sector": sector, "income": label})


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {"real": tmp_path / "real.csv", "synthetic": tmp_path / "synthetic.parquet", "holdout": tmp_path / "holdout.csv"}
    table(600, 1).to_csv(paths["real"], index=False)
    table(600, 3).to_parquet(paths["synthetic"], index=False)
    table(400, 2).to_csv(paths["holdout"], index=False)
    return paths


def test_evaluate_writes_report_and_json(cli, files, tmp_path):
    report, scores = tmp_path / "out" / "report.html", tmp_path / "out" / "scores.json"
    code, output = cli("evaluate", "--real", str(files["real"]), "--synthetic", str(files["synthetic"]),
                          "--holdout", str(files["holdout"]), "--target", "income", "--report", str(report), "--json", str(scores), "--seed", "3")
    assert code == 0, output
    assert "Low risk" in output and "relative utility" in output and str(report) in output
    data = json.loads(scores.read_text())
    assert data["rows"] == {"real": 600, "synthetic": 600, "holdout": 400}
    assert data["seed"] == 3 and data["target"] == "income"
    sector = next(m for m in data["fidelity"]["marginals"] if m["column"] == "sector")
    assert "?" not in sector["labels"] and "(missing)" in sector["labels"]  # '?' read as missing
    assert "<html" in report.read_text()[:200]


def test_target_missing_from_synthetic_is_one_line_with_its_exit_code(cli, files, tmp_path):
    table(300, 3).drop(columns="income").to_csv(tmp_path / "no_target.csv", index=False)
    code, output = cli("evaluate", "--real", str(files["real"]), "--synthetic", str(tmp_path / "no_target.csv"),
                          "--target", "income", "--report", str(tmp_path / "r.html"))
    assert code == 3
    assert "target 'income' is missing from the synthetic table" in output
    assert "Traceback" not in output and not (tmp_path / "r.html").exists()


def test_missing_file_and_wrong_suffix(cli, files, tmp_path):
    code, output = cli("evaluate", "--real", str(tmp_path / "nope.csv"), "--synthetic", str(files["synthetic"]))
    assert code == 4 and "does not exist" in output
    code, output = cli("evaluate", "--real", str(files["real"]), "--synthetic", str(files["synthetic"]), "--report", "r.pdf")
    assert code == 2 and "--report must end in .html" in output
