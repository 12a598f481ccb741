"""Issue 3's sanity scenarios on the real Adult data, subsampled so they run in seconds.

The full-size figures come from ``benchmarks/evaluator_sanity.py``; these are the same checks
on 6,000 train and 4,000 test rows, each able to fail.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fedtab.evaluators import aggregate, build_context, evaluate, party_scores

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def adult(adult_train_path: Path, adult_test_path: Path) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    train = pd.read_csv(adult_train_path, na_values=["?"]).sample(6000, random_state=1).reset_index(drop=True)
    test = pd.read_csv(adult_test_path, na_values=["?"]).sample(4000, random_state=2).reset_index(drop=True)
    jitter = train.copy()
    for name in train.columns:
        if pd.api.types.is_numeric_dtype(train[name]):
            jitter[name] = train[name] + rng.normal(0, 0.02 * train[name].std(), len(train))
        else:
            redraw = rng.random(len(train)) < 0.02
            jitter.loc[redraw, name] = rng.choice(train[name].dropna().to_numpy(), int(redraw.sum()))
    return {
        "train": train, "test": test, "jitter": jitter,
        "half_a": test[:2000].reset_index(drop=True), "half_b": test[2000:].reset_index(drop=True),
        "shuffled": pd.DataFrame({c: train[c].to_numpy()[rng.permutation(len(train))] for c in train.columns}),
    }


def run(adult, synthetic: str, holdout: str = "test"):
    return evaluate(adult["train"], adult[synthetic], holdout=adult[holdout], target="income", seed=0)


@pytest.fixture(scope="module")
def jittered(adult):
    """The jittered copy's central report, read by two tests (evaluation is seeded: one run is every run)."""
    return run(adult, "jitter")


def test_copy_is_high_risk(adult):
    report = run(adult, "train")
    assert report.privacy.attack_auc >= 0.9
    assert report.verdict("privacy").level == "high" and report.verdict("overall").headline == "Not safe to share"


def test_jittered_copy_is_still_flagged(jittered):
    report = jittered
    assert report.privacy.attack_auc >= 0.8
    assert report.verdict("privacy").level == "high"


def test_fresh_draws_are_low_risk(adult):
    report = run(adult, "half_a", "half_b")
    assert report.privacy.attack_auc == pytest.approx(0.5, abs=0.05)
    assert report.privacy.dcr_share == pytest.approx(0.5, abs=0.03)
    assert report.verdict("privacy").level == "low"


def test_shuffled_columns_keep_shapes_but_lose_pairs_and_utility(adult):
    report = run(adult, "shuffled")
    assert report.fidelity.column_shapes >= 0.95
    assert report.fidelity.column_pair_trends <= report.fidelity.column_shapes - 0.05
    for model in report.utility.models:
        assert model.tstr["roc_auc"] <= model.trtr["roc_auc"] - 0.3
    assert report.verdict("utility").level == "poor"


def test_five_parties_agree_with_central(adult, jittered):
    central = jittered
    context = build_context(adult["jitter"], target="income", seed=0)
    scores = [
        party_scores(adult["train"][i::5].reset_index(drop=True), adult["jitter"], context=context,
                     holdout_rows=adult["test"][i::5].reset_index(drop=True), party=f"p{i}")
        for i in range(5)
    ]
    federated = aggregate(scores, context=context)
    assert federated.privacy.attack_auc == pytest.approx(central.privacy.attack_auc, abs=0.03)
    assert federated.privacy.dcr_share == pytest.approx(central.privacy.dcr_share, abs=0.04)
    assert federated.fidelity.column_shapes == pytest.approx(central.fidelity.column_shapes, abs=0.03)
    assert federated.fidelity.column_pair_trends == pytest.approx(central.fidelity.column_pair_trends, abs=0.04)
    assert federated.verdict("privacy").level == central.verdict("privacy").level == "high"
