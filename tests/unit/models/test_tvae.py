"""Federated TVAE: ctgan's loss on the plan's spans, a decoder Opacus can train, valid seeded samples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from ctgan.data_transformer import SpanInfo
from ctgan.synthesizers.tvae import Decoder, _loss_function

from fedtab.connectors import load_party
from fedtab.models.privacy import TrainingPrivacy
from fedtab.models.registry import create_model
from fedtab.models.tvae import SigmaDecoder
from fedtab.privacy.accountant import PartyAccountant
from fedtab.privacy.dpsgd import module_problems
from fedtab.rng import isolated_torch_seed
from fedtab.transformers import fit_plan

SMALL = {"embedding_dim": 8, "compress_dims": [32], "decompress_dims": [32]}


@pytest.fixture(scope="module")
def plan_and_data():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "colour": rng.choice(["red", "green", "blue"], size=400, p=[0.7, 0.25, 0.05]),
        "weight": np.concatenate([rng.normal(20, 1, 200), rng.normal(80, 1, 200)]),
    })
    table = load_party("p", frame)
    plan = fit_plan([table], seed=0)
    return plan, plan.encode(table.frame, np.random.default_rng(0))


def test_the_per_row_loss_averages_to_ctgans_tvae_loss(plan_and_data):
    plan, data = plan_and_data
    model = create_model("tvae", plan, SMALL, seed=0)
    modules = model.load_modules(model.init_weights())
    with torch.no_grad():
        modules["decoder"].sigma.weight.uniform_(0.05, 0.5)  # a sigma per value, not ctgan's constant start
    real = torch.from_numpy(data[:64])
    with isolated_torch_seed(0, "loss"):
        ours = model.private_loss(modules, real, np.random.default_rng(0))
    with isolated_torch_seed(0, "loss"):  # the same reparameterisation noise
        mu, std, logvar = modules["encoder"](real)
        recon, sigma = modules["decoder"](mu + std * torch.randn_like(std))
    info = [[SpanInfo(s.dim, s.activation) for s in column] for column in plan.output_info]
    reconstruction, kl = _loss_function(recon, real, sigma[0], mu, logvar, info, model.options["loss_factor"])
    assert ours.shape == (64,)
    assert ours.mean().item() == pytest.approx((reconstruction + kl).item(), rel=1e-5)


def test_ctgans_bare_sigma_fails_opacus_and_the_linear_sigma_passes():
    problems = module_problems(Decoder(8, (16,), 5))
    assert len(problems) == 1 and "holds parameters ['sigma'] next to child layers" in problems[0]
    assert module_problems(SigmaDecoder(8, (16,), 5)) == []


def test_training_lowers_the_loss_and_samples_are_valid_encoded_rows(plan_and_data):
    plan, data = plan_and_data
    model = create_model("tvae", plan, SMALL, seed=0)
    weights, state, losses = model.init_weights(), None, []
    for round_index in range(4):
        update = model.local_update(weights, data, epochs=3.0, batch_size=50, round_index=round_index, party="p",
                                    optimizer_state=state)
        weights, state = update.weights, update.optimizer_state
        losses.append(update.metrics["loss"])
    assert losses[-1] < 0.7 * losses[0], losses
    sample = model.sample(weights, 500, seed=3)
    spans, tanh = model._softmax_spans, model._tanh_columns
    for start, end in spans:
        np.testing.assert_array_equal(sample[:, start:end].sum(axis=1), 1.0)
    assert np.all(np.abs(sample[:, tanh]) <= 1)
    colour = plan.decode(sample, np.random.default_rng(0))["colour"].value_counts(normalize=True)
    assert colour["red"] > 0.5  # the majority category (70 % of the rows) is learnt


def test_a_private_update_charges_every_step_and_moves_both_networks(plan_and_data):
    plan, data = plan_and_data
    model = create_model("tvae", plan, SMALL, seed=0, private=True)
    weights = model.init_weights()
    update = model.local_update(weights, data, epochs=1.0, batch_size=50, round_index=0, party="p",
                                privacy=TrainingPrivacy(1.0, 40 / 400))
    assert update.metrics == {}
    assert PartyAccountant.from_state_dict(update.accountant_state).steps("training") == 10
    for prefix in ("encoder.", "decoder.sigma."):
        assert any(not np.array_equal(update.weights[k], weights[k]) for k in weights if k.startswith(prefix)), prefix


def test_batch_scale_trains_each_party_at_a_multiple_of_its_batch_and_dp_keeps_its_own_rate(plan_and_data):
    plan, data = plan_and_data
    steps = {}
    for scale in (1, 2):
        model = create_model("tvae", plan, {**SMALL, "batch_scale": scale}, seed=0)
        update = model.local_update(model.init_weights(), data, epochs=1.0, batch_size=50, round_index=0, party="p")
        steps[scale] = update.metrics["steps"]
    assert steps == {1: 8.0, 2: 4.0}  # 400 rows at batch 50, then at batch 100
    rates = {private: create_model("tvae", plan, SMALL, private=private).make_optimizers(
        create_model("tvae", plan, SMALL).build_modules())["vae"].param_groups[0]["lr"] for private in (False, True)}
    assert rates == {False: 2e-3, True: 1e-3}
