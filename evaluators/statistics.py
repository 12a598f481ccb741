"""Fidelity from additive statistics: what a party can send without sending rows.

Each party bins its own rows on edges fitted on the synthetic table (which may travel) and sends
counts: a fine histogram per column, a contingency table per column pair, and six sums per pair
of numbers (for Pearson's r). Counts from several parties add up to the counts of their union,
so the scores below, computed from summed counts, are the scores of the pooled rows.

The scores follow SDMetrics' definitions: KS complement (numbers) and TV complement (categories)
for column shapes; correlation similarity ``1 − |r_real − r_syn| / 2`` for two numbers and
contingency similarity ``1 − TVD`` of the joint distribution (numbers in 10 equal-width bins,
missing as a value) for the other pairs. Fed-TGAN's figures come from the same histograms:
the Jensen–Shannon distance (base 2) of each categorical column and the Wasserstein distance of
each numerical column scaled to [0, 1] by the synthetic range.

Differences from SDMetrics, by design: both tables are binned on the same edges (SDMetrics bins
each table on its own edges, which marks a perfect sample below 1), and a KS statistic over
more than 1,000 distinct values is read at 1,000 quantiles of the synthetic column.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon

from fedtab.evaluators.encoding import category_text
from fedtab.evaluators.inputs import CATEGORICAL, ColumnLayout

FINE_BINS = 1000
PAIR_BINS = 10
PLOT_BINS = 30
Payload = dict[str, np.ndarray]


@dataclass(frozen=True)
class ColumnBins:
    """How one column is binned: ``edges`` for numbers (fine, pair, plot), ``categories`` otherwise."""

    name: str
    kind: str
    categories: tuple[str, ...] = ()
    fine_edges: tuple[float, ...] = ()
    pair_edges: tuple[float, ...] = ()
    plot_edges: tuple[float, ...] = ()
    center: float = 0.0
    scale: float = 1.0

    @property
    def is_categorical(self) -> bool:
        return self.kind == CATEGORICAL

    @property
    def shape_size(self) -> int:
        """Bins of the shape histogram, the last one for missing values."""
        return (len(self.categories) + 2) if self.is_categorical else (len(self.fine_edges) + 2)

    @property
    def pair_size(self) -> int:
        return (len(self.categories) + 2) if self.is_categorical else (len(self.pair_edges) + 2)


@dataclass(frozen=True)
class FidelityBins:
    columns: tuple[ColumnBins, ...]

    @classmethod
    def fit(cls, synthetic: pd.DataFrame, layout: ColumnLayout) -> FidelityBins:
        return cls(tuple(_fit_column(synthetic[name], name, kind) for name, kind in layout.kinds.items()))

    @property
    def pairs(self) -> list[tuple[int, int]]:
        return list(itertools.combinations(range(len(self.columns)), 2))


@dataclass(frozen=True)
class ShapeScore:
    column: str
    metric: str
    score: float
    distance: float  # Jensen–Shannon (categorical) or scaled Wasserstein (numerical)


@dataclass(frozen=True)
class PairScore:
    column_1: str
    column_2: str
    metric: str
    score: float
    real_correlation: float | None
    synthetic_correlation: float | None
    independent: float  # the score of a table with the real marginals but independent columns


def local_fidelity(frame: pd.DataFrame, bins: FidelityBins) -> Payload:
    """Counts and sums of one table (a party's rows, or the synthetic table) on the shared bins."""
    shape_codes = [_shape_codes(frame[c.name], c) for c in bins.columns]
    pair_codes = [_pair_codes(frame[c.name], c) for c in bins.columns]
    out: Payload = {"sum:fidelity/rows": np.array([float(len(frame))])}
    for i, column in enumerate(bins.columns):
        out[f"sum:fidelity/shape/{i}"] = np.bincount(shape_codes[i], minlength=column.shape_size).astype(float)
        if not column.is_categorical:
            plot_codes = _numeric_codes(frame[column.name], column.plot_edges[1:-1])
            out[f"sum:fidelity/plot/{i}"] = np.bincount(plot_codes, minlength=len(column.plot_edges)).astype(float)
    for i, j in bins.pairs:
        a, b = bins.columns[i], bins.columns[j]
        if a.is_categorical or b.is_categorical:
            joint = pair_codes[i] * b.pair_size + pair_codes[j]
            counts = np.bincount(joint, minlength=a.pair_size * b.pair_size).astype(float)
            out[f"sum:fidelity/pair/{i}/{j}"] = counts.reshape(a.pair_size, b.pair_size)
        else:
            out[f"sum:fidelity/corr/{i}/{j}"] = _pearson_sums(frame[a.name], frame[b.name], a, b)
    return out


def shape_scores(real: Mapping[str, np.ndarray], synthetic: Mapping[str, np.ndarray], bins: FidelityBins) -> list[ShapeScore]:
    out = []
    for i, column in enumerate(bins.columns):
        r, s = real[f"sum:fidelity/shape/{i}"][:-1], synthetic[f"sum:fidelity/shape/{i}"][:-1]
        if r.sum() == 0 or s.sum() == 0:
            out.append(ShapeScore(column.name, _shape_metric(column), float("nan"), float("nan")))
            continue
        p, q = r / r.sum(), s / s.sum()
        if column.is_categorical:
            score, distance = 1 - 0.5 * np.abs(p - q).sum(), float(jensenshannon(p, q, base=2))
        else:
            gap = np.abs(np.cumsum(p) - np.cumsum(q))
            widths = np.diff(column.fine_edges) / max(column.fine_edges[-1] - column.fine_edges[0], 1e-12)
            score, distance = 1 - gap.max(), float(np.sum(gap[: len(widths)] * widths))
        out.append(ShapeScore(column.name, _shape_metric(column), float(score), distance))
    return out


def pair_scores(real: Mapping[str, np.ndarray], synthetic: Mapping[str, np.ndarray], bins: FidelityBins) -> list[PairScore]:
    out = []
    for i, j in bins.pairs:
        a, b = bins.columns[i].name, bins.columns[j].name
        key = f"sum:fidelity/pair/{i}/{j}"
        if key in real:
            r, s = _share(real[key]), _share(synthetic[key])
            score = 1 - 0.5 * np.abs(r - s).sum() if real[key].sum() and synthetic[key].sum() else np.nan
            independent = 1 - 0.5 * np.abs(r - np.outer(r.sum(1), r.sum(0))).sum()
            out.append(PairScore(a, b, "ContingencySimilarity", float(score), None, None, float(independent)))
            continue
        real_r = _pearson(real[f"sum:fidelity/corr/{i}/{j}"])
        syn_r = _pearson(synthetic[f"sum:fidelity/corr/{i}/{j}"])
        score = 1 - abs(real_r - syn_r) / 2
        out.append(PairScore(a, b, "CorrelationSimilarity", float(score), real_r, syn_r, float(1 - abs(real_r) / 2)))
    return out


def marginal(real: Mapping[str, np.ndarray], synthetic: Mapping[str, np.ndarray], bins: FidelityBins, i: int, top: int = 20) -> dict[str, object]:
    """Frequencies of one column for a plot: categories (the most common ``top``) or equal-width bins."""
    column = bins.columns[i]
    if column.is_categorical:
        r, s = real[f"sum:fidelity/shape/{i}"], synthetic[f"sum:fidelity/shape/{i}"]
        labels = [*column.categories, "(other)", "(missing)"]
        order = np.argsort(-(r + s), kind="stable")[:top]
        order = order[(r + s)[order] > 0]
        return {"column": column.name, "kind": column.kind, "labels": [labels[k] for k in order],
                "real": _share(r)[order].round(6).tolist(), "synthetic": _share(s)[order].round(6).tolist()}
    r, s = real[f"sum:fidelity/plot/{i}"], synthetic[f"sum:fidelity/plot/{i}"]
    edges = np.asarray(column.plot_edges)
    centers = (edges[:-1] + edges[1:]) / 2
    return {"column": column.name, "kind": column.kind, "labels": centers.round(6).tolist(),
            "real": _share(r[:-1], r.sum()).round(6).tolist(), "synthetic": _share(s[:-1], s.sum()).round(6).tolist(),
            "missing_real": float(_share(r, r.sum())[-1]), "missing_synthetic": float(_share(s, s.sum())[-1])}


def _share(counts: np.ndarray, total: float | None = None) -> np.ndarray:
    total = counts.sum() if total is None else total
    return counts / total if total > 0 else np.zeros_like(counts)


def _shape_metric(column: ColumnBins) -> str:
    return "TVComplement" if column.is_categorical else "KSComplement"


def _fit_column(series: pd.Series, name: str, kind: str) -> ColumnBins:
    if kind == CATEGORICAL:
        present = category_text(series[series.notna()])
        return ColumnBins(name, kind, categories=tuple(sorted(set(present))))
    values = series.to_numpy(dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        values = np.zeros(1)
    distinct = np.unique(values)
    fine = distinct if distinct.size <= FINE_BINS else np.unique(np.quantile(values, np.linspace(0, 1, FINE_BINS + 1)))
    lo, hi = float(values.min()), float(values.max())
    span = hi - lo if hi > lo else 1.0
    pair = np.linspace(lo, lo + span, PAIR_BINS + 1)[1:-1]
    plot = np.linspace(lo, lo + span, PLOT_BINS + 1)
    spread = float(values.std()) or 1.0
    return ColumnBins(name, kind, fine_edges=tuple(fine.tolist()), pair_edges=tuple(pair.tolist()),
                      plot_edges=tuple(plot.tolist()), center=float(values.mean()), scale=spread)


def _numeric_codes(series: pd.Series, edges: tuple[float, ...]) -> np.ndarray:
    """0 below the first edge, k in [edge k−1, edge k), len(edges) from the last edge up, len+1 missing."""
    values = series.to_numpy(dtype=np.float64)
    codes = np.searchsorted(np.asarray(edges), values, side="right")
    return np.where(np.isnan(values), len(edges) + 1, codes)


def _shape_codes(series: pd.Series, column: ColumnBins) -> np.ndarray:
    if column.is_categorical:
        return _category_codes(series, column)
    values = series.to_numpy(dtype=np.float64)
    codes = np.searchsorted(np.asarray(column.fine_edges), values, side="left")
    return np.where(np.isnan(values), len(column.fine_edges) + 1, codes)


def _pair_codes(series: pd.Series, column: ColumnBins) -> np.ndarray:
    return _category_codes(series, column) if column.is_categorical else _numeric_codes(series, column.pair_edges)


def _category_codes(series: pd.Series, column: ColumnBins) -> np.ndarray:
    """Vocabulary index; ``len(categories)`` for a category the synthetic table lacks; one more for missing."""
    codes = pd.Categorical(series.astype(object), categories=column.categories).codes.astype(np.int64)
    codes = np.where(codes < 0, len(column.categories), codes)
    return np.where(series.isna().to_numpy(), len(column.categories) + 1, codes)


def _pearson_sums(x: pd.Series, y: pd.Series, a: ColumnBins, b: ColumnBins) -> np.ndarray:
    u = (x.to_numpy(dtype=np.float64) - a.center) / a.scale
    v = (y.to_numpy(dtype=np.float64) - b.center) / b.scale
    both = ~(np.isnan(u) | np.isnan(v))
    u, v = u[both], v[both]
    return np.array([u.size, u.sum(), v.sum(), (u * u).sum(), (v * v).sum(), (u * v).sum()], dtype=float)


def _pearson(sums: np.ndarray) -> float:
    n, su, sv, suu, svv, suv = sums
    if n < 2:
        return float("nan")
    cov, var_u, var_v = suv - su * sv / n, suu - su * su / n, svv - sv * sv / n
    if var_u <= 1e-12 * n or var_v <= 1e-12 * n:
        return float("nan")
    return float(np.clip(cov / np.sqrt(var_u * var_v), -1, 1))
