"""Every model plugin passes the same checks: registry, options, determinism, shapes, tiny parties,
FedAvg identity, save/load, unfitted use, a DP run with every message inspected, and the model
checked before any statistic leaves a party."""

from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
from torch import nn

from fedtab import FederatedSynthesizer, FedtabConfig
from fedtab.connectors import load_party
from fedtab.errors import ConfigError, NotFittedError
from fedtab.federation import keys
from fedtab.federation.round_record import reported_metrics
from fedtab.models import registry
from fedtab.models.registry import create_model, known_models
from fedtab.models.tvae import FederatedTVAE
from fedtab.transformers import fit_plan

SMALL = {
    "ctgan": {"embedding_dim": 16, "generator_dims": [32], "discriminator_dims": [32]},
    "tvae": {"embedding_dim": 8, "compress_dims": [32], "decompress_dims": [32]},
    "argn": {"embedding_dim": 4, "hidden_dims": [16], "bins": 8},
    "fedtabdiff": {"hidden_dims": [16, 16], "embedding_dim": 8, "sampling_steps": 4},
}


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "kind": rng.choice(["a", "b", "c"], size=rows),
        "flag": rng.choice([True, False], size=rows),
        "amount": np.concatenate([rng.normal(0, 1, rows // 2), rng.normal(8, 1, rows - rows // 2)]),
    })


@pytest.fixture(scope="module")
def plan_and_data():
    table = load_party("p", _frame(300, 0))
    plan = fit_plan([table], seed=0)
    return plan, plan.encode(table.frame, np.random.default_rng(0))


@pytest.fixture(params=known_models())
def model_name(request):
    return request.param


def _run(name: str, parties: dict, **settings):  # type: ignore[no-untyped-def]
    """A local federated run; returns the fitted synthesizer (or the error) and every reply, by (party, type)."""
    sent = defaultdict(list)
    config = FedtabConfig(model=name, rounds=1, local_epochs=1.0, batch_size=100, seed=1, bgm_max_rounds=3,
                          model_options=SMALL.get(name, {}), **settings)
    synth = FederatedSynthesizer(config, engine="local")
    try:
        synth.fit(parties, tap=lambda party, kind, payload: sent[(party, kind)].append(payload))
    except ConfigError as error:
        return error, sent
    return synth, sent


def _sent_types(sent) -> set[str]:  # type: ignore[no-untyped-def]
    return {kind for (_, kind) in sent}


def test_every_model_in_the_card_is_registered():
    assert {"ctgan", "tvae"} <= set(known_models()) and set(SMALL) == set(known_models())


def test_unknown_model_lists_the_known_ones(plan_and_data):
    with pytest.raises(ConfigError, match="known models are \\['argn', 'ctgan', 'fedtabdiff', 'tvae'"):
        create_model("gpt", plan_and_data[0])


def test_unknown_option_is_refused(model_name, plan_and_data):
    with pytest.raises(ConfigError, match="has no options \\['layers'\\]"):
        create_model(model_name, plan_and_data[0], {"layers": 3})


def test_an_option_of_the_wrong_kind_is_refused_with_every_problem(model_name, plan_and_data):
    with pytest.raises(ConfigError, match=r"(?s)'embedding_dim' must be an int >= 1; got -3.*must be a non-empty list"):
        create_model(model_name, plan_and_data[0], {"embedding_dim": -3, _a_list_option(model_name): "wide"})


def _a_list_option(name: str) -> str:
    return next(k for k, v in registry.get_model_class(name).default_options().items() if isinstance(v, list))


def test_saved_options_are_the_users_over_the_defaults(model_name):
    resolved = registry.resolved_options(model_name, {"embedding_dim": 8})
    assert resolved == {**registry.get_model_class(model_name).default_options(), "embedding_dim": 8}


def test_init_is_seeded(model_name, plan_and_data):
    plan = plan_and_data[0]
    a = create_model(model_name, plan, SMALL[model_name], seed=1).init_weights()
    b = create_model(model_name, plan, SMALL[model_name], seed=1).init_weights()
    c = create_model(model_name, plan, SMALL[model_name], seed=2).init_weights()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a if a[k].dtype.kind == "f")


def test_local_update_keeps_the_shape_of_the_weights(model_name, plan_and_data):
    plan, data = plan_and_data
    model = create_model(model_name, plan, SMALL[model_name], seed=0)
    weights = model.init_weights()
    update = model.local_update(weights, data, epochs=1.0, batch_size=100, round_index=0, party="p")
    assert {k: v.shape for k, v in update.weights.items()} == {k: v.shape for k, v in weights.items()}
    assert update.num_examples == len(data) and update.accountant_state is None
    assert update.metrics and all(np.isfinite(v) for v in update.metrics.values())
    assert any(not np.array_equal(update.weights[k], weights[k]) for k in weights)
    again = model.local_update(update.weights, data, epochs=1.0, batch_size=100, round_index=1, party="p",
                               optimizer_state=update.optimizer_state)
    assert set(again.optimizer_state) == set(update.optimizer_state)


def test_a_party_smaller_than_a_batch_trains(model_name, plan_and_data):
    plan, data = plan_and_data
    model = create_model(model_name, plan, SMALL[model_name], seed=0)
    update = model.local_update(model.init_weights(), data[:13], epochs=2.0, batch_size=500, round_index=0, party="tiny")
    assert update.num_examples == 13 and update.metrics and all(np.isfinite(v) for v in update.metrics.values())


