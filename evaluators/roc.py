"""Scores binned on fixed edges, so parties add histograms; ROC, AUC and TPR at a low FPR from them.

Binning costs at most one bin of resolution and lets a party report an attack or a classifier
through two count vectors whose length never depends on how many rows it holds. Rows in one bin
are ties: the ROC crosses the bin as a straight segment, which is the Mann–Whitney AUC with ties
counted as one half.
"""

from __future__ import annotations

import numpy as np


def bin_counts(scores: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin; values below the first edge or above the last land in the end bins."""
    index = np.searchsorted(edges, np.asarray(scores, dtype=np.float64), side="right")
    return np.bincount(index, minlength=len(edges) + 1).astype(np.float64)


def roc_from_counts(positive: np.ndarray, negative: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROC points (fpr, tpr), from the strictest threshold (highest bin) down to accepting everything."""
    pos, neg = np.asarray(positive, float)[::-1], np.asarray(negative, float)[::-1]
    if pos.sum() <= 0 or neg.sum() <= 0:
        raise ValueError("an ROC needs at least one positive and one negative")
    tpr = np.concatenate([[0.0], np.cumsum(pos) / pos.sum()])
    fpr = np.concatenate([[0.0], np.cumsum(neg) / neg.sum()])
    return fpr, tpr


def auc_from_counts(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC (ties within a bin count one half)."""
    fpr, tpr = roc_from_counts(positive, negative)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    """The true-positive rate where the (piecewise-linear) ROC reaches ``target`` false positives."""
    x, y = _run_ends(fpr, tpr)
    return float(np.interp(target, x, y))


def thin_curve(fpr: np.ndarray, tpr: np.ndarray, points: int = 200) -> tuple[list[float], list[float]]:
    """At most ``points`` ROC points for a plot, denser near the origin where low-FPR attacks live."""
    grid = np.unique(np.concatenate([[0.0], np.geomspace(1e-4, 1.0, points - 1)]))
    x, y = _run_ends(fpr, tpr)
    return grid.round(6).tolist(), np.interp(grid, x, y).round(6).tolist()


def _run_ends(fpr: np.ndarray, tpr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One point per distinct FPR, the highest TPR reached there, so interpolation is well defined."""
    keep = np.concatenate([np.diff(fpr) > 0, [True]])
    return fpr[keep], tpr[keep]
