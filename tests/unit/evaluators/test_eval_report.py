"""The report value: verdict thresholds, strict JSON that reads back, one self-contained HTML page."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from eval_population import population
from fedtab.errors import ConfigError
from fedtab.evaluators import EvaluationReport, evaluate
from fedtab.evaluators.report import AttackResult, PrivacyResult
from fedtab.evaluators.verdicts import fidelity_verdict, privacy_verdict, utility_verdict


@pytest.fixture(scope="module")
def report() -> EvaluationReport:
    return evaluate(population(600, 1), population(600, 3), holdout=population(600, 2), target="label", seed=0)


def attack(auc: float, tpr: float = 0.01) -> AttackResult:
    return AttackResult("a", auc, tpr, tpr / 10)


def risk(auc: float = 0.5, share: float = 0.5, tpr: float = 0.01, copies: float = 0.0) -> str:
    result = PrivacyResult(exact_copies=copies, has_holdout=True, dcr_share=share, exact_train_share=copies,
                           exact_holdout_share=0.0, attacks=(attack(auc, tpr), attack(0.5)))
    return privacy_verdict(result).level


def test_risk_thresholds():
    assert risk() == "low"
    assert risk(auc=0.56) == "medium"
    assert risk(auc=0.61) == "high"
    assert risk(share=0.54) == "medium"
    assert risk(share=0.6) == "high"
    assert risk(tpr=0.04) == "medium"
    assert risk(tpr=0.2) == "high"
    assert risk(copies=0.02) == "high"
    assert privacy_verdict(PrivacyResult(exact_copies=0.3, has_holdout=False)).level == "not assessed"


def test_fidelity_thresholds_and_the_independence_cap(report):
    f = report.fidelity
    good = replace(f, column_shapes=0.95, column_pair_trends=0.97, pair_trends_independent=0.90)
    assert fidelity_verdict(good).level == "good"
    assert fidelity_verdict(replace(good, column_pair_trends=0.90)).level == "fair"
    assert fidelity_verdict(replace(good, column_shapes=0.7)).level == "poor"
    capped = fidelity_verdict(replace(good, pair_trends_independent=0.965))
    assert capped.level == "fair" and "largely lost" in capped.explanation


def test_utility_thresholds(report):
    u = report.utility
    assert utility_verdict(replace(u, relative_utility=0.95), "").level == "good"
    assert utility_verdict(replace(u, relative_utility=0.8), "").level == "fair"
    assert utility_verdict(replace(u, relative_utility=0.2), "").level == "poor"
    assert utility_verdict(replace(u, relative_utility=math.nan), "").level == "not assessed"
    assert utility_verdict(None, "needs a target").explanation == "needs a target"


def test_every_verdict_states_its_rule(report):
    assert [v.area for v in report.verdicts] == ["overall", "fidelity", "utility", "privacy"]
    for verdict in report.verdicts:
        assert verdict.rule and verdict.explanation and verdict.colour in {"green", "amber", "red", "grey"}


def test_json_is_strict_and_reads_back(report, tmp_path):
    path = report.to_json(tmp_path / "scores.json")
    data = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert data["privacy"]["attacks"][0]["name"].startswith("distance")
    assert data["utility"]["models"][0]["tstr"]["roc_auc"] > 0.5
    again = EvaluationReport.from_json(path)
    assert again.fidelity == report.fidelity
    assert again.privacy == report.privacy
    assert again.utility == report.utility
    assert again.verdicts == report.verdicts


def test_json_of_another_version_is_refused(report, tmp_path):
    data = report.to_dict() | {"schema_version": 99}
    with pytest.raises(ConfigError, match="schema version 99"):
        EvaluationReport.from_dict(data)


def test_html_is_one_self_contained_page(report, tmp_path):
    page = report.to_html(tmp_path / "report.html").read_text()
    assert page.count("<html") == 1
    markup = re.sub(r"<script[^>]*>.*?</script>", "<script></script>", page, flags=re.DOTALL)
    assert "<script src" not in page and "<link" not in markup
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", markup), "the page must not load anything from the network"
    assert "Plotly.newPlot" in page and len(page) > 1_000_000  # plotly.js inlined
    for verdict in report.verdicts:
        assert verdict.headline in page
    for section in ("Fidelity: columns one by one", "columns in pairs", "train on synthetic, test on real", "Membership risk"):
        assert section in page


def test_html_renders_without_utility_or_holdout(tmp_path):
    bare = evaluate(population(300, 1), population(300, 3))
    page = bare.to_html(tmp_path / "bare.html").read_text()
    assert "Risk unknown" in page and "Not assessed" in page


def test_same_seed_same_figures_and_the_caller_keeps_its_threads():
    import torch

    before = torch.get_num_threads()
    tables = population(600, 1), population(400, 3), population(300, 2)  # train sampled down to the holdout's size
    first = evaluate(tables[0], tables[1], holdout=tables[2], target="label", seed=5)
    again = evaluate(tables[0], tables[1], holdout=tables[2], target="label", seed=5)
    other = evaluate(tables[0], tables[1], holdout=tables[2], target="label", seed=6)
    assert torch.get_num_threads() == before
    assert first.privacy == again.privacy and first.utility == again.utility and first.fidelity == again.fidelity
    assert other.privacy.attacks[0].auc != first.privacy.attacks[0].auc  # another seed samples other train rows


def test_a_target_nothing_predicts_is_not_assessed():
    rng = np.random.default_rng(0)

    def noise(seed: int) -> pd.DataFrame:
        g = np.random.default_rng(seed)
        return pd.DataFrame({"x": g.normal(size=400), "c": g.choice(list("abc"), 400), "y": g.choice(["u", "v"], 400)})

    report = evaluate(noise(1), noise(2), holdout=noise(3), target="y", seed=int(rng.integers(10)))
    assert report.verdict("utility").level == "not assessed"
    assert "barely predict 'y'" in report.verdict("utility").explanation
