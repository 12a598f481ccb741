"""PartyAccountant: same ε as Opacus fed the same steps, per mechanism and in total, across save/resume."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opacus.accountants import PRVAccountant, RDPAccountant

from fedtab.errors import ConfigError, PrivacyBudgetError
from fedtab.privacy.accountant import ACCOUNTANTS, RDP_ORDERS, PartyAccountant

DELTA = 1e-5
pytestmark = [
    pytest.mark.filterwarnings("ignore:divide by zero encountered in log"),
    pytest.mark.filterwarnings("ignore:Optimal order is the"),
]

# A release: (mechanism, noise multiplier, sample rate, steps); sample rate 1 is a full-data Gaussian.
releases = st.lists(
    st.tuples(
        st.sampled_from(["encoder", "training"]),
        st.sampled_from([0.8, 1.1, 2.5, 30.0]),
        st.sampled_from([0.02, 0.1, 1.0]),
        st.integers(1, 40),
    ),
    min_size=1,
    max_size=4,
)


def _record(accountant: PartyAccountant, mechanism: str, sigma: float, q: float, steps: int) -> None:
    if q == 1.0:
        accountant.record_gaussian(noise_multiplier=sigma, mechanism=mechanism, releases=steps)
    else:
        accountant.record_sgd(noise_multiplier=sigma, sample_rate=q, steps=steps, mechanism=mechanism)


def _opacus_epsilon(name: str, steps: list[tuple[str, float, float, int]], mechanism: str | None = None) -> float:
    """Opacus's own accountant stepped one step at a time, as a PrivacyEngine would."""
    engine = {"prv": PRVAccountant, "rdp": RDPAccountant}[name]()
    for mech, sigma, q, n in steps:
        if mechanism is None or mech == mechanism:
            for _ in range(n):
                engine.step(noise_multiplier=sigma, sample_rate=q)
    if name == "rdp":
        return engine.get_epsilon(DELTA, alphas=list(RDP_ORDERS))
    return engine.get_epsilon(DELTA)


@pytest.mark.parametrize(("name", "examples"), [("rdp", 100), ("prv", 5)])
def test_epsilon_equals_opacus_fed_the_same_steps(name: str, examples: int) -> None:
    """Tolerance: 1e-9 relative. The history handed to Opacus is the one it builds itself, so the
    numbers are the same computation; the tolerance only absorbs float summation order. RDP runs
    100 drawn cases (fast); PRV, at seconds a case, 5."""

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(steps=releases)
    def check(steps: list[tuple[str, float, float, int]]) -> None:
        accountant = PartyAccountant("clinic", accountant=name)
        for release in steps:
            _record(accountant, *release)
        assert accountant.epsilon(DELTA) == pytest.approx(_opacus_epsilon(name, steps), rel=1e-9)
        for mechanism in accountant.mechanisms:
            alone = accountant.epsilon(DELTA, mechanism=mechanism)
            assert alone == pytest.approx(_opacus_epsilon(name, steps, mechanism), rel=1e-9)
            assert alone <= accountant.epsilon(DELTA) + 1e-12

    check()


def test_save_load_continue_reports_the_same_epsilon_as_an_uninterrupted_run() -> None:
    plan = [("encoder", 30.0, 1.0, 3), ("training", 1.1, 0.05, 40), ("training", 1.1, 0.05, 40),
            ("encoder", 30.0, 1.0, 1), ("training", 1.1, 0.05, 20)]
    uninterrupted = PartyAccountant("clinic")
    for release in plan:
        _record(uninterrupted, *release)

    first = PartyAccountant("clinic")
    for release in plan[:2]:
        _record(first, *release)
    saved = json.dumps(first.state_dict())
    resumed = PartyAccountant.from_state_dict(json.loads(saved))
    for release in plan[2:]:
        _record(resumed, *release)

    assert resumed.history == uninterrupted.history
    assert resumed.epsilon(DELTA) == uninterrupted.epsilon(DELTA)
    assert resumed.epsilon_by_mechanism(DELTA) == uninterrupted.epsilon_by_mechanism(DELTA)
    assert resumed.steps("training") == 100


def test_a_fresh_accountant_per_round_under_counts_and_one_kept_across_rounds_does_not() -> None:
    kept = PartyAccountant("clinic")
    per_round = []
    for _ in range(5):
        fresh = PartyAccountant("clinic")
        for accountant in (kept, fresh):
            accountant.record_sgd(noise_multiplier=1.0, sample_rate=0.1, steps=50)
        per_round.append(fresh.epsilon(DELTA))
    assert kept.epsilon(DELTA) == pytest.approx(_opacus_epsilon("prv", [("training", 1.0, 0.1, 250)]), rel=1e-9)
    assert max(per_round) < 0.6 * kept.epsilon(DELTA)


def test_threshold_delta_is_taken_off_delta_before_composing() -> None:
    accountant = PartyAccountant("clinic")
    accountant.record_gaussian(noise_multiplier=20.0, mechanism="encoder", releases=2, threshold_delta=1e-6)
    engine = PRVAccountant()
    engine.history = [(20.0, 1.0, 2)]
    assert accountant.threshold_delta() == pytest.approx(2e-6)
    assert accountant.epsilon(DELTA) == pytest.approx(engine.get_epsilon(DELTA - 2e-6), rel=1e-9)
    assert accountant.epsilon(DELTA) > accountant.copy().epsilon(DELTA * 10)
    with pytest.raises(PrivacyBudgetError, match="partition-selection thresholds"):
        accountant.epsilon(1e-6)


def test_nothing_recorded_costs_nothing() -> None:
    assert PartyAccountant("clinic").epsilon(DELTA) == 0.0
    assert PartyAccountant("clinic").epsilon_by_mechanism(DELTA) == {}


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"noise_multiplier": 0.0, "sample_rate": 0.1, "steps": 1}, "noise_multiplier must be a finite number > 0"),
        ({"noise_multiplier": 1.0, "sample_rate": 1.5, "steps": 1}, r"sample_rate must be in \(0, 1\]"),
        ({"noise_multiplier": 1.0, "sample_rate": 0.1, "steps": 0}, "int >= 1"),
        ({"noise_multiplier": 1.0, "sample_rate": 0.1, "steps": 1, "mechanism": ""}, "non-empty name"),
    ],
)
def test_bad_records_are_refused_with_their_place(kwargs: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=f"party 'clinic'.*{words}"):
        PartyAccountant("clinic").record_sgd(**kwargs)


def test_unknown_accountant_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"expected one of \['prv', 'rdp'\]"):
        PartyAccountant("clinic", accountant="gdp")
    assert sorted(ACCOUNTANTS) == ["prv", "rdp"]


def test_loading_refuses_to_drop_releases_or_switch_method() -> None:
    busy = PartyAccountant("clinic")
    busy.record_sgd(noise_multiplier=1.0, sample_rate=0.1, steps=3)
    with pytest.raises(ConfigError, match="would discard them and under-count"):
        busy.load_state_dict(busy.state_dict())
    with pytest.raises(ConfigError, match="accountant='prv'"):
        PartyAccountant("clinic", accountant="rdp").load_state_dict(busy.state_dict())
    damaged = {**busy.state_dict(), "history": [{"mechanism": "training"}]}
    with pytest.raises(ConfigError, match="malformed history entries at \\[0\\]"):
        PartyAccountant.from_state_dict(damaged)
    with pytest.raises(ConfigError, match="must hold the keys"):
        PartyAccountant.from_state_dict({"history": []})
