"""Shared fixtures: the demo federation shipped in the package and small, fast run settings."""

from __future__ import annotations

import os

import pandas as pd
import pytest

os.environ.setdefault("RAY_TMPDIR", "/tmp/fedtab-ray")
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")

from fedtab.config import FedtabConfig  # noqa: E402
from fedtab.demo import demo_parties  # noqa: E402

SMALL_MODEL = {"embedding_dim": 32, "generator_dims": [64, 64], "discriminator_dims": [64, 64]}


@pytest.fixture(scope="session")
def demo_frames() -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(path) for name, path in demo_parties().items()}


@pytest.fixture(scope="session")
def small_config() -> FedtabConfig:
    return FedtabConfig(rounds=2, local_epochs=1.0, batch_size=200, seed=3, model_options=SMALL_MODEL, bgm_max_rounds=5)
