"""Party-level DP: clipping bounds every update, the noise has the planned std, the plan meets ε per Flower's accountant."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.supercore.privacy_accounting import GaussianPrivacyEvent

from fedtab.config import FedtabConfig
from fedtab.errors import ConfigError, PrivacyBudgetError
from fedtab.federation.party_dp import (
    ACCOUNTANT,
    MAX_PARTY_NOISE_MULTIPLIER,
    PartyDP,
    PartyDPPlan,
    party_accountant,
    party_epsilon,
    plan_party_dp,
    plan_party_noise,
)

DELTA = 1e-5


def mechanism(*, noise_multiplier: float = 1e-9, clip: float = 1.0, parties: int = 2, seed: int = 0) -> PartyDP:
    return PartyDP(PartyDPPlan(10.0, DELTA, noise_multiplier, clip, 3, parties), noise_seed=seed)


def zeros() -> dict[str, np.ndarray]:
    return {"w": np.zeros(2, dtype=np.float32), "b": np.zeros((), dtype=np.float32), "n": np.array(7, dtype=np.int64)}


def test_clipped_updates_averaged_with_equal_weights_by_hand():
    big = {"w": np.array([3.0, 0.0], dtype=np.float32), "b": np.array(4.0, dtype=np.float32), "n": np.array(99)}
    small = {"w": np.array([0.3, 0.0], dtype=np.float32), "b": np.array(0.4, dtype=np.float32), "n": np.array(5)}
    out = mechanism(clip=1.0).aggregate(zeros(), {"a": big, "b": small}, 0)
    # norm 5 -> clipped to [0.6, 0.8]; norm 0.5 stays; equal weights whatever the row counts
    np.testing.assert_allclose(out["w"], [0.45, 0.0], atol=1e-6)
    np.testing.assert_allclose(out["b"], 0.6, atol=1e-6)
    assert out["w"].dtype == np.float32
    assert int(out["n"]) == 7  # integer buffers are not released: they keep the global value


@pytest.mark.parametrize("scale", [1e-3, 0.9, 1.0, 7.0, 1e6])
def test_clipping_bounds_every_single_update(scale):
    rng = np.random.default_rng(1)
    start = {"x": rng.normal(size=(50, 20)).astype(np.float32), "y": rng.normal(size=30).astype(np.float32)}
    direction = {k: rng.normal(size=v.shape) for k, v in start.items()}
    norm = np.sqrt(sum(np.sum(d**2) for d in direction.values()))
    reply = {k: (start[k] + scale * direction[k] / norm).astype(np.float32) for k in start}
    out = mechanism(clip=1.0).aggregate(start, {"only": reply}, 0)
    moved = np.sqrt(sum(np.sum((out[k].astype(np.float64) - start[k]) ** 2) for k in start))
    assert moved <= 1.0 + 1e-5
    assert moved == pytest.approx(min(scale, 1.0), rel=1e-3)


def test_a_non_finite_update_counts_as_zero_and_is_reported():
    dp = mechanism(clip=1.0)
    bad = {**zeros(), "w": np.array([np.inf, np.nan], dtype=np.float32)}
    good = {**zeros(), "w": np.array([0.5, 0.0], dtype=np.float32)}
    out = dp.aggregate(zeros(), {"bad": bad, "good": good}, 4)
    np.testing.assert_allclose(out["w"], [0.25, 0.0], atol=1e-6)
    assert dp.warnings and "Round 5: party 'bad' sent non-finite weights" in dp.warnings[0]


@pytest.mark.parametrize(("answered", "planned"), [(5, 5), (3, 5)])
def test_noise_std_is_z_clip_over_the_parties_that_replied(answered, planned):
    z, clip = 2.0, 0.5
    dp = mechanism(noise_multiplier=z, clip=clip, parties=planned, seed=11)
    start = {"w": np.zeros(200_000, dtype=np.float32)}
    out = dp.aggregate(start, {f"p{i}": start for i in range(answered)}, 0)
    assert np.std(out["w"]) == pytest.approx(z * clip / answered, rel=0.01)
    assert abs(np.mean(out["w"])) < 0.01 * z * clip / answered


def test_noise_comes_from_a_per_run_secret_not_the_global_generator():
    before = np.random.get_state()
    start = {"w": np.zeros(1000, dtype=np.float32)}
    first = PartyDP(PartyDPPlan(10.0, DELTA, 1.0, 1.0, 3, 2)).aggregate(start, {"a": start, "b": start}, 0)
    second = PartyDP(PartyDPPlan(10.0, DELTA, 1.0, 1.0, 3, 2)).aggregate(start, {"a": start, "b": start}, 0)
    assert not np.allclose(first["w"], second["w"])
    after = np.random.get_state()
    np.testing.assert_array_equal(after[1], before[1])
    assert after[2:] == before[2:]


def test_every_round_composes_one_event_even_when_a_party_is_silent():
    dp = mechanism(noise_multiplier=3.0, parties=3)
    start = zeros()
    dp.aggregate(start, {"a": start, "b": start, "c": start}, 0)
    dp.aggregate(start, {"a": start}, 1)
    reference = party_accountant(delta=DELTA, parties=3)
    reference.compose(GaussianPrivacyEvent(3.0, 3, 3), count=2)
    spend = dp.spend()
    assert (spend.rounds, spend.parties, spend.accountant) == (2, 3, ACCOUNTANT)
    assert spend.epsilon == pytest.approx(reference.get_epsilon(DELTA))
    assert (spend.noise_multiplier, spend.clip_norm, spend.delta, spend.budget_epsilon) == (3.0, 1.0, DELTA, 10.0)


@pytest.mark.parametrize(("epsilon", "rounds", "parties"), [(10.0, 30, 5), (1.0, 30, 5), (3.0, 6, 3), (50.0, 2, 2)])
def test_planned_noise_meets_epsilon_and_five_percent_less_does_not(epsilon, rounds, parties):
    z = plan_party_noise(epsilon=epsilon, delta=DELTA, rounds=rounds, parties=parties)

    def spent(noise: float) -> float:  # one event a round, as the run composes them
        accountant = party_accountant(delta=DELTA, parties=parties)
        for _ in range(rounds):
            accountant.compose(GaussianPrivacyEvent(noise, parties, parties))
        return accountant.get_epsilon(DELTA)

    assert spent(z) <= epsilon
    assert spent(0.95 * z) > epsilon


def test_an_impossible_budget_is_refused_with_what_would_fit():
    with pytest.raises(PrivacyBudgetError, match=r"ε = 0.3 at δ = 1e-05 over 30 rounds.*party_epsilon >= .*rounds <= ") as info:
        plan_party_noise(epsilon=0.3, delta=DELTA, rounds=30, parties=5)
    text = str(info.value)
    suggested_epsilon = float(text.split("party_epsilon >= ")[1].split(" ")[0])
    suggested_rounds = int(text.split("rounds <= ")[1].split(" ")[0])
    plan_party_noise(epsilon=suggested_epsilon, delta=DELTA, rounds=30, parties=5)
    plan_party_noise(epsilon=0.3, delta=DELTA, rounds=suggested_rounds, parties=5)
    assert party_epsilon(MAX_PARTY_NOISE_MULTIPLIER, rounds=suggested_rounds + 1, delta=DELTA, parties=5) > 0.3


def test_plan_for_a_run_uses_the_config_and_defaults_delta():
    config = FedtabConfig(rounds=4, party_epsilon=5.0, party_clip=0.2)
    dp = plan_party_dp(config, {"a": 100, "b": 50, "c": 10}, noise_seed=0)
    assert dp is not None
    assert (dp.plan.delta, dp.plan.clip, dp.plan.rounds, dp.plan.parties) == (1e-5, 0.2, 4, 3)
    assert dp.plan.noise_multiplier == plan_party_noise(epsilon=5.0, delta=1e-5, rounds=4, parties=3)
    assert plan_party_dp(FedtabConfig(), {"a": 1, "b": 1}) is None


def test_one_party_is_refused():
    with pytest.raises(ConfigError, match=r"needs at least 2 parties to hide one among them; got 1 \(\['solo'\]\)"):
        plan_party_dp(FedtabConfig(party_epsilon=5.0), {"solo": 100})


@pytest.mark.parametrize("aggregation", ["similarity", "similarity-softmax"])
def test_similarity_aggregation_is_refused(aggregation):
    with pytest.raises(ConfigError, match=rf"needs aggregation 'fedavg' \(equal party weights.*got aggregation '{aggregation}'"):
        FedtabConfig(party_epsilon=5.0, aggregation=aggregation)


def test_party_settings_are_checked():
    with pytest.raises(ConfigError) as info:
        FedtabConfig(party_epsilon=-1.0, party_delta=1.5, party_clip=0)
    text = str(info.value)
    assert "'party_epsilon' must be None or a number > 0; got -1.0" in text
    assert "'party_delta' must be None or a number in (0, 1); got 1.5" in text
    assert "'party_clip' must be a number > 0; got 0" in text
    with pytest.raises(ConfigError, match="'party_delta' is 1e-06 but 'party_epsilon' is not set"):
        FedtabConfig(party_delta=1e-6)
    both = FedtabConfig(epsilon=3.0, party_epsilon=8.0)  # record-level and party-level compose
    assert both.private and both.party_epsilon == 8.0
