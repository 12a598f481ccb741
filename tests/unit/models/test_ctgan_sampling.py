"""CTGAN's sampling: the vectorised category draw has softmax's law; bfloat16 sampling keeps the table."""

import numpy as np
import pandas as pd
import pytest

from fedtab.connectors import load_party
from fedtab.models.ctgan import FederatedCTGAN
from fedtab.transformers import fit_plan


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"colour": rng.choice(["red", "green", "blue"], size=400), "size": rng.choice(["s", "m", "l", "xl"], size=400),
                          "weight": rng.normal(50, 10, size=400)})
    return FederatedCTGAN(fit_plan([load_party("p", frame)], seed=0), seed=0)


def test_each_one_hot_span_draws_its_category_with_softmax_frequencies(model):
    rows = 40_000
    raw = np.zeros((rows, model.data_dim), dtype=np.float32)
    logits = {}
    for k, (start, end) in enumerate(model._softmax_spans):
        logits[k] = np.linspace(-1.0, 1.5, end - start).astype(np.float32) * (k + 1)
        raw[:, start:end] = logits[k]
    out = model._hard_activate(raw, np.random.default_rng(1))
    for k, (start, end) in enumerate(model._softmax_spans):
        block = out[:, start:end]
        np.testing.assert_array_equal(block.sum(axis=1), 1.0)
        expected = np.exp(logits[k] - logits[k].max())
        np.testing.assert_allclose(block.mean(axis=0), expected / expected.sum(), atol=0.01)


def test_bfloat16_sampling_draws_the_same_categories_as_float32_on_most_rows(model):
    weights = model.init_weights()
    high = FederatedCTGAN(model.plan, {"sample_precision": "float32"}, seed=0).sample(weights, 5000, seed=3)
    low = FederatedCTGAN(model.plan, {"sample_precision": "bfloat16"}, seed=0).sample(weights, 5000, seed=3)
    start, end = model._softmax_spans[0]
    agree = (high[:, start:end].argmax(axis=1) == low[:, start:end].argmax(axis=1)).mean()
    assert agree > 0.95
    scalars = model._tanh_columns
    assert np.abs(high[:, scalars] - low[:, scalars]).max() < 0.05
