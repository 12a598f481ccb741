"""FedTabDiff on a tiny table: it learns a category → number relation, missing values, and generates on a declared target."""

import numpy as np
import pandas as pd
import pytest

from fedtab.connectors import load_party
from fedtab.errors import ConfigError
from fedtab.models.registry import create_model
from fedtab.transformers import fit_plan

SMALL = {"hidden_dims": [64, 64], "embedding_dim": 16, "sampling_steps": 20, "learning_rate": 3e-3}


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    rows = 1200
    kind = rng.choice(["a", "b", "c"], size=rows, p=[0.6, 0.3, 0.1])
    amount = np.where(kind == "a", 0.0, 8.0) + rng.normal(0, 1, rows)
    score = np.where(rng.random(rows) < 0.3, np.nan, rng.integers(0, 50, rows).astype(float))
    frame = pd.DataFrame({"kind": kind, "amount": amount, "score": score})
    party = load_party("p", frame)
    plan = fit_plan([party], seed=0)
    return plan, frame, plan.encode(party.frame, np.random.default_rng(0))


def _synthetic(plan, data, options, epochs: float):  # type: ignore[no-untyped-def]
    model = create_model("fedtabdiff", plan, {**SMALL, **options}, seed=0)
    weights = model.init_weights()
    if epochs:
        weights = model.local_update(weights, data, epochs=epochs, batch_size=100, round_index=0, party="p").weights
    return plan.decode(model.sample(weights, 1500, seed=1), np.random.default_rng(0))


def _gap(frame: pd.DataFrame) -> float:
    means = frame.groupby("kind", observed=True)["amount"].mean()
    return float(means[["b", "c"]].mean() - means["a"])


def test_it_learns_which_category_goes_with_which_numbers(table):
    plan, frame, data = table
    untrained, trained = _synthetic(plan, data, {}, 0), _synthetic(plan, data, {}, 40)
    assert abs(_gap(untrained)) < 2.0 < 6.0 < _gap(trained) < 10.0  # real gap: 8
    assert trained["kind"].value_counts(normalize=True)["a"] == pytest.approx(0.6, abs=0.1)
    assert trained["score"].isna().mean() == pytest.approx(frame["score"].isna().mean(), abs=0.08)
    assert set(trained["score"].dropna()) <= set(range(50))


def test_a_declared_target_is_drawn_at_its_released_shares_and_generated_on(table):
    plan, frame, data = table
    synthetic = _synthetic(plan, data, {"target": "kind"}, 40)
    shares = np.asarray(plan.column("kind").counts) / np.sum(plan.column("kind").counts)
    drawn = synthetic["kind"].value_counts(normalize=True).reindex(plan.column("kind").vocabulary).to_numpy()
    assert np.abs(drawn - shares).max() < 0.04
    assert 6.0 < _gap(synthetic) < 10.0


def test_a_target_that_is_not_a_categorical_column_is_refused(table):
    with pytest.raises(ConfigError, match="'amount' is not one of the table's categorical columns \\['kind'\\]"):
        create_model("fedtabdiff", table[0], {"target": "amount"})
