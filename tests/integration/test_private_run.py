"""Record-level DP end to end: every message a party sends is noised or weights, and the ledger adds up."""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict

import numpy as np
import pytest

from fedtab import FederatedSynthesizer, FedtabConfig, PrivacyBudgetError
from fedtab.errors import ConfigError
from fedtab.federation import keys
from fedtab.privacy.accountant import PartyAccountant

SMALL = {"embedding_dim": 16, "generator_dims": [32], "discriminator_dims": [32]}


@pytest.fixture(scope="module")
def private_run(demo_frames):
    sent = defaultdict(list)
    config = FedtabConfig(model="ctgan", rounds=2, local_epochs=1.0, batch_size=200, seed=1, epsilon=10.0, model_options=SMALL)
    synth = FederatedSynthesizer(config, engine="local").fit(demo_frames, tap=lambda p, t, payload: sent[(p, t)].append(payload))
    return synth, sent


def test_statistics_replies_are_noised_counts_only(private_run, demo_frames):
    _, sent = private_run
    for party in demo_frames:
        stats = sent[(party, keys.STATS)]
        assert len(stats) == 2  # bounds/categories, then fine histograms: no EM rounds under DP
        for payload in stats:
            assert set(payload.config) == {keys.DP_REPORT}
            for key, array in payload.arrays.items():
                if array.dtype.kind in "fi":
                    values = array[array != 0]
                    # noised with sigma in the tens: no released count is a whole number of rows
                    assert values.size == 0 or np.mean(values != np.round(values)) > 0.99, key
    for stage in range(2):  # parties of 2000, 1500 and 1000 rows send the same shapes
        shapes = [{k: v.shape for k, v in sent[(p, keys.STATS)][stage].arrays.items()} for p in demo_frames]
        assert all(s == shapes[0] for s in shapes)


def test_training_replies_carry_weights_and_no_discriminator_loss(private_run):
    synth, sent = private_run
    for (party, message_type), payloads in sent.items():
        if message_type != keys.TRAIN:
            continue
        for payload in payloads:
            assert set(payload.arrays) == set(synth.state_.weights)
            assert "loss_d" not in payload.metrics  # computed on real rows without noise


def test_ledger_matches_each_partys_own_accountant(private_run):
    synth, sent = private_run
    ledger = synth.state_.ledger
    assert ledger is not None
    for spend in ledger["parties"]:
        last = sent[(spend["party"], keys.TRAIN)][-1]
        accountant = PartyAccountant.from_state_dict(json.loads(last.config[keys.DP_REPORT]))
        assert spend["epsilon"] == pytest.approx(accountant.epsilon(spend["delta"]), rel=1e-6)
        assert spend["epsilon"] <= 10.0
        assert {m["mechanism"] for m in spend["mechanisms"]} == {"encoder", "training"}


def test_private_model_saves_loads_and_samples(private_run, tmp_path):
    synth, _ = private_run
    loaded = FederatedSynthesizer.load(synth.save(tmp_path / "dp.fedtab"))
    assert loaded.state_.ledger == synth.state_.ledger
    assert loaded.sample(50, seed=2).equals(synth.sample(50, seed=2))


def test_a_budget_the_plan_cannot_meet_is_refused_up_front(demo_frames):
    config = FedtabConfig(model="ctgan", rounds=50, local_epochs=4.0, epsilon=0.01, model_options=SMALL)
    with pytest.raises(PrivacyBudgetError, match="Party .clinic_north. cannot (release|keep within) .* ε"):
        FederatedSynthesizer(config, engine="local").fit(demo_frames)


def test_federated_evaluation_is_refused_under_dp_with_what_to_do(demo_frames):
    from fedtab.evaluation_run import EvaluationRequest

    config = FedtabConfig(model="ctgan", rounds=1, local_epochs=1.0, batch_size=200, seed=1, epsilon=10.0, model_options=SMALL)
    with pytest.raises(ConfigError, match="refused under differential privacy.*fedtab evaluate"):
        FederatedSynthesizer(config, engine="local").fit(demo_frames, evaluate=EvaluationRequest(target="income", rows=500))


def test_a_central_report_next_to_a_dp_ledger_says_which_figures_are_dp(private_run, demo_frames, tmp_path):
    from fedtab.evaluators import EvaluationReport, evaluate

    synth, _ = private_run
    real = demo_frames["clinic_north"]
    # Nothing declared public, so income's DP vocabulary keeps a missing token and a few rows draw it (its released
    # count is noise around zero; the run's noise seed is each party's secret): the evaluator refuses unlabelled rows.
    synthetic = synth.sample(300, seed=2).dropna(subset=["income"])
    report = dataclasses.replace(evaluate(real, synthetic, target="income", seed=0), ledger=synth.state_.ledger)
    assert EvaluationReport.from_json(report.to_json(tmp_path / "r.json")).ledger == json.loads(json.dumps(report.ledger))
    assert any(line.startswith("Exact, not differentially private") for line in report.provenance())
    html = report.to_html(tmp_path / "r.html").read_text()
    assert "Differential privacy" in html and "clinic_north: ε = " in html
    assert "None of the figures in this report is a DP release" in html
