"""Fidelity statistics follow SDMetrics' definitions, pool exactly across parties, and compare with the papers."""

from __future__ import annotations

import numpy as np
import pytest

from eval_population import jittered, population
from fedtab.evaluators import evaluate
from fedtab.evaluators.inputs import prepare, resolve_layout
from fedtab.evaluators.statistics import FidelityBins, local_fidelity, pair_scores, shape_scores


def statistics(real, synthetic):
    layout = resolve_layout(synthetic)
    s = prepare(synthetic, layout, "synthetic")
    bins = FidelityBins.fit(s, layout)
    return local_fidelity(prepare(real, layout, "real"), bins), local_fidelity(s, bins), bins


def test_statistics_agree_with_sdmetrics_per_column_and_pair():
    from sdmetrics.reports import QualityReport

    real, synthetic = population(3000, 1), jittered(population(3000, 3), 0.05, 2)
    layout = resolve_layout(synthetic)
    quality = QualityReport()
    quality.real_correlation_threshold = quality.real_association_threshold = 0
    quality.generate({"t": real}, {"t": synthetic}, {"tables": {"t": {"columns": {c: {"sdtype": k} for c, k in layout.kinds.items()}}}}, verbose=False)
    r, s, bins = statistics(real, synthetic)
    ours = {x.column: x.score for x in shape_scores(r, s, bins)}
    for column, score in zip(quality.get_details("Column Shapes")["Column"], quality.get_details("Column Shapes")["Score"], strict=True):
        assert ours[column] == pytest.approx(score, abs=0.01), column
    ours_pairs = {(p.column_1, p.column_2): p.score for p in pair_scores(r, s, bins)}
    details = quality.get_details("Column Pair Trends")
    gaps = [abs(ours_pairs[(a, b)] - score) for a, b, score in zip(details["Column 1"], details["Column 2"], details["Score"], strict=True)]
    assert len(gaps) == 28 and max(gaps) < 0.06 and np.mean(gaps) < 0.02


def test_central_report_carries_sdmetrics_beside_the_shared_bin_figures():
    real, synthetic = population(2000, 1), population(2000, 3)
    fidelity = evaluate(real, synthetic).fidelity
    assert fidelity.column_shapes == pytest.approx(fidelity.sdmetrics["column_shapes"], abs=0.01)
    assert fidelity.column_pair_trends == pytest.approx(fidelity.sdmetrics["column_pair_trends"], abs=0.03)
    assert fidelity.sdmetrics["diagnostic_score"] == pytest.approx(1.0, abs=0.02)
    assert {"data_validity", "data_structure", "quality_score"} <= fidelity.sdmetrics.keys()


def test_counts_from_two_halves_add_up_to_the_whole():
    real, synthetic = population(1000, 1), population(1000, 3)
    whole, _, bins = statistics(real, synthetic)
    layout = resolve_layout(synthetic)
    halves = [local_fidelity(prepare(part, layout, "real"), bins) for part in (real[:400], real[400:].reset_index(drop=True))]
    for key, value in whole.items():
        np.testing.assert_allclose(halves[0][key] + halves[1][key], value, rtol=1e-9, atol=1e-9, err_msg=key)


def test_wasserstein_from_histograms_tracks_the_exact_paper_figure():
    real, synthetic = population(3000, 1), jittered(population(3000, 3), 0.2, 5)
    report = evaluate(real, synthetic)
    r, s, bins = statistics(real, synthetic)
    binned = np.mean([x.distance for x in shape_scores(r, s, bins) if x.metric == "KSComplement"])
    assert binned == pytest.approx(report.fidelity.wasserstein_distance, rel=0.25, abs=0.003)
    assert report.fidelity.wasserstein_distance > 0.005


def test_no_pair_is_skipped_or_nan():
    report = evaluate(population(500, 1), population(500, 3))
    assert len(report.fidelity.pairs) == 8 * 7 // 2
    assert all(np.isfinite(p.score) for p in report.fidelity.pairs)
    assert np.isfinite(report.fidelity.column_pair_trends)
