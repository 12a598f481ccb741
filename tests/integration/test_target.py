"""A declared target: refused before any statistic leaves when it cannot be one; kept predictable when it can."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from fedtab import FederatedSynthesizer, FedtabConfig
from fedtab.connectors import align, load_party, reconcile
from fedtab.errors import ConfigError
from fedtab.federation import keys
from fedtab.federation.coordinator import run_federation
from fedtab.federation.local import LocalTransport
from fedtab.synthesizer import stage_parties


def toy(rows: int, seed: int) -> pd.DataFrame:
    """y is "high" exactly when x + small noise > 0; z is noise; a colour that says nothing."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, rows)
    return pd.DataFrame({"x": x.round(3), "z": rng.normal(5.0, 2.0, rows).round(3),
                         "colour": rng.choice(["red", "green", "blue"], rows),
                         "y": np.where(x + rng.normal(0.0, 0.3, rows) > 0, "high", "low")})


@pytest.mark.parametrize(("target", "message"), [
    ("nope", "'nope' is not a column of the table"),
    ("x", "'x' is a numerical column; a declared target must be categorical or boolean"),
])
def test_a_bad_target_is_refused_before_any_message_reaches_a_party(target, message):
    seen: list[str] = []
    synthesizer = FederatedSynthesizer(FedtabConfig(rounds=1, target=target), engine="local")
    with pytest.raises(ConfigError, match=message):
        synthesizer.fit({"a": toy(100, 0), "b": toy(100, 1)}, tap=lambda party, kind, payload: seen.append(kind))
    assert seen == []


def test_the_server_refuses_it_before_asking_for_statistics(tmp_path):
    """The Flower apps enter at run_federation: the same check runs there, before the encoder rounds."""
    tables = [load_party(name, toy(100, seed)) for seed, name in enumerate(("a", "b"))]
    schema = reconcile(tables)
    seen: list[str] = []
    transport = LocalTransport(stage_parties([align(t, schema) for t in tables], tmp_path),
                               tap=lambda party, kind, payload: seen.append(kind))
    with pytest.raises(ConfigError, match="'x' is a numerical column"):
        run_federation(transport, config=FedtabConfig(rounds=1, target="x"), schema=schema)
    assert set(seen) == {keys.HELLO}


def test_two_parties_keep_a_strong_feature_target_relation():
    """Train on synthetic, test on real: well above chance (a logistic fit on the real rows scores ~0.97)."""
    parties = {"a": toy(1200, 0), "b": toy(1200, 1)}
    config = FedtabConfig(model="ctgan", rounds=8, local_epochs=2.0, batch_size=100, seed=0, target="y",
                          model_options={"embedding_dim": 32, "generator_dims": [64, 64], "discriminator_dims": [64, 64]})
    synthetic = FederatedSynthesizer(config, engine="local").fit(parties).sample(3000)
    test = toy(2000, 2)
    model = LogisticRegression().fit(synthetic[["x", "z"]], synthetic["y"] == "high")
    auc = roc_auc_score(test["y"] == "high", model.predict_proba(test[["x", "z"]])[:, 1])
    assert auc > 0.8, auc


def test_local_steps_give_every_party_the_same_steps_whatever_its_rows(small_config):
    steps: dict[str, float] = {}

    def tap(party: str, kind: str, payload) -> None:  # noqa: ANN001
        if kind == keys.TRAIN:
            steps[party] = payload.metrics["steps"]

    config = small_config.replace(rounds=1, local_steps=3, batch_size=100)
    FederatedSynthesizer(config, engine="local").fit({"small": toy(150, 0), "large": toy(900, 1)}, tap=tap)
    assert steps == {"small": 3.0, "large": 3.0}
    with pytest.raises(ConfigError, match="'local_steps' \\(3\\) cannot be used with epsilon"):
        small_config.replace(local_steps=3, epsilon=1.0)


def test_by_default_every_party_takes_a_central_epochs_steps_whatever_its_rows(small_config):
    """Each party's batch is its share of the run's batch, so 150 and 900 rows both take ~1,050 / 100 steps an epoch.

    Control: with one party the batch is the run's own (10.5 steps); at the full batch the small
    party would take 2 steps and the large one 9.
    """
    steps: dict[str, float] = {}

    def tap(party: str, kind: str, payload) -> None:  # noqa: ANN001
        if kind == keys.TRAIN:
            steps[party] = payload.metrics["steps"]

    config = small_config.replace(rounds=1, batch_size=100, model="tvae", model_options={"batch_scale": 1})
    FederatedSynthesizer(config, engine="local").fit({"small": toy(150, 0), "large": toy(900, 1)}, tap=tap)
    assert steps == {"small": 11.0, "large": 10.0}  # batches 14 and 86
    steps.clear()
    FederatedSynthesizer(config, engine="local").fit({"all": toy(1050, 0)}, tap=tap)
    assert steps == {"all": 10.0}
