"""Federated evaluation: only fixed-size scores leave a party, and five parties agree with one place."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eval_population import jittered, population
from fedtab.errors import FederationError
from fedtab.evaluators import aggregate, build_context, evaluate, party_scores
from fedtab.evaluators.federated import merge_scores

PARTIES = 5


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    train = population(2000, 1)
    return {"train": train, "holdout": population(2000, 2), "fresh": population(2000, 3), "leaky": jittered(train, 0.02, 4)}


def split(frame: pd.DataFrame, parts: int) -> list[pd.DataFrame]:
    return [frame.iloc[i::parts].reset_index(drop=True) for i in range(parts)]


def federated(tables: dict[str, pd.DataFrame], synthetic: str):
    context = build_context(tables[synthetic], target="label", seed=0)
    scores = [
        party_scores(train, tables[synthetic], context=context, holdout_rows=holdout, party=f"p{i}")
        for i, (train, holdout) in enumerate(zip(split(tables["train"], PARTIES), split(tables["holdout"], PARTIES), strict=True))
    ]
    return aggregate(scores, context=context)


@pytest.fixture(scope="module")
def reports(tables):
    out = {}
    for synthetic in ("fresh", "leaky"):
        central = evaluate(tables["train"], tables[synthetic], holdout=tables["holdout"], target="label", seed=0)
        out[synthetic] = (central, federated(tables, synthetic))
    return out


def test_what_leaves_a_party_does_not_grow_with_its_rows(tables):
    context = build_context(tables["fresh"], target="label", seed=0)
    small = party_scores(tables["train"][:300], tables["fresh"], context=context, holdout_rows=tables["holdout"][:300])
    large = party_scores(tables["train"], tables["fresh"], context=context, holdout_rows=tables["holdout"])
    assert small.keys() == large.keys()
    assert {k: v.shape for k, v in small.items()} == {k: v.shape for k, v in large.items()}
    per_row = {k: v.shape for k, v in large.items() if k.startswith(("smallest:", "max:"))}
    assert all(shape[0] == len(tables["fresh"]) for shape in per_row.values())  # per synthetic row, not per real row
    assert sum(v.size for k, v in large.items() if k not in per_row) < 200_000


@pytest.mark.parametrize("synthetic", ["fresh", "leaky"])
def test_five_parties_agree_with_central_within_noise(reports, synthetic):
    central, fed = reports[synthetic]
    assert fed.mode == "federated" and fed.parties == PARTIES and central.mode == "central"
    assert fed.rows == central.rows
    for key in ("column_shapes", "column_pair_trends", "quality_score", "js_distance"):
        assert getattr(fed.fidelity, key) == pytest.approx(getattr(central.fidelity, key), abs=1e-9)  # counts pool exactly
        assert getattr(fed.fidelity, key) == pytest.approx(central.fidelity.sdmetrics.get(key, getattr(central.fidelity, key)), abs=0.03)
    assert fed.fidelity.wasserstein_distance == pytest.approx(central.fidelity.wasserstein_distance, abs=0.005)
    assert fed.verdict("fidelity").level == central.verdict("fidelity").level
    assert fed.fidelity.sdmetrics == {} and central.fidelity.sdmetrics["diagnostic_score"] > 0.9
    assert fed.privacy.dcr_share == pytest.approx(central.privacy.dcr_share, abs=0.04)
    assert fed.privacy.nndr_train == pytest.approx(central.privacy.nndr_train, abs=0.04)
    assert fed.privacy.exact_copies == central.privacy.exact_copies
    distance, density = 0, 1
    assert fed.privacy.attacks[distance].auc == pytest.approx(central.privacy.attacks[distance].auc, abs=0.03)
    assert fed.privacy.attack_auc == pytest.approx(central.privacy.attack_auc, abs=0.03)
    # the density attack's reference is each party's own holdout (400 rows here), so it is weaker federated
    assert fed.privacy.attacks[density].auc <= central.privacy.attacks[density].auc + 0.05
    for fed_model, central_model in zip(fed.utility.models, central.utility.models, strict=True):
        assert fed_model.tstr == pytest.approx(central_model.tstr, abs=1e-9)  # same models, pooled test counts
        assert fed_model.trtr["roc_auc"] == pytest.approx(central_model.trtr["roc_auc"], abs=0.05)
    assert fed.verdict("privacy").level == central.verdict("privacy").level


def test_leaky_synthetic_table_is_flagged_both_ways(reports):
    for report in reports["leaky"]:
        assert report.verdict("privacy").level == "high"
        assert report.privacy.attacks[1].auc >= 0.65
    for report in reports["fresh"]:
        assert report.verdict("privacy").level == "low"
        assert report.privacy.attacks[1].auc == pytest.approx(0.5, abs=0.05)


def test_a_party_can_rebuild_the_context_and_score_the_same(tables):
    first = build_context(tables["fresh"], target="label", seed=3)
    again = build_context(tables["fresh"], target="label", seed=3)
    a = party_scores(tables["train"][:500], tables["fresh"], context=first, holdout_rows=tables["holdout"][:500], party="x")
    b = party_scores(tables["train"][:500], tables["fresh"], context=again, holdout_rows=tables["holdout"][:500], party="x")
    assert a.keys() == b.keys()
    for key in a:
        if not key.startswith("sum:timing/"):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_merge_rules_by_hand():
    one = {"sum:n": np.array([2.0]), "smallest:d": np.array([[1.0, 4.0], [0.5, 0.7]]), "max:copy": np.array([0.0, 1.0])}
    two = {"sum:n": np.array([3.0]), "smallest:d": np.array([[2.0, 3.0], [0.1, 9.0]]), "max:copy": np.array([1.0, 0.0])}
    merged = merge_scores([one, two])
    np.testing.assert_array_equal(merged["sum:n"], [5.0])
    np.testing.assert_array_equal(merged["smallest:d"], [[1.0, 2.0], [0.1, 0.5]])
    np.testing.assert_array_equal(merged["max:copy"], [1.0, 1.0])


def test_merge_refuses_what_does_not_fit():
    with pytest.raises(FederationError, match="Party 1 sent 'sum:n' with shape \\(2,\\)"):
        merge_scores([{"sum:n": np.zeros(1)}, {"sum:n": np.zeros(2)}])
    with pytest.raises(FederationError, match="names no known merge"):
        merge_scores([{"mean:n": np.zeros(1)}])
    with pytest.raises(FederationError, match="No party sent"):
        merge_scores([])


def test_parties_without_holdout_still_report_copies(tables):
    context = build_context(tables["train"], seed=0)
    scores = [party_scores(part, tables["train"], context=context, party=f"p{i}") for i, part in enumerate(split(tables["train"], 3))]
    report = aggregate(scores, context=context)
    assert report.privacy.exact_copies == 1.0
    assert report.verdict("privacy").level == "not assessed"
    assert report.utility is None
