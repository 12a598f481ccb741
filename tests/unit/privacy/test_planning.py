"""Planning: the chosen noise never overspends, is tight, and an impossible budget is refused with what fits."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from opacus.accountants import PRVAccountant, RDPAccountant

from fedtab.errors import ConfigError, PartyError, PrivacyBudgetError
from fedtab.privacy.accountant import RDP_ORDERS
from fedtab.privacy.policy import PartyPolicy, checked_plan
from fedtab.privacy.planning import (
    MAX_NOISE_MULTIPLIER,
    MIN_NOISE_MULTIPLIER,
    PrivacyBudget,
    PrivacyPlan,
    default_delta,
    plan_noise,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore:divide by zero encountered in log"),
    pytest.mark.filterwarnings("ignore:Optimal order is the"),
]


def _opacus_epsilon(plan: PrivacyPlan, *, encoder_only: bool = False) -> float:
    """The plan's releases fed one by one to Opacus's own accountant, at δ less the thresholds' share."""
    engine = PRVAccountant() if plan.accountant == "prv" else RDPAccountant()
    for _ in range(plan.encoder_releases):
        engine.step(noise_multiplier=plan.encoder_noise_multiplier, sample_rate=1.0)
    for _ in range(0 if encoder_only else plan.steps):
        engine.step(noise_multiplier=plan.noise_multiplier, sample_rate=plan.sample_rate)
    if not engine.history:
        return 0.0  # Opacus's PRV cannot compose an empty history
    delta = plan.budget.delta - plan.partition_selections * plan.threshold_delta
    if plan.accountant == "prv":
        return engine.get_epsilon(delta, eps_error=plan.eps_error)
    return engine.get_epsilon(delta, alphas=list(RDP_ORDERS))


@st.composite
def runs(draw: st.DrawFn) -> dict:
    rows = draw(st.integers(300, 20_000))
    rate = draw(st.sampled_from([0.01, 0.03, 0.1, 0.3]))
    batch = max(1, round(rate * rows))
    steps = draw(st.integers(1, 500))
    releases = draw(st.integers(0, 20))
    delta = draw(st.sampled_from([1e-6, 1e-5, 1e-4]))
    assume(delta < 1 / rows)
    return {
        "budget": PrivacyBudget(draw(st.floats(0.5, 8.0)), delta, draw(st.sampled_from([0.05, 0.1, 0.3]))),
        "party_rows": rows,
        "batch_size": batch,
        "epochs": steps * batch / rows,
        "encoder_releases": releases,
        "partition_selections": draw(st.integers(0, min(releases, 3))),
    }


