"""Shared fixtures: the demo federation shipped in the package and small, fast run settings."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("RAY_TMPDIR", "/tmp/fedtab-ray")
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")

from fedtab.config import FedtabConfig  # noqa: E402
from fedtab.demo import demo_parties  # noqa: E402

# The benchmark tables sit in shared/ beside the repository (never copied in); FEDTAB_DATASETS overrides.
DATASETS = Path(os.environ.get("FEDTAB_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))

SMALL_MODEL = {"embedding_dim": 32, "generator_dims": [64, 64], "discriminator_dims": [64, 64]}


@pytest.fixture(scope="session")
def demo_frames() -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(path) for name, path in demo_parties().items()}


@pytest.fixture(scope="session")
def small_config() -> FedtabConfig:
    return FedtabConfig(model="ctgan", rounds=2, local_epochs=1.0, batch_size=200, seed=3, model_options=SMALL_MODEL,
                        bgm_max_rounds=5)


def dataset_path(name: str) -> Path:
    """A benchmark table, or a skip that says where it was looked for (tests must pass without shared/)."""
    path = DATASETS / name
    if not path.is_file():
        pytest.skip(f"the benchmark table {name} is not at {DATASETS} (shared/ beside the repository)")
    return path


@pytest.fixture(scope="session")
def adult_train_path() -> Path:
    return dataset_path("adult_train.csv.gz")


@pytest.fixture(scope="session")
def adult_test_path() -> Path:
    return dataset_path("adult_test.csv.gz")


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str]]:
    """Run ``fedtab ARGS`` in this process; returns its exit code (0 when it returns) and everything it printed."""
    from fedtab.cli.main import run

    def invoke(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["fedtab", *args])
        code = 0
        try:
            run()
        except SystemExit as stop:
            code = int(stop.code or 0)
        captured = capsys.readouterr()
        return code, captured.err + captured.out

    return invoke
