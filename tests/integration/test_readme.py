"""The README's examples run as written: its Python, TOML and `fedtab` blocks are read from README.md itself.

Only the sizes shrink, each by a named substitution that must apply: 1 round instead of 30, a few
hundred rows, and the in-process engine (the simulation engine has its own tests in tests/e2e).
"""

from __future__ import annotations

import re
import shlex
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from fedtab.config import FedtabConfig
from fedtab.demo import demo_parties

README = Path(__file__).resolve().parents[2] / "README.md"
SMALLER = {"rounds=30": "rounds=1", "10_000": "300", "FederatedSynthesizer(config)": 'FederatedSynthesizer(config, engine="local")'}

pytestmark = pytest.mark.slow


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def smaller(code: str, substitutions: dict[str, str]) -> str:
    for old, new in substitutions.items():
        assert old in code, f"the README no longer has {old!r}; update the test's substitutions"
        code = code.replace(old, new)
    return code


def fedtab_commands() -> list[list[str]]:
    """Every `fedtab ...` line of the README's bash blocks, with backslash continuations joined."""
    commands = []
    for block in blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#", 1)[0].strip() if not line.strip().startswith("#") else ""
            if line.startswith("fedtab "):
                commands.append(shlex.split(line)[1:])
    return commands


def test_the_sdk_snippet_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (code,) = blocks("python")
    monkeypatch.chdir(tmp_path)
    exec(compile(smaller(code, SMALLER), "README.md", "exec"), {})  # noqa: S102 - the README's own code
    assert (tmp_path / "model.fedtab").is_file() and (tmp_path / "report.html").is_file()


def test_the_toml_example_is_a_valid_config(tmp_path: Path) -> None:
    toml = next(b for b in blocks("toml") if "[run]" in b)
    (tmp_path / "fedtab.toml").write_text(toml)
    config = FedtabConfig.from_toml(tmp_path / "fedtab.toml")
    assert config.columns == {"education-num": "categorical"} and config.rounds == 30


def write_readme_files(folder: Path, rows: int = 300) -> None:
    """The files the README's commands name, cut from the demo federation (UCI Adult)."""
    frames = [pd.read_parquet(p).head(rows) for p in demo_parties().values()]
    (folder / "data").mkdir()
    frames[0].to_csv(folder / "data" / "a.csv", index=False)
    frames[1].to_parquet(folder / "data" / "b.parquet", index=False)
    with sqlite3.connect(folder / "c.db") as db:
        frames[2].to_sql("patients", db, index=False)
    frames[0].to_csv(folder / "a.csv", index=False)
    frames[1].to_csv(folder / "b.csv", index=False)
    frames[2].to_csv(folder / "train.csv", index=False)
    pd.read_parquet(list(demo_parties().values())[2]).tail(rows).to_csv(folder / "test.csv", index=False)


def test_the_cli_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., tuple[int, str]]) -> None:
    commands = fedtab_commands()
    assert [c[0] for c in commands] == ["synthesize", "synthesize", "evaluate"]
    write_readme_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    for args in commands:
        if args[0] == "synthesize":
            args = [*args, "--engine", "local"]
            args = [("1" if previous == "--rounds" else a) for previous, a in zip(["", *args], args)]
            if "--rounds" not in args:
                args += ["--rounds", "1"]
        code, output = cli(*args)
        assert code == 0, f"fedtab {shlex.join(args)} failed:\n{output}"
        if args[0] == "synthesize" and "--evaluate" in args:  # the summary says what the verdicts rest on
            text = " ".join(output.replace("│", " ").split())  # the summary table's wrapped cells as one line
            assert "quality 0." in text and "roc_auc on 'income'" in text and "trained on synthetic 0." in text, output
    assert (tmp_path / "synthetic.parquet").is_file() and (tmp_path / "report.html").is_file()
    assert (tmp_path / "synthetic.report.html").is_file() and (tmp_path / "scores.json").is_file()
