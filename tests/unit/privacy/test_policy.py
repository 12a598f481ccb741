"""A party's policy: one definition of the accountant settings, and releases held within the accepted plan."""

from __future__ import annotations

import dataclasses

import pytest

from fedtab.errors import ConfigError, PrivacyBudgetError
from fedtab.privacy.accountant import AccountantSettings, accountant_settings, eps_error_for
from fedtab.privacy.planning import PrivacyBudget, plan_noise
from fedtab.privacy.policy import PartyPolicy, check_release, checked_plan, release_problems

pytestmark = [pytest.mark.filterwarnings("ignore:divide by zero encountered in log"),
              pytest.mark.filterwarnings("ignore:Optimal order is the")]


@pytest.fixture(scope="module")
def plan():
    return plan_noise(budget=PrivacyBudget(0.3, 1e-5), party_rows=2000, batch_size=200, epochs=2, encoder_releases=6,
                      partition_selections=2, party="clinic_a")


def test_the_plan_and_the_party_take_the_same_settings_for_the_same_epsilon(plan):
    assert [eps_error_for(e) for e in (0.05, 0.3, 3.0)] == [0.001, 0.003, 0.01]
    assert plan.settings == accountant_settings(0.3) == PartyPolicy(0.3).settings() == AccountantSettings("prv", 0.003)
    assert checked_plan(PartyPolicy(0.3), plan, party="clinic_a", rows=2000) == plan.settings
    assert checked_plan(PartyPolicy(), plan, party="clinic_a", rows=2000) == plan.settings  # no budget: the plan's


def test_a_history_within_the_plan_passes_in_any_order_and_one_step_more_does_not(plan):
    full = plan.planned_accountant()
    assert release_problems(plan, full) == []
    part = plan.new_accountant()
    part.record_sgd(noise_multiplier=plan.noise_multiplier, sample_rate=plan.sample_rate, steps=plan.steps - 1)
    part.record_gaussian(noise_multiplier=plan.encoder_noise_multiplier, mechanism="encoder", releases=2,
                         threshold_delta=plan.threshold_delta)
    assert release_problems(plan, part) == []
    assert part.epsilon(1e-5) <= full.epsilon(1e-5) <= 0.3
    full.record_sgd(noise_multiplier=plan.noise_multiplier, sample_rate=plan.sample_rate, steps=1)
    with pytest.raises(PrivacyBudgetError, match=f"(?s)training at noise .*: {plan.steps + 1} steps with this release; "
                                                  f"the plan allows {plan.steps}.*Nothing was released"):
        check_release(plan, full, "training round 3")
    other = plan.new_accountant()
    other.record_sgd(noise_multiplier=plan.noise_multiplier, sample_rate=plan.sample_rate * 2, steps=1)
    assert "the plan allows 0" in release_problems(plan, other)[0]


def test_a_plan_over_the_partys_budget_is_refused_with_both_figures(plan):
    with pytest.raises(PrivacyBudgetError, match=r"(?s)Party 'clinic_a' refuses .*asks ε = 0.3.*allows ε ≤ 0.2.*"
                                                  r"compose, by this party's own accountant, to ε = 0.29"):
        checked_plan(PartyPolicy(0.2, eps_error=0.003), plan, party="clinic_a", rows=2000)
    cheaper_claim = dataclasses.replace(plan, noise_multiplier=plan.noise_multiplier / 2)  # its own ε field still says 0.3
    with pytest.raises(PrivacyBudgetError, match="the plan claims 0.29"):
        checked_plan(PartyPolicy(0.3), cheaper_claim, party="clinic_a", rows=2000)


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"require_dp": True}, "'require_dp' is on but no 'epsilon' is set"),
    ({"epsilon": 0}, "'epsilon' must be None or a number > 0"),
    ({"epsilon": 1, "accountant": "gdp"}, "'accountant' must be one of"),
    ({"epsilon": 1, "delta": 2}, "'delta' must be None or a number in \\(0, 1\\)"),
])
def test_bad_policies_are_refused(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        PartyPolicy(**kwargs)


def test_the_default_delta_is_within_every_partys_default_limit():
    """Unequal parties (Adult's Dirichlet split holds 318 to 16,678 rows): the server's default δ must pass the
    largest party's own default check; a δ sized for the smallest party does not (the control)."""
    from fedtab.config import FedtabConfig
    from fedtab.federation.privacy_run import plan_privacy
    from fedtab.privacy.planning import default_delta
    from fedtab.privacy.policy import policy_for

    parties = {"small": 318, "big": 16_678}
    config = FedtabConfig(epsilon=1.0)
    run = plan_privacy(config, parties, encoder_releases=3, partition_selections=0)
    for name, rows in parties.items():
        checked_plan(policy_for(config, name), run.plans[name], party=name, rows=rows)
    loose = plan_privacy(config.replace(delta=default_delta(parties["small"])), parties, encoder_releases=3,
                         partition_selections=0)
    with pytest.raises(PrivacyBudgetError, match="δ"):
        checked_plan(policy_for(config, "big"), loose.plans["big"], party="big", rows=parties["big"])
