"""Bad input at the command line: one line naming party and column, a non-zero exit code, no traceback."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest


def good_frame(rows: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"age": rng.integers(18, 90, rows), "city": rng.choice(["a", "b", "c"], rows)})


def assert_one_clean_line(output: str) -> None:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output


@pytest.fixture
def good_csv(tmp_path):
    path = tmp_path / "good.csv"
    good_frame().to_csv(path, index=False)
    return path


def test_missing_path(cli, tmp_path, good_csv):
    code, out = cli("synthesize", "--party", f"a={good_csv}", "--party", f"b={tmp_path / 'nope.csv'}")
    assert code == 4
    assert_one_clean_line(out)
    assert "'b'" in out and "nope.csv" in out


def test_columns_differ(cli, tmp_path, good_csv):
    other = tmp_path / "other.csv"
    good_frame().rename(columns={"city": "town"}).to_csv(other, index=False)
    code, out = cli("synthesize", "--party", f"a={good_csv}", "--party", f"b={other}")
    assert code == 3
    assert_one_clean_line(out)
    assert "city" in out and "town" in out and "'b'" in out


def test_empty_party(cli, tmp_path, good_csv):
    empty = tmp_path / "empty.csv"
    empty.write_text("age,city\n")
    code, out = cli("synthesize", "--party", f"a={good_csv}", "--party", f"b={empty}")
    assert code == 4
    assert_one_clean_line(out)
    assert "'b'" in out


def test_one_row_party(cli, tmp_path, good_csv):
    one = tmp_path / "one.csv"
    good_frame(1).to_csv(one, index=False)
    code, out = cli("synthesize", "--party", f"a={good_csv}", "--party", f"b={one}")
    assert code == 4
    assert_one_clean_line(out)
    assert "'b'" in out and "1 row" in out


def test_infinity_in_numerical_column(cli, tmp_path, good_csv):
    bad = tmp_path / "inf.csv"
    frame = good_frame().astype({"age": float})
    frame.loc[3, "age"] = np.inf
    frame.to_csv(bad, index=False)
    code, out = cli("synthesize", "--party", f"a={good_csv}", "--party", f"b={bad}")
    assert code == 3
    assert_one_clean_line(out)
    assert "'b'" in out and "'age'" in out


def test_non_utf8_bytes(cli, tmp_path, good_csv):
    bad = tmp_path / "latin.csv"
    bad.write_bytes("age,city\n30,K\xf6ln\n".encode("latin-1") * 1)
    code, out = cli("synthesize", "--party", f"a={good_csv}", "--party", f"b={bad}")
    assert code == 4
    assert_one_clean_line(out)
    assert "UTF-8" in out and "'b'" in out


def test_malformed_csv(cli, tmp_path, good_csv):
    bad = tmp_path / "ragged.csv"
    bad.write_text('age,city\n30,a\n31,"b\n32,c,extra,more\n')
    code, out = cli("synthesize", "--party", f"a={good_csv}", "--party", f"b={bad}")
    assert code == 4
    assert_one_clean_line(out)
    assert "'b'" in out


def test_all_missing_column(cli, tmp_path):
    paths = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.csv"
        good_frame().assign(note=np.nan).to_csv(path, index=False)
        paths.append(f"{name}={path}")
    code, out = cli("synthesize", "--party", paths[0], "--party", paths[1])
    assert code == 3
    assert_one_clean_line(out)
    assert "'note'" in out and "drop" in out


def test_bad_party_flag_and_output(cli, good_csv):
    code, out = cli("synthesize", "--party", "no-equals-sign")
    assert code == 2 and "NAME=PATH_OR_URL" in out
    code, out = cli("synthesize", "--party", f"a={good_csv}", "--out", "x.xlsx")
    assert code == 2 and ".parquet or .csv" in out


def test_evaluate_with_epsilon_is_refused_with_what_to_do(cli, tmp_path, good_csv):
    code, out = cli("synthesize", "--party", f"a={good_csv}", "--party", f"b={good_csv}", "--epsilon", "1",
                    "--evaluate", "--target", "city", "--out", str(tmp_path / "s.parquet"))
    assert code == 2
    assert "refused under differential privacy" in out and "fedtab evaluate" in out
