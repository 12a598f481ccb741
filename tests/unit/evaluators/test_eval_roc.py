"""Binned ROC figures agree with sklearn's exact ones to within a bin."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from fedtab.evaluators.roc import auc_from_counts, bin_counts, roc_from_counts, thin_curve, tpr_at_fpr

EDGES = np.linspace(-6, 6, 4001)


def scores(seed: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(shift, 1, 3000), rng.normal(0, 1, 5000)


@pytest.mark.parametrize("shift", [0.0, 0.5, 2.0])
def test_auc_matches_sklearn(shift):
    pos, neg = scores(0, shift)
    exact = roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg])
    assert auc_from_counts(bin_counts(pos, EDGES), bin_counts(neg, EDGES)) == pytest.approx(exact, abs=1e-3)


def test_tpr_at_low_fpr_matches_sklearn():
    pos, neg = scores(1, 1.0)
    fpr, tpr = roc_from_counts(bin_counts(pos, EDGES), bin_counts(neg, EDGES))
    exact_fpr, exact_tpr, _ = roc_curve(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg])
    for target in (0.01, 0.1):
        assert tpr_at_fpr(fpr, tpr, target) == pytest.approx(np.interp(target, exact_fpr, exact_tpr), abs=0.01)


def test_ties_count_one_half_and_perfect_separation_counts_one():
    assert auc_from_counts(np.array([0, 10.0]), np.array([10.0, 0])) == 1.0
    assert auc_from_counts(np.array([5.0, 5.0]), np.array([5.0, 5.0])) == pytest.approx(0.5)
    fpr, tpr = roc_from_counts(np.array([0, 10.0]), np.array([10.0, 0]))
    assert tpr_at_fpr(fpr, tpr, 0.001) == 1.0


def test_out_of_range_scores_land_in_the_end_bins():
    counts = bin_counts(np.array([-100.0, 0.0, 100.0]), EDGES)
    assert counts[0] == 1 and counts[-1] == 1 and counts.sum() == 3


def test_an_roc_needs_both_classes():
    with pytest.raises(ValueError, match="at least one positive and one negative"):
        roc_from_counts(np.array([3.0]), np.array([0.0]))


def test_thin_curve_is_short_and_monotone():
    pos, neg = scores(2, 1.0)
    x, y = thin_curve(*roc_from_counts(bin_counts(pos, EDGES), bin_counts(neg, EDGES)))
    assert len(x) <= 200 and np.all(np.diff(y) >= -1e-12) and y[-1] == pytest.approx(1.0)
