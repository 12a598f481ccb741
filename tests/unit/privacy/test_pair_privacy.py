"""The 2-way target marginals are encoder releases: planned with them, charged to the encoder share, refused beyond it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from fedtab.errors import PrivacyBudgetError
from fedtab.privacy.accountant import PartyAccountant
from fedtab.privacy.encoders import private_statistics
from fedtab.privacy.planning import PrivacyBudget, PrivacyPlan, plan_noise
from fedtab.privacy.policy import PartyPolicy, checked_plan
from fedtab.schema import ColumnKind, ColumnSchema, PartyTable, TableSchema
from fedtab.transformers import PlanFitter, TransformPlan
from fedtab.transformers import protocol as p

SCHEMA = TableSchema((
    ColumnSchema("age", ColumnKind.NUMERICAL, "int64", is_integer=True, bounds=(18.0, 80.0)),
    ColumnSchema("job", ColumnKind.CATEGORICAL, "object", categories=("clerk", "nurse", "driver")),
    ColumnSchema("smoker", ColumnKind.BOOLEAN, "bool"),
))
TARGET = "smoker"
BUDGET = PrivacyBudget(epsilon=3.0, delta=1e-5, encoder_share=0.3)
ROWS = 2000


def _frame(seed: int) -> pd.DataFrame:
    """Smokers are older and mostly drivers: relations the cross tables must show."""
    rng = np.random.default_rng(seed)
    smoker = rng.random(ROWS) < 0.3
    age = np.where(smoker, rng.integers(50, 80, ROWS), rng.integers(18, 50, ROWS))
    job = np.where(smoker, "driver", rng.choice(["clerk", "nurse"], ROWS))
    return pd.DataFrame({"age": age, "job": job, "smoker": smoker})


@pytest.fixture(scope="module")
def tables() -> list[PartyTable]:
    return [PartyTable(f"clinic_{i}", _frame(i), SCHEMA) for i in range(3)]


def _plan(target: str | None) -> PrivacyPlan:
    releases, selections = PlanFitter.release_plan(SCHEMA, target)
    return plan_noise(budget=BUDGET, party_rows=ROWS, batch_size=100, epochs=1.0, encoder_releases=releases,
                      partition_selections=selections, party="clinic")


def _fit(tables: list[PartyTable], plan: PrivacyPlan, accountants: list[PartyAccountant]) -> TransformPlan:
    assert plan.encoder_noise_multiplier is not None
    fitter = PlanFitter(SCHEMA, mode="private", noise_multiplier=plan.encoder_noise_multiplier, target=TARGET)
    while (request := fitter.next_request()) is not None:
        fitter.merge([private_statistics(t, request, plan=plan, accountant=a, noise_seed=i)
                      for i, (t, a) in enumerate(zip(tables, accountants))])
    return fitter.finalize()


def test_the_pairs_are_charged_to_the_encoder_share_as_planned(tables: list[PartyTable]) -> None:
    plan = _plan(TARGET)
    assert PlanFitter.release_plan(SCHEMA, TARGET).encoder_releases == PlanFitter.release_plan(SCHEMA).encoder_releases + 2
    accountants = [plan.new_accountant(t.name) for t in tables]
    fitted = _fit(tables, plan, accountants)
    for accountant in accountants:
        assert accountant.steps("encoder") == plan.encoder_releases
        assert accountant.epsilon(BUDGET.delta) == pytest.approx(plan.encoder_epsilon, rel=1e-9)
        assert accountant.epsilon(BUDGET.delta) <= BUDGET.encoder_epsilon
    assert fitted.target == TARGET
    job = np.asarray(fitted.column("job").pair_counts)  # rows: smoker False, True; columns: clerk, nurse, driver
    assert job.shape == (2, 3) and (job >= 0).all()
    assert job[1, 2] > 0.9 * job[1].sum() and job[0, 2] < 0.1 * job[0].sum()
    assert job.sum(axis=1) == pytest.approx(np.clip(fitted.column(TARGET).counts, 1e-3, None), rel=1e-6)
    age = fitted.column("age")  # its classes are the mixture's modes: smokers' modes sit ~30 years higher
    shares = np.asarray(age.pair_counts) / np.asarray(age.pair_counts).sum(axis=1, keepdims=True)
    young, old = shares @ np.asarray(age.means)
    assert old - young > 20, (young, old)


def test_a_party_whose_plan_has_no_budget_for_the_pairs_refuses_them_before_releasing(tables: list[PartyTable]) -> None:
    """The same fit under a plan counted without the pairs: the encoders go through, the pairs stage is refused."""
    plan = _plan(None)
    accountant = plan.new_accountant(tables[0].name)
    fitter = PlanFitter(SCHEMA, mode="private", noise_multiplier=plan.encoder_noise_multiplier, target=TARGET)
    while (request := fitter.next_request()).stage != p.STAGE_PAIRS:
        fitter.merge([private_statistics(tables[0], request, plan=plan, accountant=accountant, noise_seed=1)])
    assert accountant.steps() == plan.encoder_releases
    with pytest.raises(PrivacyBudgetError, match=r"the 'pairs' request needs 2 encoder releases \(0 partition "
                                                 r"selections\); 3 \(0\) are spent and the plan allows 3 \(0\)"):
        private_statistics(tables[0], request, plan=plan, accountant=accountant, noise_seed=1)
    assert accountant.steps() == plan.encoder_releases


def test_a_party_refuses_a_plan_that_counts_the_pairs_without_their_noise() -> None:
    """The plan check each party runs before it answers: more releases at the same σ overspend its ε."""
    with_pairs, without = _plan(TARGET), _plan(None)
    policy = PartyPolicy(BUDGET.epsilon, BUDGET.delta)
    assert checked_plan(policy, with_pairs, party="clinic", rows=ROWS) == with_pairs.settings
    stretched = replace(without, encoder_releases=with_pairs.encoder_releases)
    with pytest.raises(PrivacyBudgetError, match="refuses the server's privacy plan"):
        checked_plan(policy, stretched, party="clinic", rows=ROWS)
    assert with_pairs.encoder_noise_multiplier > without.encoder_noise_multiplier
