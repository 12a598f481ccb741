"""Released-marginal matching: the mean softmax follows the shares, rankings stay, TVAE and CTGAN samples follow the plan."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fedtab.connectors import load_party
from fedtab.errors import ConfigError
from fedtab.models.matching import MarginalMatcher, logit_shift, released_marginals
from fedtab.models.registry import create_model
from fedtab.transformers import fit_plan

SMALL = {
    "tvae": {"embedding_dim": 8, "compress_dims": [32], "decompress_dims": [32]},
    "ctgan": {"embedding_dim": 8, "generator_dims": [32], "discriminator_dims": [32], "pac": 1},
}


@pytest.fixture(scope="module")
def plan():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "colour": rng.choice(["red", "green", "blue"], size=400, p=[0.6, 0.3, 0.1]),
        "weight": np.concatenate([rng.normal(20, 1, 200), rng.normal(80, 1, 200)]),
    })
    return fit_plan([load_party("p", frame)], seed=0)


def _skewed_logits(rows: int, classes: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(rows, classes, generator=torch.Generator().manual_seed(seed)) * 2 + torch.arange(classes) * 1.5


def test_the_mean_softmax_meets_the_shares_and_each_class_ranks_the_rows_as_before():
    logits = _skewed_logits(3000, 4)
    shares = torch.tensor([0.4, 0.3, 0.2, 0.1])
    assert (torch.softmax(logits, dim=1).mean(dim=0) - shares).abs().max() > 0.2  # control: far off before
    matched = logits + logit_shift(logits, shares, tolerance=0.0)
    assert (torch.softmax(matched, dim=1).mean(dim=0) - shares).abs().max() < 1e-3
    assert torch.equal(matched.argsort(dim=0), logits.argsort(dim=0))


def test_a_low_temperature_matches_the_argmax_shares_chunk_after_chunk():
    """The shift fitted on the first chunk carries to the next (another draw of the same model)."""
    shares = torch.tensor([0.4, 0.3, 0.2, 0.1])
    match = MarginalMatcher([(1, 5, shares)], temperature=0.05)
    for chunk in (_skewed_logits(4000, 5), _skewed_logits(4000, 5, seed=1)):
        written = torch.bincount(match(chunk)[:, 1:5].argmax(dim=1), minlength=4) / len(chunk)
        assert (written - shares).abs().max() < 0.02, written
        assert torch.equal(match(chunk)[:, 0], chunk[:, 0])  # columns outside the released spans untouched
    assert (torch.bincount(chunk[:, 1:5].argmax(dim=1), minlength=4) / len(chunk) - shares).abs().max() > 0.2


@pytest.mark.parametrize("name, options", [("tvae", {}), ("tvae", {"marginal_draw": "softmax"}), ("ctgan", {})],
                         ids=["tvae argmax", "tvae softmax draw", "ctgan"])
def test_a_drifted_output_is_pulled_back_to_the_released_shares(plan, name, options):
    column = next(c for c in plan.encoded_columns if c.name == "colour")
    released = dict(zip(column.vocabulary, np.asarray(column.counts) / np.sum(column.counts)))
    start = next(s for s, _, _ in released_marginals(plan) if s == _offset(plan, "colour"))
    shares = {}
    for matched in (False, True):
        model = create_model(name, plan, {**SMALL[name], **options, "category_marginals": matched}, seed=0)
        weights = model.init_weights()
        last = [k for k, v in weights.items() if k.endswith("bias") and v.shape == (plan.output_dim,)][-1]
        weights[last][start] += 10.0  # the first category's logit far above the others
        weights[last.replace("bias", "weight")][start:start + 3] *= 5  # rows that differ, as a trained network's
        frame = plan.decode(model.sample(weights, 3000, seed=1), np.random.default_rng(0))
        shares[matched] = frame["colour"].value_counts(normalize=True)
    assert shares[False][column.vocabulary[0]] > 0.9  # control: the drifted head writes one category
    assert all(abs(shares[True].get(k, 0.0) - v) < 0.03 for k, v in released.items()), (shares[True], released)


def _offset(plan, name: str) -> int:  # noqa: ANN001 - a TransformPlan
    offset = 0
    for column in plan.encoded_columns:
        if column.name == name:
            return offset
        offset += column.width
    raise KeyError(name)


def test_an_unknown_draw_is_refused_before_training(plan):
    with pytest.raises(ConfigError, match="marginal_draw = one of"):
        create_model("tvae", plan, {**SMALL["tvae"], "marginal_draw": "mode"})
