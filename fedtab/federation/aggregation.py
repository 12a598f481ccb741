"""Server-side aggregation of party updates: FedAvg by rows, Fed-TGAN's similarity-aware weights, or
one of Flower's robust rules (coordinate median, trimmed mean, Krum)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from fedtab.config import ROBUST_AGGREGATIONS

Weights = dict[str, np.ndarray]


def weighted_average(updates: Sequence[Weights], weights: Sequence[float]) -> Weights:
    """A convex combination of updates, key by key; integer buffers (BatchNorm counters) are rounded back."""
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    out: Weights = {}
    for key in updates[0]:
        stacked = np.stack([u[key].astype(np.float64) for u in updates])
        mean = np.tensordot(w, stacked, axes=1)
        dtype = updates[0][key].dtype
        out[key] = np.rint(mean).astype(dtype) if np.issubdtype(dtype, np.integer) else mean.astype(dtype)
    return out


BUFFER_MARKERS = ("running_mean", "running_var", "num_batches_tracked")
ROBUST = ROBUST_AGGREGATIONS
TRIM_SHARE = 0.2
"""Trimmed mean cuts this share of parties at each end, per coordinate (one of five at each end)."""


def robust_aggregate(rule: str, updates: Sequence[Weights]) -> Weights:
    """A robust rule over the parties' weights, through Flower's own implementations.

    Each party counts once, whatever its rows: a party cannot buy influence by claiming rows. The
    median and the trimmed mean work coordinate by coordinate; Krum keeps the one party's update
    closest to its n − f − 2 nearest neighbours, with f = ⌊(n − 3) / 2⌋ (the most Krum tolerates; 0 below 5
    parties, where it still drops the one farthest update). With 2 parties the median is the mean.

    Under record-level DP nothing changes in the accounting: each party's update is already its own
    DP release, and any rule applied to the releases is post-processing. Party-level DP (noise sized
    for a mean) is refused with these rules by ``FedtabConfig``.
    """
    from flwr.server.strategy.aggregate import aggregate_krum, aggregate_median, aggregate_trimmed_avg

    names = list(updates[0])
    results = [([np.asarray(u[k], dtype=np.float64) for k in names], 1) for u in updates]
    if rule == "median":
        merged = aggregate_median(results)
    elif rule == "trimmed-mean":
        merged = aggregate_trimmed_avg(results, TRIM_SHARE)
    elif rule == "krum":  # distances over the trained weights only (not BatchNorm's counters); the winner is kept whole
        trained = [([np.asarray(u[k], dtype=np.float64) for k in names if np.issubdtype(u[k].dtype, np.floating)], 1)
                   for u in updates]
        chosen = aggregate_krum(trained, num_malicious=max(0, (len(updates) - 3) // 2), to_keep=0)
        return dict(updates[next(i for i, (arrays, _) in enumerate(trained) if arrays is chosen)])
    else:
        raise ValueError(f"unknown robust rule {rule!r}; known: {ROBUST}")
    out: Weights = {}
    for key, value in zip(names, merged):
        dtype = updates[0][key].dtype
        out[key] = np.rint(value).astype(dtype) if np.issubdtype(dtype, np.integer) else np.asarray(value).astype(dtype)
    return out


def server_step(previous: Weights, averaged: Weights, lr: float) -> Weights:
    """FedAvg with a server learning rate: w + lr·(mean − w) on every trained float weight.

    Averaging K parties' updates cancels their noise but not their length: one round moves the
    global model about as far as one party's local steps, K times less than a central epoch at
    the same compute. lr > 1 lengthens the step (Reddi et al. 2021, "Adaptive Federated
    Optimization", with SGD on the server). BatchNorm's running statistics and counters are
    statistics, not trained weights: they keep the plain mean.
    """
    if lr == 1.0:
        return averaged
    out: Weights = {}
    for key, mean in averaged.items():
        buffer = any(marker in key for marker in BUFFER_MARKERS) or not np.issubdtype(mean.dtype, np.floating)
        out[key] = mean if buffer else (previous[key] + lr * (mean - previous[key])).astype(mean.dtype)
    return out


def row_count_weights(num_examples: Sequence[int]) -> np.ndarray:
    n = np.asarray(num_examples, dtype=np.float64)
    return n / n.sum()


def similarity_weights(distances: np.ndarray, num_examples: Sequence[int], *, softmax: bool) -> np.ndarray:
    """Fed-TGAN's table-similarity-aware weights.

    ``distances`` is (parties, columns): each party's per-column distance to the global
    distribution (Jensen-Shannon for categorical, Wasserstein for continuous). Per column the
    distances are normalised over parties, summed into S_k; w'_k = (1 - S_k / sum S) * n_k / N;
    then either a softmax (the paper's choice, which flattens weights towards uniform) or a plain
    normalisation.
    """
    d = np.asarray(distances, dtype=np.float64)
    column_totals = d.sum(axis=0, keepdims=True)
    normalised = np.divide(d, column_totals, out=np.zeros_like(d), where=column_totals > 0)
    scores = normalised.sum(axis=1)
    total = scores.sum()
    share = scores / total if total > 0 else np.zeros_like(scores)
    raw = (1.0 - share) * row_count_weights(num_examples)
    if softmax:
        e = np.exp(raw - raw.max())
        return e / e.sum()
    if raw.sum() <= 0:
        return row_count_weights(num_examples)
    return raw / raw.sum()


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two count vectors."""
    p = _to_probs(p)
    q = _to_probs(q)
    m = 0.5 * (p + q)
    return float(np.sqrt(max(0.5 * _kl(p, m) + 0.5 * _kl(q, m), 0.0)))


def histogram_wasserstein(p: np.ndarray, q: np.ndarray) -> float:
    """Wasserstein-1 between two histograms on the same bins, in units of the [0, 1]-scaled range."""
    cdf_gap = np.cumsum(_to_probs(p)) - np.cumsum(_to_probs(q))
    return float(np.abs(cdf_gap).sum() / max(len(cdf_gap), 1))


def party_distances(party_marginals: Sequence[Mapping[str, np.ndarray]], kinds: Mapping[str, str]) -> np.ndarray:
    """(parties, columns) distances of each party's marginals to the summed (global) ones."""
    columns = list(kinds)
    out = np.zeros((len(party_marginals), len(columns)))
    for j, column in enumerate(columns):
        total = np.sum([m[column] for m in party_marginals], axis=0)
        metric = js_distance if kinds[column] == "categorical" else histogram_wasserstein
        out[:, j] = [metric(m[column], total) for m in party_marginals]
    return out


def _to_probs(counts: np.ndarray) -> np.ndarray:
    c = np.clip(np.asarray(counts, dtype=np.float64), 0, None)
    s = c.sum()
    return c / s if s > 0 else np.full(c.size, 1.0 / max(c.size, 1))


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    mask = p > 0
    return float(np.sum(p[mask] * np.log2(p[mask] / q[mask])))
