"""Every metric, four ways: best (a perfect or harmless table), worst, good and bad — each can fail."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eval_population import jittered, population, shuffled
from fedtab.evaluators import metrics as m

ROWS = 800


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    train = population(ROWS, 1)
    return {
        "train": train,
        "holdout": population(ROWS, 2),
        "fresh": population(ROWS, 3),
        "jitter_1pct": jittered(train, 0.01, 4),
        "jitter_5pct": jittered(train, 0.05, 4),
        "half_copied": pd.concat([train[: ROWS // 2], population(ROWS // 2, 5)], ignore_index=True),
        "shuffled": shuffled(train, 6),
        "alien": _alien(train),
        "skewed": _skewed(train),
    }


def _alien(frame: pd.DataFrame) -> pd.DataFrame:
    """Nothing in common: numbers far outside the real range, categories the real table never has."""
    out = frame.copy()
    for name in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[name]):
            out[name] = frame[name] + 10 * (frame[name].max() - frame[name].min()) + 1
        else:
            out[name] = "alien-" + frame[name].astype(str)
    return out


def _skewed(frame: pd.DataFrame) -> pd.DataFrame:
    """A bad generator: numbers stretched by half, categories drawn uniformly."""
    rng = np.random.default_rng(7)
    out = frame.copy()
    for name in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[name]):
            out[name] = frame[name] * 1.5
        else:
            out[name] = rng.choice(frame[name].dropna().unique(), len(frame))
    return out


def shapes(t, name):
    return m.ColumnShapes.compute(t["train"], t[name])


def test_column_shapes(tables):
    assert shapes(tables, "train") == pytest.approx(1.0)
    assert shapes(tables, "alien") <= 0.05
    assert shapes(tables, "fresh") >= 0.93
    assert shapes(tables, "skewed") <= 0.75


def test_column_pair_trends(tables):
    pairs = {name: m.ColumnPairTrends.compute(tables["train"], tables[name]) for name in ("train", "alien", "jitter_1pct", "shuffled")}
    assert pairs["train"] == pytest.approx(1.0)
    assert pairs["alien"] <= 0.3
    assert pairs["jitter_1pct"] >= 0.95
    assert pairs["shuffled"] <= pairs["jitter_1pct"] - 0.05


def test_js_distance(tables):
    js = {name: m.JSDistance.compute(tables["train"], tables[name]) for name in ("train", "alien", "fresh", "skewed")}
    assert js["train"] == pytest.approx(0.0, abs=1e-9)
    assert js["alien"] == pytest.approx(1.0)
    assert js["fresh"] <= 0.06
    assert js["skewed"] >= 0.15


def test_wasserstein_distance(tables):
    wd = {name: m.WassersteinDistance.compute(tables["train"], tables[name]) for name in ("train", "alien", "fresh", "skewed")}
    assert wd["train"] == pytest.approx(0.0, abs=1e-12)
    assert wd["alien"] >= 5
    assert wd["fresh"] <= 0.03
    assert wd["skewed"] >= 0.05


def test_relative_utility(tables):
    def utility(name: str, synthetic: pd.DataFrame | None = None) -> float:
        synthetic = tables[name] if synthetic is None else synthetic
        return m.RelativeUtility.compute(tables["train"], synthetic, holdout=tables["holdout"], target="label")

    noise = tables["train"].assign(label=np.random.default_rng(8).permutation(tables["train"]["label"].to_numpy()))
    assert 0.85 <= utility("fresh") <= 1.15
    assert utility("labels permuted", noise) <= 0.25
    assert utility("jitter_1pct") >= 0.85
    assert utility("shuffled") <= 0.4


def privacy(metric: type[m.Metric], tables: dict[str, pd.DataFrame], name: str) -> float:
    return metric.compute(tables["train"], tables[name], holdout=tables["holdout"])


def test_dcr_share(tables):
    assert privacy(m.DCRShare, tables, "fresh") == pytest.approx(0.5, abs=0.06)
    assert privacy(m.DCRShare, tables, "train") >= 0.95
    assert privacy(m.DCRShare, tables, "shuffled") == pytest.approx(0.5, abs=0.06)
    assert privacy(m.DCRShare, tables, "jitter_5pct") >= 0.8


def test_distance_attack(tables):
    assert privacy(m.DistanceAttackAUC, tables, "fresh") == pytest.approx(0.5, abs=0.06)
    assert privacy(m.DistanceAttackAUC, tables, "train") >= 0.99
    assert privacy(m.DistanceAttackAUC, tables, "shuffled") == pytest.approx(0.5, abs=0.06)
    assert privacy(m.DistanceAttackAUC, tables, "jitter_5pct") >= 0.8


def test_density_attack(tables):
    assert privacy(m.DensityAttackAUC, tables, "fresh") == pytest.approx(0.5, abs=0.06)
    assert privacy(m.DensityAttackAUC, tables, "train") >= 0.7
    assert privacy(m.DensityAttackAUC, tables, "shuffled") == pytest.approx(0.5, abs=0.06)
    assert privacy(m.DensityAttackAUC, tables, "jitter_5pct") >= 0.65


def test_nndr(tables):
    assert privacy(m.NNDRatio, tables, "fresh") >= 0.7
    assert privacy(m.NNDRatio, tables, "train") == pytest.approx(0.0)
    assert privacy(m.NNDRatio, tables, "shuffled") >= 0.7
    assert privacy(m.NNDRatio, tables, "jitter_5pct") <= 0.35


def test_exact_copies(tables):
    assert privacy(m.ExactCopies, tables, "fresh") == 0.0
    assert privacy(m.ExactCopies, tables, "train") == 1.0
    assert privacy(m.ExactCopies, tables, "jitter_5pct") == 0.0
    assert privacy(m.ExactCopies, tables, "half_copied") == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("metric", "raw", "normalized"),
    [(m.ColumnShapes, 0.8, 0.8), (m.JSDistance, 0.25, 0.75), (m.DCRShare, 0.5, 1.0), (m.DCRShare, 1.0, 0.0),
     (m.DistanceAttackAUC, 0.75, 0.5), (m.WassersteinDistance, 0.0, 1.0), (m.RelativeUtility, 1.0, 1.0)],
)
def test_normalize_maps_best_to_one(metric, raw, normalized):
    assert metric.normalize(raw) == pytest.approx(normalized)
    assert metric.goal in tuple(m.Goal)
    assert metric.min_value <= raw <= metric.max_value