def test_sampling_is_seeded_and_sized(model_name, plan_and_data):
    plan, _ = plan_and_data
    model = create_model(model_name, plan, SMALL[model_name], seed=0)
    weights = model.init_weights()
    a = model.sample(weights, 7, seed=5)
    assert a.shape == (7, plan.output_dim)
    np.testing.assert_array_equal(a, model.sample(weights, 7, seed=5))
    assert not np.array_equal(a, model.sample(weights, 7, seed=6))


def test_unfitted_use_raises(model_name):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        FederatedSynthesizer(FedtabConfig(model=model_name), engine="local").sample(5)


@pytest.fixture(scope="module")
def solo_runs():
    return {name: _run(name, {"solo": _frame(300, 1)}) for name in known_models()}


def test_one_partys_fedavg_is_its_own_update(model_name, solo_runs):
    synth, sent = solo_runs[model_name]
    [reply] = sent[("solo", keys.TRAIN)]
    assert set(reply.arrays) == set(synth.state_.weights)
    for key, value in reply.arrays.items():
        np.testing.assert_array_equal(synth.state_.weights[key], value, err_msg=key)
    history = synth.state_.history[-1]
    assert {k: v for k, v in reply.metrics.items() if k != keys.NUM_EXAMPLES} == \
        reported_metrics(history)  # what the plugin reports, by its names


def test_save_load_gives_the_same_rows(model_name, solo_runs, tmp_path):
    synth, _ = solo_runs[model_name]
    assert synth.state_.config.model_options == registry.resolved_options(model_name, SMALL[model_name])
    loaded = FederatedSynthesizer.load(synth.save(tmp_path / "m.fedtab"))
    assert loaded.sample(60, seed=4).equals(synth.sample(60, seed=4))
    assert not loaded.sample(60, seed=5).equals(synth.sample(60, seed=4))


def test_a_dp_run_sends_only_noised_statistics_weights_and_the_accountant(model_name, demo_frames, tmp_path):
    synth, sent = _run(model_name, demo_frames, epsilon=10.0)
    assert not isinstance(synth, Exception), synth
    weights = set(synth.state_.weights)
    kinds = (keys.HELLO, keys.SCHEMA_ROUND, keys.CONSENT, keys.STATS, keys.TRAIN)
    assert set(sent) == {(p, t) for p in demo_frames for t in kinds}
    for (party, kind), replies in sent.items():
        for reply in replies:
            if kind == keys.CONSENT:  # the party accepts the plan: its name, nothing read from rows
                assert not reply.arrays and not reply.metrics and set(reply.config) == {keys.PARTY}
            elif kind == keys.TRAIN:
                assert set(reply.arrays) == weights
                assert set(reply.metrics) == {keys.NUM_EXAMPLES}, reply.metrics  # no loss on real rows
                assert set(reply.config) == {keys.DP_REPORT}
            elif kind == keys.STATS:
                assert set(reply.config) == {keys.DP_REPORT}
            elif kind == keys.CONSENT:
                assert set(reply.config) == {keys.PARTY} and not reply.arrays
    assert synth.state_.ledger is not None and synth.state_.config.private
    loaded = FederatedSynthesizer.load(synth.save(tmp_path / "dp.fedtab"))
    assert loaded.sample(30, seed=1).equals(synth.sample(30, seed=1))


@pytest.mark.parametrize("settings, words", [
    ({"model": "gpt"}, r"Unknown model 'gpt'; known models are \['argn', 'ctgan', 'fedtabdiff', 'tvae'\]"),
    ({"model_options": {"layers": 3}}, r"has no options \['layers'\]"),
    ({"model_options": {"embedding_dim": 0}}, r"'embedding_dim' must be an int >= 1; got 0"),
])
def test_a_bad_model_is_refused_before_any_statistic(model_name, settings, words):
    frame = _frame(60, 2)
    name = settings.get("model", model_name)
    options = settings.get("model_options", SMALL[model_name])
    sent = defaultdict(list)
    config = FedtabConfig(model=name, rounds=1, model_options=options)
    with pytest.raises(ConfigError, match=words):
        FederatedSynthesizer(config, engine="local").fit({"a": frame, "b": frame},
                                                          tap=lambda p, t, payload: sent[(p, t)].append(payload))
    # the parties answered hello and the schema round (names and kinds, which the check needs), nothing else
    assert sent and _sent_types(sent) == {keys.HELLO, keys.SCHEMA_ROUND}


class BatchNormTVAE(FederatedTVAE):
    """A TVAE whose encoder normalises over the batch: one row reaches every other row's gradient."""

    def build_modules(self):  # type: ignore[no-untyped-def]
        modules = super().build_modules()
        encoder = modules["encoder"]
        encoder.seq = nn.Sequential(nn.BatchNorm1d(self.data_dim), *encoder.seq)
        return modules


@pytest.fixture
def batch_norm_plugin():
    registry.register("tvae-batchnorm")(BatchNormTVAE)
    yield "tvae-batchnorm"
    del registry._REGISTRY["tvae-batchnorm"]


def test_a_module_opacus_cannot_train_is_refused_before_any_statistic(batch_norm_plugin):
    frame = _frame(60, 3)
    error, sent = _run(batch_norm_plugin, {"a": frame, "b": frame}, epsilon=5.0)
    assert isinstance(error, ConfigError)
    assert "cannot be trained with DP-SGD" in str(error) and "BatchNorm1d" in str(error)
    assert _sent_types(sent) == {keys.HELLO, keys.SCHEMA_ROUND}
    # Control: the same plugin without DP passes the check and trains: the refusal is Opacus's validator.
    synth, sent = _run(batch_norm_plugin, {"a": frame, "b": frame})
    assert not isinstance(synth, Exception), synth
    assert {keys.STATS, keys.TRAIN} <= _sent_types(sent)
