"""Party-level DP through Flower's simulation engine: the same plan and ledger as the in-process reference."""

from __future__ import annotations

import pytest

from fedtab import FederatedSynthesizer

pytestmark = pytest.mark.slow


def test_party_level_dp_in_the_simulation_engine_matches_the_local_ledger(demo_frames, small_config):
    config = small_config.replace(party_epsilon=4.0)
    simulated = FederatedSynthesizer(config, engine="simulation").fit(demo_frames)
    local = FederatedSynthesizer(config, engine="local").fit(demo_frames)
    entry = simulated.state_.ledger["party_level"]
    assert entry["epsilon"] <= 4.0 and entry["rounds"] == config.rounds and entry["parties"] == len(demo_frames)
    assert simulated.state_.ledger == local.state_.ledger  # the noise differs (a secret per run); the accounting does not
    assert simulated.state_.warnings == []
    assert len(simulated.sample(100, seed=1)) == 100
