"""Party-level DP end to end on the demo federation: the ledger holds it, and one poisoning party moves the model by a bounded step."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest

from fedtab import FederatedSynthesizer
from fedtab.connectors import align, reconcile
from fedtab.federation import keys
from fedtab.federation.coordinator import run_federation
from fedtab.federation.local import LocalTransport
from fedtab.federation.party_dp import plan_party_noise
from fedtab.federation.payload import Payload
from fedtab.privacy.ledger import PrivacyLedger
from fedtab.synthesizer import load_parties, stage_parties

POISONER = "clinic_west"
SCALE = 1e6


class Tampering:
    """Wraps a transport: one party's update is scaled (a poisoning party) or one reply is dropped; keeps the globals sent."""

    def __init__(self, inner: LocalTransport, *, scale: float = 1.0, drop_round: int | None = None) -> None:
        self.inner, self.scale, self.drop_round = inner, scale, drop_round
        self.sent: list[dict[str, np.ndarray]] = []

    @property
    def parties(self) -> dict[str, int]:
        return self.inner.parties

    def exchange(self, message_type: str, payloads: Mapping[str, Payload]) -> dict[str, Payload]:
        replies = self.inner.exchange(message_type, payloads)
        if message_type != keys.TRAIN:
            return replies
        global_weights = payloads[POISONER].arrays
        self.sent.append(global_weights)
        if self.drop_round == len(self.sent) - 1:
            return {p: r for p, r in replies.items() if p != POISONER}
        reply = replies[POISONER]
        scaled = {k: (g + self.scale * (reply.arrays[k] - g)).astype(g.dtype) if _is_float(g) else reply.arrays[k]
                  for k, g in global_weights.items()}
        return {**replies, POISONER: Payload(scaled, reply.config, reply.metrics)}


def _is_float(array: np.ndarray) -> bool:
    return np.issubdtype(array.dtype, np.floating)


def _step(before: Mapping[str, np.ndarray], after: Mapping[str, np.ndarray]) -> float:
    return float(np.sqrt(sum(np.sum((after[k].astype(np.float64) - v) ** 2) for k, v in before.items() if _is_float(v))))


def _run(demo_frames, config, tmp_path, **tamper):
    tables = load_parties(demo_frames)
    schema = reconcile(tables)
    tmp_path.mkdir(parents=True, exist_ok=True)
    staged = stage_parties([align(t, schema) for t in tables], tmp_path, seed=config.seed)
    transport = Tampering(LocalTransport(staged), **tamper)
    fit = run_federation(transport, config=config, schema=schema)
    return fit, [*transport.sent, fit.weights]


@pytest.fixture(scope="module")
def party_private(demo_frames, small_config):
    config = small_config.replace(party_epsilon=4.0)
    return config, FederatedSynthesizer(config, engine="local").fit(demo_frames)


def test_the_ledger_holds_the_party_level_spend_within_its_target(party_private, tmp_path):
    config, synth = party_private
    entry = synth.state_.ledger["party_level"]
    assert entry["epsilon"] <= 4.0 and entry["epsilon"] > 3.9
    assert (entry["rounds"], entry["parties"], entry["clip_norm"], entry["delta"]) == (config.rounds, 3, 0.5, 1e-5)
    assert entry["noise_multiplier"] == pytest.approx(plan_party_noise(epsilon=4.0, delta=1e-5, rounds=config.rounds, parties=3))
    assert entry["accountant"] == "flower-rdp, no amplification, equal weights"
    assert synth.state_.ledger["parties"] == []  # no record-level budget was set
    loaded = FederatedSynthesizer.load(synth.save(tmp_path / "party.fedtab"))
    assert loaded.state_.ledger == synth.state_.ledger
    assert "Party-level DP (one whole party's model updates): ε = " in "\n".join(
        PrivacyLedger.from_dict(loaded.state_.ledger).summary_lines())
    assert len(loaded.sample(50, seed=2)) == 50