@pytest.mark.parametrize(("accountant", "examples"), [("rdp", 30), ("prv", 4)])
def test_planned_noise_never_overspends_and_is_tight(accountant: str, examples: int) -> None:
    """Promise: composed ε ≤ target, checked against Opacus's own accountant stepped release by release,
    and the party's own accountant (its policy at the plan's ε) accepts the plan. Tightness: the plan
    spends at least 97 % of ε (the search stops within 1 %), unless the noise sits at its floor. A
    refusal must be genuine: at the largest noise allowed Opacus reports more than ε; and refusals may
    not be most of the cases, so the refusal branch cannot carry the test."""
    outcomes: list[str] = []

    @settings(max_examples=examples, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(run=runs())
    def check(run: dict) -> None:
        budget: PrivacyBudget = run["budget"]
        try:
            plan = plan_noise(**run, accountant=accountant)
        except PrivacyBudgetError:
            engine = RDPAccountant() if accountant == "rdp" else PRVAccountant()
            steps = math.ceil(run["epochs"] * run["party_rows"] / run["batch_size"])
            engine.history = [(MAX_NOISE_MULTIPLIER, run["batch_size"] / run["party_rows"], steps)]
            assert engine.get_epsilon(budget.delta) > budget.epsilon * 0.9
            outcomes.append("refused")
            return
        assert plan.epsilon <= budget.epsilon
        assert _opacus_epsilon(plan) <= budget.epsilon
        assert _opacus_epsilon(plan, encoder_only=True) <= budget.encoder_epsilon
        assert plan.epsilon >= 0.97 * budget.epsilon or plan.noise_multiplier == MIN_NOISE_MULTIPLIER
        policy = PartyPolicy(budget.epsilon, budget.delta, True, accountant)
        settings_ = checked_plan(policy, plan, party="party", rows=run["party_rows"])
        assert plan.planned_accountant(settings_).epsilon(budget.delta) <= budget.epsilon
        outcomes.append("planned")

    check()
    assert outcomes.count("planned") >= len(outcomes) / 2, outcomes


def test_adult_sized_plan_is_the_smallest_noise_that_fits() -> None:
    budget = PrivacyBudget(1.0, default_delta(6500))
    plan = plan_noise(budget=budget, party_rows=6500, batch_size=500, epochs=30, encoder_releases=15)
    assert (plan.steps, plan.sample_rate) == (390, 500 / 6500)
    assert plan.encoder_epsilon <= budget.epsilon * budget.encoder_share < plan.epsilon <= 1.0
    accountant = plan.new_accountant("clinic")
    accountant.record_gaussian(noise_multiplier=plan.encoder_noise_multiplier, mechanism="encoder", releases=15)
    accountant.record_sgd(noise_multiplier=plan.noise_multiplier * 0.97, sample_rate=plan.sample_rate, steps=390)
    assert accountant.epsilon(budget.delta) > budget.epsilon
    assert PrivacyPlan.from_dict(plan.to_dict()) == plan


def test_partition_selection_thresholds_come_out_of_delta() -> None:
    budget = PrivacyBudget(2.0, 1e-5)
    plan = plan_noise(budget=budget, party_rows=5000, batch_size=250, epochs=10, encoder_releases=6,
                      partition_selections=2, accountant="rdp")
    assert plan.threshold_delta == pytest.approx(1e-5 * 0.1 / 2)
    accountant = plan.new_accountant()
    accountant.record_gaussian(noise_multiplier=plan.encoder_noise_multiplier, mechanism="encoder", releases=4)
    for _ in range(2):
        accountant.record_gaussian(noise_multiplier=plan.encoder_noise_multiplier, mechanism="encoder",
                                   threshold_delta=plan.threshold_delta)
    accountant.record_sgd(noise_multiplier=plan.noise_multiplier, sample_rate=plan.sample_rate, steps=plan.steps)
    assert accountant.epsilon(budget.delta) == pytest.approx(plan.epsilon, rel=1e-9)
    assert accountant.epsilon(budget.delta) <= budget.epsilon


def test_an_impossible_budget_is_refused_with_figures_that_fit() -> None:
    run = {"party_rows": 2000, "batch_size": 400, "epochs": 150, "encoder_releases": 4, "accountant": "rdp"}
    budget = PrivacyBudget(0.3, 1e-5)
    with pytest.raises(PrivacyBudgetError, match=r"cannot keep within ε = 0.3 .*noise multiplier 50.*"
                                                 r"at most [\d.]+ epochs.*ε ≥ [\d.]+.*at least \d+ rows") as caught:
        plan_noise(budget=budget, **run)
    fits = caught.value.suggestions
    assert fits.max_epochs < 150 and fits.min_epsilon > 0.3 and fits.min_party_rows > 2000
    assert fits.max_batch_size < 400
    plan_noise(budget=budget, **{**run, "epochs": fits.max_epochs})
    plan_noise(budget=PrivacyBudget(fits.min_epsilon, 1e-5), **run)
    plan_noise(budget=budget, **{**run, "party_rows": fits.min_party_rows, "epochs": 150})
    plan_noise(budget=budget, **{**run, "batch_size": fits.max_batch_size})


def test_an_impossible_budget_is_refused_under_prv_too() -> None:
    with pytest.raises(PrivacyBudgetError, match="Any one of these would fit"):
        plan_noise(budget=PrivacyBudget(0.3, 1e-5), party_rows=2000, batch_size=400, epochs=150, encoder_releases=4)


def test_encoder_statistics_that_cannot_fit_their_share_are_refused() -> None:
    with pytest.raises(PrivacyBudgetError, match="Raise encoder_share to at least") as caught:
        plan_noise(budget=PrivacyBudget(0.05, 1e-5, encoder_share=0.01), party_rows=5000, batch_size=50,
                   epochs=1, encoder_releases=50, accountant="rdp")
    assert caught.value.suggestions.min_encoder_share > 0.01


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ((0.0, 1e-5), "'epsilon' must be a number > 0; got 0.0"),
        ((1.0, 1.0), r"'delta' must be a number in \(0, 1\)"),
        ((1.0, 1e-5, 1.0), r"'encoder_share' must be a number in \[0, 1\)"),
    ],
)
def test_budget_is_validated(values: tuple, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        PrivacyBudget(*values)


def test_plan_arguments_are_validated_together() -> None:
    with pytest.raises(ConfigError, match=r"(?s)party 'clinic'.*'batch_size' must be an int in \[1, party rows.*"
                                          r"'accountant' must be one of.*not below 1/n = 1/100"):
        plan_noise(budget=PrivacyBudget(1.0, 0.05), party_rows=100, batch_size=500, epochs=1, encoder_releases=0,
                   accountant="gdp", party="clinic")
    with pytest.raises(ConfigError, match="encoder_share' is 0 but 3 encoder releases"):
        plan_noise(budget=PrivacyBudget(1.0, 1e-5, 0.0), party_rows=1000, batch_size=10, epochs=1,
                   encoder_releases=3)


def test_default_delta_sits_below_one_over_n() -> None:
    for rows in (1, 50, 6_500, 10_000_000):
        assert default_delta(rows) < 1 / rows
    assert default_delta(6_500) == 1e-5
    assert default_delta(1_000_000) == pytest.approx(1e-7)
    with pytest.raises(PartyError, match="at least one row"):
        default_delta(0)
