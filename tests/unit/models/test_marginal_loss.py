"""The released-marginals loss: aligned with the plan's spans, zero at the target, and it moves the generator."""

import numpy as np
import pandas as pd
import pytest
import torch

from fedtab.connectors import load_party
from fedtab.models.ctgan import FederatedCTGAN
from fedtab.models.matching import released_marginals
from fedtab.rng import isolated_torch_seed
from fedtab.transformers import fit_plan

SMALL = {"embedding_dim": 8, "generator_dims": [16], "discriminator_dims": [16]}


@pytest.fixture(scope="module")
def plan():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "colour": rng.choice(["red", "green", "blue"], size=600, p=[0.7, 0.25, 0.05]),
        "weight": np.concatenate([rng.normal(20, 1, 300), rng.normal(80, 1, 300)]),
    })
    return fit_plan([load_party("p", frame)], seed=0)


def test_targets_are_the_plans_counts_and_mode_weights(plan):
    targets = released_marginals(plan)
    by_name = {c.name: c for c in plan.encoded_columns}
    colour = next(t for t in targets if t[1] - t[0] == len(by_name["colour"].vocabulary))
    counts = np.asarray(by_name["colour"].counts)
    np.testing.assert_allclose(colour[2].numpy(), counts / counts.sum(), atol=1e-5)
    assert len(targets) == 2  # one categorical span, one numerical mode span
    for start, end, target in targets:
        assert 0 <= start < end <= plan.output_dim
        assert target.sum().item() == pytest.approx(1.0, abs=1e-5)


def _batch_with_marginals(plan, model: FederatedCTGAN, rows: int, uniform: bool) -> torch.Tensor:
    fake = torch.zeros(rows, plan.output_dim)
    for start, end, target in released_marginals(plan):
        probs = torch.full((end - start,), 1.0 / (end - start)) if uniform else target
        fake[:, start:end] = probs  # every row carries the frequencies: the batch mean equals them
    return fake


def test_loss_is_zero_at_the_released_marginals_and_positive_away(plan):
    model = FederatedCTGAN(plan, SMALL, seed=0, private=True)
    at_target = model.marginal_loss(_batch_with_marginals(plan, model, 64, uniform=False))
    away = model.marginal_loss(_batch_with_marginals(plan, model, 64, uniform=True))
    assert at_target.item() == pytest.approx(0.0, abs=1e-5)
    assert away.item() > 0.05
    off = FederatedCTGAN(plan, {**SMALL, "marginal_weight": 0.0}, seed=0, private=True)
    assert off.marginal_loss(_batch_with_marginals(plan, off, 64, uniform=True)).item() == 0.0


def test_minimising_it_pulls_generated_frequencies_to_the_targets(plan):
    model = FederatedCTGAN(plan, SMALL, seed=0, private=True)
    generator = model.load_modules(model.init_weights())["generator"]
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-2)
    cond = torch.zeros(256, model.conditions.cond_dim)
    first = None
    with isolated_torch_seed(0, "marginal-loss-test"):
        for _ in range(150):
            loss = model.marginal_loss(model.activate(generator(model.noise_with(cond, 256))))
            first = first if first is not None else loss.item()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    assert loss.item() < 0.2 * first