def test_record_and_party_level_compose_in_one_ledger(demo_frames, small_config):
    config = small_config.replace(rounds=1, epsilon=10.0, party_epsilon=10.0)
    ledger = FederatedSynthesizer(config, engine="local").fit(demo_frames).state_.ledger
    assert {p["party"] for p in ledger["parties"]} == set(demo_frames)
    assert all(p["epsilon"] <= 10.0 for p in ledger["parties"])
    assert ledger["party_level"]["epsilon"] <= 10.0 and ledger["party_level"]["rounds"] == 1


def test_a_poisoning_party_moves_the_model_by_at_most_the_clip_plus_noise(demo_frames, small_config, tmp_path):
    config = small_config.replace(party_epsilon=4.0)
    fit, globals_ = _run(demo_frames, config, tmp_path / "dp", scale=SCALE)
    dimensions = sum(v.size for v in fit.weights.values() if _is_float(v))
    z = fit.ledger["party_level"]["noise_multiplier"]
    std = z * config.party_clip / 3
    # |mean of clipped updates| <= clip; |noise| <= std (sqrt(d) + 6) but with probability 1e-8
    bound = config.party_clip + std * (np.sqrt(dimensions) + 6)
    steps = [_step(a, b) for a, b in zip(globals_, globals_[1:])]
    assert len(steps) == config.rounds
    assert all(step <= bound for step in steps), (steps, bound)

    plain, plain_globals = _run(demo_frames, small_config.replace(update_checks=False), tmp_path / "plain", scale=SCALE)  # no length check
    plain_steps = [_step(a, b) for a, b in zip(plain_globals, plain_globals[1:])]
    assert min(plain_steps) > 100 * bound, (plain_steps, bound)  # without party-level DP nothing bounds it


def test_a_silent_party_still_costs_its_round(demo_frames, small_config, tmp_path):
    config = small_config.replace(party_epsilon=4.0)
    fit, _ = _run(demo_frames, config, tmp_path, drop_round=0)
    assert any(f"parties ['{POISONER}'] did not reply" in w for w in fit.warnings)
    assert fit.ledger["party_level"]["rounds"] == config.rounds
    assert fit.ledger["party_level"]["epsilon"] <= 4.0


def test_an_impossible_party_budget_is_refused_before_any_statistic_leaves(demo_frames, small_config):
    from fedtab import PrivacyBudgetError

    sent: list[str] = []
    config = small_config.replace(rounds=30, party_epsilon=0.01)
    with pytest.raises(PrivacyBudgetError, match=r"Party-level DP cannot keep within ε = 0.01 .* party_epsilon >= 0.4"):
        FederatedSynthesizer(config, engine="local").fit(demo_frames, tap=lambda party, kind, payload: sent.append(kind))
    assert set(sent) == {keys.HELLO}


def test_a_party_level_run_keeps_its_ledger_in_checkpoints_but_refuses_to_resume(demo_frames, tmp_path):
    from fedtab import FedtabConfig
    from fedtab.errors import ConfigError

    checkpoint = tmp_path / "party.ckpt"
    config = FedtabConfig(model="ctgan", rounds=2, batch_size=200, seed=4, party_epsilon=50.0, checkpoint=str(checkpoint),
                          model_options={"embedding_dim": 16, "generator_dims": [32], "discriminator_dims": [32]})
    def crash_after_round_one(stage, done, total, record):
        if stage == "training" and done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        FederatedSynthesizer(config, engine="local").fit(demo_frames, progress=crash_after_round_one)
    saved = FederatedSynthesizer.load(checkpoint).state_
    assert saved.ledger["party_level"]["rounds"] == 1
    with pytest.raises(ConfigError, match="party-level DP .* cannot be resumed"):
        FederatedSynthesizer(config, engine="local").fit(demo_frames, resume_from=checkpoint)
