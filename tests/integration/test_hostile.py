"""Hostile or broken parties, each with its positive control: without the server's checks the attack
works (the NaN party poisons the global model, the ×10⁶ party drags it away, the row-count liar takes
the FedAvg weight); with them it does not, and the party is named."""

from __future__ import annotations

import numpy as np
import pytest

from fedtab.connectors import align, load_party, reconcile
from fedtab.federation import keys, parties
from fedtab.federation.coordinator import fit_plan, run_federation, train, training_start
from fedtab.federation.local import LocalTransport
from fedtab.federation.party import PartyWorker
from fedtab.federation.payload import Payload
from fedtab.federation.screening import update_norm
from fedtab.synthesizer import stage_parties

HOSTILE = "clinic_south"
ROWS = 200
TINY_MODEL = {"embedding_dim": 8, "generator_dims": [16], "discriminator_dims": [16]}


@pytest.fixture(scope="module")
def setup(demo_frames, small_config, tmp_path_factory):
    """Three demo parties of ``ROWS`` rows, their plan fitted once, and a clean 2-round run to compare with."""
    tables = [load_party(n, f.iloc[:ROWS]) for n, f in demo_frames.items()]
    schema = reconcile(tables)
    staged = stage_parties([align(t, schema) for t in tables], tmp_path_factory.mktemp("staged"))
    config = small_config.replace(rounds=2, local_epochs=0.5, batch_size=50, model_options=TINY_MODEL, bgm_max_rounds=2)
    transport = LocalTransport(staged)
    plan, _, marginals = fit_plan(transport, config=config, schema=schema)
    start = training_start(config, plan, transport.parties, marginals)
    clean, _, _ = train(transport, plan=plan, config=config, start=start)
    return staged, schema, config, plan, start, clean


def hostile(monkeypatch, tamper):
    """The hostile party's training replies pass through ``tamper(global_weights, reply)``."""
    original = PartyWorker._train

    def train_then_tamper(self, payload, state):
        reply, state = original(self, payload, state)
        if self.party.name == HOSTILE:
            reply = Payload(tamper(payload.arrays, reply.arrays), reply.config, reply.metrics)
        return reply, state

    monkeypatch.setattr(PartyWorker, "_train", train_then_tamper)


def nan_update(global_weights, update):
    return {k: np.full_like(v, np.nan) if np.issubdtype(v.dtype, np.floating) else v for k, v in update.items()}


def scaled_update(global_weights, update):
    return {k: (g + 1e6 * (update[k] - g)).astype(g.dtype) if np.issubdtype(g.dtype, np.floating) else update[k]
            for k, g in global_weights.items()}


def run(setup, **changes):
    staged, _, config, plan, start, _ = setup
    return train(LocalTransport(staged), plan=plan, config=config.replace(**changes), start=start)


def float_values(weights) -> np.ndarray:
    return np.concatenate([v.ravel() for v in weights.values() if np.issubdtype(v.dtype, np.floating)])


def test_nan_party_poisons_without_the_check_and_is_rejected_with_it(setup, monkeypatch):
    hostile(monkeypatch, nan_update)
    poisoned, _, _ = run(setup, update_checks=False)
    assert np.isnan(float_values(poisoned)).mean() > 0.9  # the control: the whole model is NaN

    weights, history, warnings = run(setup)
    assert np.isfinite(float_values(weights)).all()
    assert all(r[f"rejected.{HOSTILE}"] == 1.0 and r["parties"] == 2.0 for r in history)
    assert any(HOSTILE in w and "non-finite" in w for w in warnings), warnings


def test_scaled_party_dominates_without_protection_and_not_with_it(setup, monkeypatch):
    *_, start, clean = setup
    hostile(monkeypatch, scaled_update)
    reach = update_norm(start.weights, clean)
    dragged, _, _ = run(setup, update_checks=False)
    assert update_norm(clean, dragged) > 1e3 * reach  # the control: FedAvg follows the ×10⁶ party

    checked, _, warnings = run(setup)
    assert update_norm(clean, checked) < reach
    assert any(HOSTILE in w and "exceeds 10 × the median" in w for w in warnings), warnings
    for rule in ("median", "krum"):  # the robust rules alone, without the length check
        robust, _, _ = run(setup, update_checks=False, aggregation=rule)
        assert update_norm(clean, robust) < 2 * reach, rule


def test_row_count_liar_takes_the_weight_without_the_bound(setup, monkeypatch):
    staged, schema, config, *_ = setup
    original = parties.hello

    def lying_hello(party):
        reply = original(party)
        return Payload(config={**reply.config, keys.ROWS: 10**9}) if party.name == HOSTILE else reply

    monkeypatch.setattr(parties, "hello", lying_hello)
    blind = run_federation(LocalTransport(staged), config=config.replace(rounds=1, update_checks=False), schema=schema)
    assert blind.party_weights[HOSTILE] > 0.999  # the control: 10⁹ claimed rows buy the whole average

    bounded = run_federation(LocalTransport(staged), config=config.replace(rounds=1), schema=schema)
    assert bounded.party_weights[HOSTILE] == pytest.approx(1 / 3)  # the rows its own statistics counted
    assert any(HOSTILE in w and "10000000" in w for w in bounded.warnings), bounded.warnings


def test_compressed_updates_are_smaller_on_the_wire_and_train_alike(setup):
    *_, start, clean = setup
    sizes = {}
    for bits in (32, 16, 8):
        weights, history, _ = run(setup, update_bits=bits)
        sizes[bits] = history[-1]["bytes_received"]
        assert update_norm(clean, weights) < 0.05 * update_norm(start.weights, clean), bits
    assert sizes[16] < 0.6 * sizes[32] and sizes[8] < 0.35 * sizes[32], sizes
    assert history[-1]["bytes_sent"] > 0 and history[-1][f"bytes_received.{HOSTILE}"] > 0
