"""Secure aggregation in Flower's simulation engine: the encoder statistics travel only as SecAgg+ messages, and
the ledger says the noise was added in shares."""

from __future__ import annotations

from collections import defaultdict

import pytest

from fedtab import FederatedSynthesizer, FedtabConfig
from fedtab.connectors.public_domain import read_public_domain
from fedtab.demo import demo_public_domain_path
from fedtab.federation import keys
from fedtab.privacy.planning import ENCODER_DISTRIBUTED

pytestmark = pytest.mark.slow

TINY = {"embedding_dim": 16, "generator_dims": [32], "discriminator_dims": [32]}


def test_secure_aggregation_runs_in_the_simulation_engine(demo_frames):
    sent: dict[str, set[str]] = defaultdict(set)
    encoders: list[dict] = []
    config = FedtabConfig(model="ctgan", rounds=1, batch_size=200, seed=4, epsilon=3.0, accountant="rdp", model_options=TINY, secure_aggregation=True,
                          public_domain=read_public_domain(demo_public_domain_path()))
    synth = FederatedSynthesizer(config, engine="simulation").fit(
        demo_frames, tap=lambda party, kind, payload: sent[kind].add(party),
        progress=lambda stage, done, total, record: encoders.append(record) if stage == "encoders" else None)
    assert keys.STATS not in sent
    assert all(sent[kind] == set(demo_frames) for kind in keys.SECURE_MESSAGES)
    assert [r["secagg_parties"] for r in encoders] == [3.0, 3.0] and all(r["bytes_received"] > r["bytes_sent"] > 0 for r in encoders)
    ledger = synth.state_.ledger
    assert {m["mechanism"] for p in ledger["parties"] for m in p["mechanisms"]} == {ENCODER_DISTRIBUTED, "training"}
    assert all(p["epsilon"] <= 3.0 for p in ledger["parties"])
    assert len(synth.sample(50)) == 50
