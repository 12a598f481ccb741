"""With a declared target CTGAN generates P(target) · G(features | target): every row is conditioned on
the target, drawn by its global frequency, and is written with the category it was generated for."""

import numpy as np
import pandas as pd
import pytest

from fedtab.connectors import load_party
from fedtab.models.conditional import ConditionalSampler
from fedtab.models.ctgan import FederatedCTGAN
from fedtab.transformers import fit_plan


@pytest.fixture(scope="module")
def plan():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"colour": rng.choice(["red", "green", "blue"], size=500),
                          "y": np.where(rng.random(500) < 0.1, "rare", "common"), "weight": rng.normal(50, 10, size=500)})
    return fit_plan([load_party("p", frame)], seed=0), float((frame["y"] == "rare").mean())


def _share_of_rare(model: FederatedCTGAN, plan) -> float:  # noqa: ANN001
    encoded = model.sample(model.init_weights(), 4000, seed=1)
    return float((plan.decode(encoded, np.random.default_rng(2))["y"] == "rare").mean())


def test_an_untrained_generator_writes_the_targets_global_frequency(plan):
    """Control: without the target (and without matching the released shares) the untrained generator writes
    its own draw, far from the real share."""
    plan, real = plan
    assert abs(_share_of_rare(FederatedCTGAN(plan, {"target": "y"}, seed=0), plan) - real) < 0.01
    assert abs(_share_of_rare(FederatedCTGAN(plan, {"category_marginals": False}, seed=0), plan) - real) > 0.1


def test_generation_conditions_every_row_on_the_target_and_training_on_half():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"colour": rng.choice(["red", "green", "blue"], size=300), "y": rng.choice(["a", "b"], size=300)})
    plan = fit_plan([load_party("p", frame)], seed=0)
    sampler = ConditionalSampler(plan, target="y")
    _, mask = sampler.sample_generation(1000, np.random.default_rng(1))
    assert (mask[:, sampler.target_index] == 1).all()
    _, mask = sampler.sample_fake(4000, np.random.default_rng(2))
    assert 0.45 < mask[:, sampler.target_index].mean() < 0.55
