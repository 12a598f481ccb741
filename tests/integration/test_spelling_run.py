"""A run writes the synthetic table the way the parties' files are written: boolean words, the
missing marker, integers and date formats come back as they went in (CSV and Parquet, CLI and SDK)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fedtab import FederatedSynthesizer, FedtabConfig
from tests.conftest import SMALL_MODEL


def party_csv(path: Path, seed: int, rows: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "smoker": rng.choice(["Yes", "No"], rows),
        "job": rng.choice(["nurse", "clerk", "?"], rows),
        "income": rng.integers(20_000, 90_000, rows).astype(object),
        "visit": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, rows), unit="D"),
        "flag": rng.choice(["Y", "N"], rows),
    })
    frame.loc[rng.random(rows) < 0.1, "income"] = "?"
    frame["visit"] = frame["visit"].dt.strftime("%d/%m/%Y")
    frame.to_csv(path, index=False)
    return frame


def real_spellings(frames: list[pd.DataFrame]) -> dict[str, set[str]]:
    return {c: set(pd.concat(frames)[c].astype(str)) for c in ("smoker", "job", "flag")}


def test_cli_csv_comes_back_spelled_as_the_files(tmp_path: Path, cli: Callable[..., tuple[int, str]]) -> None:
    frames = [party_csv(tmp_path / f"{n}.csv", seed) for seed, n in enumerate("ab")]
    out = tmp_path / "synthetic.csv"
    code, output = cli("synthesize", "--party", f"a={tmp_path / 'a.csv'}", "--party", f"b={tmp_path / 'b.csv'}",
                       "--rounds", "1", "--engine", "local", "--out", str(out), "--format", "json")
    assert code == 0, output
    text = pd.read_csv(out, dtype=str, keep_default_na=False)
    for column, spellings in real_spellings(frames).items():
        assert set(text[column]) <= spellings, column
    income = text["income"]
    assert income.str.fullmatch(r"\d+|\?").all() and (income == "?").any()
    assert pd.to_datetime(text["visit"], format="%d/%m/%Y", errors="coerce").notna().all()


def test_sdk_parquet_keeps_words_markers_and_integers(tmp_path: Path) -> None:
    for seed, name in enumerate("ab"):
        party_csv(tmp_path / f"{name}.csv", seed)
    config = FedtabConfig(model="ctgan", rounds=1, batch_size=60, seed=1, model_options=SMALL_MODEL)
    synth = FederatedSynthesizer(config, engine="local").fit({n: tmp_path / f"{n}.csv" for n in "ab"})
    path = synth.write(tmp_path / "synthetic.parquet")
    table = pd.read_parquet(path, dtype_backend="numpy_nullable")
    assert set(table["smoker"]) <= {"Yes", "No"} and set(table["flag"]) <= {"Y", "N"}
    assert set(table["job"]) <= {"nurse", "clerk", "?"} and table["job"].notna().all()
    assert table["income"].dtype == "Int64" and str(table["visit"].dtype).startswith("datetime64")
    typed = synth.sample(spelled=False)
    assert typed["smoker"].dtype == "bool" and typed["job"].isna().any() == (table["job"] == "?").any()


@pytest.mark.parametrize("separator", [";", "\t"])
def test_a_csv_with_another_separator_reads_right(tmp_path: Path, separator: str) -> None:
    from fedtab.connectors import load_party

    frame = party_csv(tmp_path / "a.csv", 0)
    frame.to_csv(tmp_path / "semi.csv", sep=separator, index=False)
    party = load_party("a", tmp_path / "semi.csv")
    assert list(party.frame.columns) == list(frame.columns)
    assert party.schema["smoker"].tokens == ("Yes", "No") and party.schema["income"].missing_token == "?"


def test_yes_no_declared_categorical_comes_back_as_its_words(tmp_path: Path, cli: Callable[..., tuple[int, str]]) -> None:
    for seed, name in enumerate("ab"):
        party_csv(tmp_path / f"{name}.csv", seed)
    out = tmp_path / "synthetic.csv"
    code, output = cli("synthesize", "--party", f"a={tmp_path / 'a.csv'}", "--party", f"b={tmp_path / 'b.csv'}",
                       "--column", "smoker=categorical", "--rounds", "1", "--engine", "local", "--out", str(out))
    assert code == 0, output
    assert set(pd.read_csv(out, dtype=str)["smoker"]) <= {"Yes", "No"}
