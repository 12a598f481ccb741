"""A party's private encoder statistics: planned releases only, charged to its accountant, ε as planned."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from fedtab.errors import PrivacyBudgetError
from fedtab.privacy.accountant import PartyAccountant
from fedtab.privacy.encoders import assert_private_statistics, new_noise_seed, private_statistics
from fedtab.privacy.planning import PrivacyBudget, PrivacyPlan, plan_noise
from fedtab.schema import ColumnKind, ColumnSchema, PartyTable, TableSchema
from fedtab.transformers import PlanFitter, StatsRequest, TransformPlan
from fedtab.transformers import protocol as p

SCHEMA = TableSchema((
    ColumnSchema("age", ColumnKind.NUMERICAL, "int64", is_integer=True),
    ColumnSchema("income", ColumnKind.NUMERICAL, "float64", bounds=(0.0, 200_000.0)),
    ColumnSchema("job", ColumnKind.CATEGORICAL, "object", has_missing=True),
    ColumnSchema("smoker", ColumnKind.BOOLEAN, "bool"),
))
BUDGET = PrivacyBudget(epsilon=3.0, delta=1e-5, encoder_share=0.1)
ROWS = 600


def _frame(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    job = rng.choice(np.array(["clerk", "nurse", "driver", None], dtype=object), ROWS, p=[0.5, 0.3, 0.15, 0.05])
    return pd.DataFrame({"age": rng.integers(18, 80, ROWS), "income": rng.gamma(2.0, 20_000.0, ROWS),
                         "job": job, "smoker": rng.random(ROWS) < 0.2})


@pytest.fixture(scope="module")
def tables() -> list[PartyTable]:
    return [PartyTable(f"clinic_{i}", _frame(i), SCHEMA) for i in range(3)]


@pytest.fixture(scope="module")
def plan() -> PrivacyPlan:
    releases, selections = PlanFitter.release_plan(SCHEMA)
    return plan_noise(budget=BUDGET, party_rows=ROWS, batch_size=50, epochs=1.0, encoder_releases=releases,
                      partition_selections=selections, party="clinic")


def _fit(tables: list[PartyTable], plan: PrivacyPlan, accountants: list[PartyAccountant],
         noise_seeds: list[int]) -> TransformPlan:
    assert plan.encoder_noise_multiplier is not None
    fitter = PlanFitter(SCHEMA, mode="private", noise_multiplier=plan.encoder_noise_multiplier)
    while (request := fitter.next_request()) is not None:
        fitter.merge([
            private_statistics(t, request, plan=plan, accountant=a, noise_seed=s)
            for t, a, s in zip(tables, accountants, noise_seeds)
        ])
    return fitter.finalize()


def test_epsilon_after_the_fit_is_the_planned_encoder_share(tables: list[PartyTable], plan: PrivacyPlan) -> None:
    accountants = [plan.new_accountant(t.name) for t in tables]
    fitted = _fit(tables, plan, accountants, [11, 12, 13])
    assert (plan.encoder_releases, plan.partition_selections) == (6, 1)
    for accountant in accountants:
        assert accountant.steps("encoder") == plan.encoder_releases
        assert accountant.threshold_delta("encoder") == pytest.approx(plan.threshold_delta)
        assert accountant.epsilon(BUDGET.delta) == pytest.approx(plan.encoder_epsilon, rel=1e-9)
        assert accountant.epsilon(BUDGET.delta) <= BUDGET.encoder_epsilon
    assert next(c for c in fitted.columns if c.name == "income").bounds == (0.0, 200_000.0)


def test_a_request_beyond_the_plan_is_refused_before_anything_is_released(
    tables: list[PartyTable], plan: PrivacyPlan
) -> None:
    accountant = plan.new_accountant(tables[0].name)
    _fit(tables[:1], plan, [accountant], [3])
    again = PlanFitter(SCHEMA, mode="private", noise_multiplier=1.0).next_request()
    with pytest.raises(PrivacyBudgetError, match=r"needs 4 encoder releases \(1 partition selections\); 6 \(1\) are "
                                                 r"spent and the plan allows 6 \(1\)"):
        private_statistics(tables[0], again, plan=plan, accountant=accountant, noise_seed=3)
    assert accountant.steps() == plan.encoder_releases


def test_a_party_with_a_budget_answers_only_private_requests(tables: list[PartyTable], plan: PrivacyPlan) -> None:
    exact = PlanFitter(SCHEMA).next_request()
    accountant = plan.new_accountant("clinic_0")
    with pytest.raises(PrivacyBudgetError, match="non-private 'summary' request"):
        private_statistics(tables[0], exact, plan=plan, accountant=accountant, noise_seed=1)
    assert accountant.steps() == 0


def test_a_plan_without_encoder_releases_cannot_release_statistics(tables: list[PartyTable]) -> None:
    training_only = plan_noise(budget=BUDGET, party_rows=ROWS, batch_size=50, epochs=1.0, encoder_releases=0)
    request = PlanFitter(SCHEMA, mode="private", noise_multiplier=1.0).next_request()
    with pytest.raises(PrivacyBudgetError, match="needs 4 encoder releases"):
        private_statistics(tables[0], request, plan=training_only, accountant=training_only.new_accountant(),
                           noise_seed=1)
    no_noise = replace(training_only, encoder_releases=6, partition_selections=1)
    with pytest.raises(PrivacyBudgetError, match="no encoder releases"):
        private_statistics(tables[0], request, plan=no_noise, accountant=no_noise.new_accountant(), noise_seed=1)


def test_the_noise_follows_the_party_secret_seed_not_the_run_seed(tables: list[PartyTable], plan: PrivacyPlan) -> None:
    request = PlanFitter(SCHEMA, mode="private", noise_multiplier=1.0).next_request()

    def reply(noise_seed: int, seed: int) -> dict[str, np.ndarray]:
        return private_statistics(tables[0], request, plan=plan, accountant=plan.new_accountant("clinic_0"),
                                  noise_seed=noise_seed, seed=seed)

    same, again = reply(7, seed=0), reply(7, seed=99)
    other = reply(8, seed=0)
    assert all(np.array_equal(same[k], again[k]) for k in same)
    assert not np.array_equal(same[p.CAT_MISSING], other[p.CAT_MISSING])
    seeds = {new_noise_seed() for _ in range(4)}
    assert len(seeds) == 4 and all(0 <= s < 2**63 for s in seeds)


def test_assert_private_statistics_names_what_would_leak(tables: list[PartyTable], plan: PrivacyPlan) -> None:
    request = PlanFitter(SCHEMA, mode="private", noise_multiplier=1.0).next_request()
    reply = private_statistics(tables[0], request, plan=plan, accountant=plan.new_accountant("clinic_0"),
                               noise_seed=5)
    assert_private_statistics(request, reply)
    with pytest.raises(PrivacyBudgetError, match=r"key 'num.max' is not a private statistic"):
        assert_private_statistics(request, {**reply, p.NUM_MAX: np.array([79.0])})
    histogram = StatsRequest(p.STAGE_HISTOGRAM, {}, {p.CFG_PRIVATE: True, p.CFG_NUMERICAL: ["age"], p.CFG_BINS: 8})
    with pytest.raises(PrivacyBudgetError, match=r"'hist.counts' has shape \(1, 9\), expected \(1, 8\)"):
        assert_private_statistics(histogram, {p.HIST_COUNTS: np.zeros((1, 9))})
