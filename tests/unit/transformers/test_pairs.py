"""The 'pairs' stage: K parties' cross tables sum to the pooled ones; replies hold only what a release made."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from private_fakes import gaussian_releases
from transformer_tables import MIXED_SCHEMA, mixed_frame, split_parties

from fedtab.errors import ConfigError
from fedtab.schema import PartyTable
from fedtab.transformers import PlanFitter, TransformPlan, fit_plan, local_statistics
from fedtab.transformers import protocol as p
from fedtab.transformers.pairs import consistent_table
from fedtab.transformers.private_party import private_reply_problems, request_releases

TARGET = "colour"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return mixed_frame(1200, seed=2)


def test_k_parties_cross_tables_sum_to_the_pooled_ones(frame: pd.DataFrame) -> None:
    federated = fit_plan(split_parties(frame, MIXED_SCHEMA, 3), target=TARGET)
    pooled = fit_plan([PartyTable("all", frame, MIXED_SCHEMA)], target=TARGET)
    assert federated.target == pooled.target == TARGET
    crossed = [c.name for c in federated.columns if c.pair_counts]
    assert crossed == ["bimodal", "trimodal", "visits", "grade", "member", "joined"]
    for name in crossed:
        np.testing.assert_allclose(federated.column(name).pair_counts, pooled.column(name).pair_counts, atol=1e-9)
    colour = federated.column(TARGET)
    grade = federated.column("grade")
    real = pd.crosstab(frame[TARGET].fillna("__missing__"), frame["grade"].astype(str))
    expected = real.reindex(index=list(colour.vocabulary), columns=list(grade.vocabulary), fill_value=0)
    np.testing.assert_array_equal(grade.pair_counts, expected.to_numpy(dtype=float))
    for name in ("bimodal", "visits"):  # a numerical column's classes are its modes, each row's shares summing to 1
        np.testing.assert_allclose(np.sum(federated.column(name).pair_counts, axis=1), colour.counts)


def test_a_private_reply_holds_one_release_per_crossed_column(frame: pd.DataFrame) -> None:
    tables = split_parties(frame, MIXED_SCHEMA, 3)
    releases = gaussian_releases(tables, sigma=2.0)
    fitter = PlanFitter(MIXED_SCHEMA, mode="private", noise_multiplier=2.0, target=TARGET)
    while (request := fitter.next_request()) is not None:
        before = releases[0].accountant.steps()
        replies = [local_statistics(t, request, release=r, threshold_delta=1e-6) for t, r in zip(tables, releases)]
        assert all(private_reply_problems(request, reply) == [] for reply in replies)
        if request.stage == p.STAGE_PAIRS:
            assert before + 6 == releases[0].accountant.steps()
            assert request_releases(request).encoder_releases == 6
            padded = replies[0][p.PAIR_COUNTS].copy()
            padded[4, :, -1] = 1.0  # 'member' has 2 classes; the widest column more
            assert private_reply_problems(request, {p.PAIR_COUNTS: padded}) == [
                "the cross table of column 'member' carries counts past its 2 classes"]
        fitter.merge(replies)
    assert [r.accountant.steps() for r in releases] == [PlanFitter.release_plan(MIXED_SCHEMA, TARGET).encoder_releases] * 3
    plan = fitter.finalize()
    assert all(np.min(c.pair_counts) >= 0 for c in plan.columns if c.pair_counts)


def test_a_noisy_table_is_made_non_negative_and_consistent_with_the_one_way_counts() -> None:
    noisy = np.array([[50.0, -4.0, 30.0], [10.0, 20.0, 3.0]])
    table = consistent_table(noisy, target_counts=[90.0, 30.0], column_counts=[55.0, 20.0, 45.0])
    assert (table >= 0).all()
    np.testing.assert_allclose(table.sum(axis=1), [90.0, 30.0])
    np.testing.assert_allclose(table.sum(axis=0), [55.0, 20.0, 45.0], rtol=1e-3)


def test_a_plan_saved_before_the_pairs_still_loads(frame: pd.DataFrame) -> None:
    plan = fit_plan([PartyTable("all", frame, MIXED_SCHEMA)], target=TARGET)
    old = plan.to_dict()
    del old["target"]
    for column in old["columns"]:
        del column["pair_counts"]
    loaded = TransformPlan.from_dict(old)
    assert loaded.target is None and not any(c.pair_counts for c in loaded.columns)
    assert TransformPlan.from_dict(plan.to_dict()) == plan


@pytest.mark.parametrize(("target", "message"), [("nope", "'nope' is not a column"),
                                                  ("visits", "'visits' is a numerical column")])
def test_a_target_that_cannot_be_crossed_is_refused(target: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PlanFitter(MIXED_SCHEMA, target=target)
