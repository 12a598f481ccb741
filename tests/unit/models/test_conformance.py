"""Every model plugin passes the same checks: registry, determinism, shapes, options, tiny parties."""

import numpy as np
import pandas as pd
import pytest

from fedtab.connectors import load_party
from fedtab.errors import ConfigError
from fedtab.models.registry import create_model, known_models
from fedtab.transformers import fit_plan

SMALL = {"embedding_dim": 16, "generator_dims": [32], "discriminator_dims": [32]}


@pytest.fixture(scope="module")
def plan_and_data():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "kind": rng.choice(["a", "b", "c"], size=300),
        "flag": rng.choice([True, False], size=300),
        "amount": np.concatenate([rng.normal(0, 1, 150), rng.normal(8, 1, 150)]),
    })
    table = load_party("p", frame)
    plan = fit_plan([table], seed=0)
    return plan, plan.encode(table.frame, np.random.default_rng(0))


@pytest.fixture(params=known_models())
def model_name(request):
    return request.param


def test_unknown_model_lists_the_known_ones(plan_and_data):
    with pytest.raises(ConfigError, match="known models are \\['ctgan'"):
        create_model("gpt", plan_and_data[0])


def test_unknown_option_is_refused(model_name, plan_and_data):
    with pytest.raises(ConfigError, match="has no options \\['layers'\\]"):
        create_model(model_name, plan_and_data[0], {"layers": 3})


def test_init_is_seeded(model_name, plan_and_data):
    plan = plan_and_data[0]
    a = create_model(model_name, plan, SMALL, seed=1).init_weights()
    b = create_model(model_name, plan, SMALL, seed=1).init_weights()
    c = create_model(model_name, plan, SMALL, seed=2).init_weights()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a if a[k].dtype.kind == "f")


def test_local_update_keeps_the_shape_of_the_weights(model_name, plan_and_data):
    plan, data = plan_and_data
    model = create_model(model_name, plan, SMALL, seed=0)
    weights = model.init_weights()
    update = model.local_update(weights, data, epochs=1.0, batch_size=100, round_index=0, party="p")
    assert {k: v.shape for k, v in update.weights.items()} == {k: v.shape for k, v in weights.items()}
    assert update.num_examples == len(data)
    assert all(np.isfinite(v) for v in update.metrics.values())
    assert any(not np.array_equal(update.weights[k], weights[k]) for k in weights)
    again = model.local_update(update.weights, data, epochs=1.0, batch_size=100, round_index=1, party="p",
                               optimizer_state=update.optimizer_state)
    assert set(again.optimizer_state) == set(update.optimizer_state)


def test_a_party_smaller_than_a_batch_trains(model_name, plan_and_data):
    plan, data = plan_and_data
    model = create_model(model_name, plan, SMALL, seed=0)
    update = model.local_update(model.init_weights(), data[:13], epochs=2.0, batch_size=500, round_index=0, party="tiny")
    assert update.num_examples == 13 and np.isfinite(update.metrics["loss_g"])


def test_sampling_is_seeded_and_sized(model_name, plan_and_data):
    plan, _ = plan_and_data
    model = create_model(model_name, plan, SMALL, seed=0)
    weights = model.init_weights()
    a = model.sample(weights, 7, seed=5)
    assert a.shape == (7, plan.output_dim)
    np.testing.assert_array_equal(a, model.sample(weights, 7, seed=5))
    assert not np.array_equal(a, model.sample(weights, 7, seed=6))
