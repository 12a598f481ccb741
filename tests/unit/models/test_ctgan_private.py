"""CTGAN's private local update: DP-SGD on the pair discriminator only, every step charged to one accountant."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from fedtab.connectors import load_party
from fedtab.errors import ConfigError
from fedtab.models import ctgan_private
from fedtab.models.ctgan import FederatedCTGAN
from fedtab.models.trainer import FrozenView, kept_weights
from fedtab.models.privacy import TrainingPrivacy, round_steps
from fedtab.models.registry import create_model
from fedtab.privacy.accountant import PartyAccountant
from fedtab.transformers import fit_plan

SMALL = {"embedding_dim": 16, "generator_dims": [32], "discriminator_dims": [32]}
DELTA = 1e-5
ROWS = 300
SIGMA, RATE = 1.1, 30 / ROWS  # expected batch 30 of 300 rows: 10 steps per epoch


@pytest.fixture(scope="module")
def plan_and_data():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "kind": rng.choice(["a", "b", "c"], size=ROWS),
        "flag": rng.choice([True, False], size=ROWS),
        "amount": np.concatenate([rng.normal(0, 1, ROWS // 2), rng.normal(8, 1, ROWS // 2)]),
    })
    table = load_party("p", frame)
    plan = fit_plan([table], seed=0)
    data = plan.encode(table.frame, np.random.default_rng(0))
    assert data.dtype == np.float32 and data.flags.c_contiguous  # the poisoning test relies on a zero-copy view
    return plan, data


def _update(model, weights, data, *, round_index=0, state=None, epochs=1.0, **privacy):
    """The party's update with the discriminator it trained (kept on the party under ``local_discriminator``)."""
    settings = TrainingPrivacy(**{"noise_multiplier": SIGMA, "sample_rate": RATE, "accountant_state": state, **privacy})
    update = model.local_update(weights, data, epochs=epochs, batch_size=100, round_index=round_index, party="p",
                                privacy=settings)
    own = kept_weights(update.optimizer_state, model.local_modules())
    return dataclasses.replace(update, weights={**update.weights, **own})


def _private(plan, *, seed: int) -> FederatedCTGAN:
    return create_model("ctgan", plan, SMALL, seed=seed, private=True)


def _steps(update) -> int:
    return PartyAccountant.from_state_dict(update.accountant_state).steps("training")


def _epsilon(state: dict) -> float:
    return PartyAccountant.from_state_dict(state).epsilon(DELTA)


def test_private_weights_have_the_pair_discriminator_shapes(plan_and_data):
    plan, data = plan_and_data
    private = _private(plan, seed=0).init_weights()
    plain = create_model("ctgan", plan, SMALL, seed=0).init_weights()
    cond_dim = sum(s.dim for s in plan.discrete_spans)
    assert private["discriminator.seq.0.weight"].shape == (32, 2 * plan.output_dim + cond_dim)
    assert plain["discriminator.seq.0.weight"].shape == (32, (plan.output_dim + cond_dim) * 10)
    for key in (k for k in plain if k.startswith("generator.")):  # the generator is the same network, same init
        np.testing.assert_array_equal(private[key], plain[key], err_msg=key)

    model = _private(plan, seed=0)
    update = _update(model, private, data)
    assert {k: v.shape for k, v in update.weights.items()} == {k: v.shape for k, v in private.items()}
    assert all(np.isfinite(v).all() for v in update.weights.values())
    assert update.metrics == {}  # nothing computed on real rows leaves without noise: not even a loss
    assert any(not np.array_equal(update.weights[k], private[k]) for k in private if k.startswith("discriminator."))
    assert any(not np.array_equal(update.weights[k], private[k]) for k in private if k.startswith("generator."))


def test_accountant_is_charged_every_step_and_matches_a_fresh_one(plan_and_data):
    plan, data = plan_and_data
    model = _private(plan, seed=0)
    update = _update(model, model.init_weights(), data, epochs=2.0)
    assert _steps(update) == 20 == round(2.0 / RATE)
    history = update.accountant_state["history"]
    assert [(r["mechanism"], r["noise_multiplier"], r["sample_rate"], r["steps"]) for r in history] == \
        [("training", SIGMA, RATE, 20)]
    reference = PartyAccountant("p")
    reference.record_sgd(noise_multiplier=SIGMA, sample_rate=RATE, steps=20)
    # Same history through the same Opacus accountant: equal up to float summation, so 1e-9 relative.
    assert _epsilon(update.accountant_state) == pytest.approx(reference.epsilon(DELTA), rel=1e-9)


def test_two_rounds_with_the_state_carried_compose_with_earlier_releases(plan_and_data):
    plan, data = plan_and_data
    model = _private(plan, seed=0)
    encoders = PartyAccountant("p")
    encoders.record_gaussian(noise_multiplier=40.0, mechanism="encoder", releases=3)
    first = _update(model, model.init_weights(), data, state=encoders.state_dict(), steps=7)
    second = _update(model, first.weights, data, round_index=1, state=first.accountant_state, steps=6)

    reference = PartyAccountant("p")
    reference.record_gaussian(noise_multiplier=40.0, mechanism="encoder", releases=3)
    reference.record_sgd(noise_multiplier=SIGMA, sample_rate=RATE, steps=13)
    after_two = PartyAccountant.from_state_dict(second.accountant_state)
    assert after_two.steps("training") == 13 and after_two.steps("encoder") == 3
    assert after_two.epsilon(DELTA) == pytest.approx(reference.epsilon(DELTA), rel=1e-9)
    assert after_two.epsilon(DELTA) > _epsilon(first.accountant_state) > encoders.epsilon(DELTA)


def test_round_steps_spend_exactly_the_planned_total():
    assert [round_steps(131, 10, r) for r in range(10)] == [14] + [13] * 9
    assert sum(round_steps(136, 10, r) for r in range(10)) == 136  # round(13.6) per round would spend 140
    with pytest.raises(ConfigError, match="total_steps >= rounds"):
        round_steps(3, 10, 0)


def test_generator_steps_never_read_real_rows(plan_and_data, monkeypatch):
    """Real rows are restored when the trainer draws a batch and replaced by garbage once the private
    loss is computed: the generator steps (which run in between) see only garbage, yet every weight
    comes out the same."""
    from fedtab.privacy.dpsgd import PrivateTrainer

    plan, data = plan_and_data
    model = _private(plan, seed=0)
    weights = model.init_weights()
    clean = _update(model, weights, data.copy(), epochs=2.0)
    garbage = np.random.default_rng(9).uniform(-5, 5, data.shape).astype(np.float32)
    rows = data.copy()  # the trainer reads these through a zero-copy tensor
    draw, loss = PrivateTrainer.sample_rows, FederatedCTGAN.private_loss
    restore = {"on": True}

    def draw_clean(trainer):  # type: ignore[no-untyped-def]
        if restore["on"]:
            rows[:] = data
        return draw(trainer)

    def poison_after(*args):  # type: ignore[no-untyped-def]
        out = loss(*args)
        rows[:] = garbage
        return out

    monkeypatch.setattr(PrivateTrainer, "sample_rows", draw_clean)
    monkeypatch.setattr(FederatedCTGAN, "private_loss", poison_after)
    poisoned = _update(model, weights, rows, epochs=2.0)
    for key in clean.weights:
        np.testing.assert_array_equal(poisoned.weights[key], clean.weights[key], err_msg=key)

    # Control: the poison is visible to whatever reads the rows (here the next private step).
    rows[:], restore["on"] = data, False
    leaked = _update(model, weights, rows, epochs=2.0)
    assert not np.array_equal(leaked.weights["discriminator.seq.0.weight"], clean.weights["discriminator.seq.0.weight"])


def test_a_discriminator_step_leaves_the_generator_untouched(plan_and_data):
    """Fakes paired with real rows come from the generator in eval mode: no batch-norm statistics
    mix rows' conditions into each other's samples or into the generator's (travelling) buffers.
    The generator step scores through the frozen view: the discriminator's weights do not move."""
    plan, data = plan_and_data
    model = _private(plan, seed=0)
    modules = model.load_modules(model.init_weights())
    optimizers = model.make_optimizers(modules)
    generator, discriminator = modules["generator"], modules["discriminator"]
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    loss = ctgan_private.pair_loss(model, modules, torch.from_numpy(data[:40]), np.random.default_rng(0))
    assert loss.shape == (40,)
    loss.sum().backward()
    assert generator.training
    assert all(torch.equal(before[k], v) for k, v in generator.state_dict().items())
    assert all(p.grad is None for p in generator.parameters())
    critic = {k: v.clone() for k, v in discriminator.state_dict().items()}
    discriminator.zero_grad(set_to_none=True)
    view = {**modules, "discriminator": FrozenView(discriminator)}
    ctgan_private.generator_step(model, view, optimizers["generator"], pairs=20, rng=np.random.default_rng(1))
    assert not all(torch.equal(before[k], v) for k, v in generator.state_dict().items())
    assert all(torch.equal(critic[k], v) for k, v in discriminator.state_dict().items())
    assert all(p.grad is None for p in discriminator.parameters())


def test_row_conditions_come_from_the_row_itself(plan_and_data):
    plan, data = plan_and_data
    sampler = _private(plan, seed=0).conditions
    cond, mask = sampler.conditions_of(data, np.random.default_rng(3))
    assert set(np.unique(mask.argmax(axis=1))) == set(range(sampler.num_columns))
    for j in range(sampler.num_columns):
        chosen = mask[:, j] == 1
        start, dim, offset = sampler.data_starts[j], sampler.dims[j], sampler.cond_offsets[j]
        np.testing.assert_array_equal(cond[chosen, offset : offset + dim].argmax(axis=1),
                                      data[chosen, start : start + dim].argmax(axis=1))
    np.testing.assert_array_equal(cond.sum(axis=1), 1.0)


def test_same_seed_same_weights_and_seeded_samples(plan_and_data):
    plan, data = plan_and_data
    runs = [_private(plan, seed=s) for s in (4, 4, 5)]
    updates = [_update(m, m.init_weights(), data) for m in runs]
    for key in updates[0].weights:
        np.testing.assert_array_equal(updates[0].weights[key], updates[1].weights[key], err_msg=key)
    assert not np.array_equal(updates[0].weights["discriminator.seq.0.weight"],
                              updates[2].weights["discriminator.seq.0.weight"])
    model, weights = runs[0], updates[0].weights
    sample = model.sample(weights, 9, seed=2)
    assert sample.shape == (9, plan.output_dim)
    np.testing.assert_array_equal(sample, model.sample(weights, 9, seed=2))
    assert not np.array_equal(sample, model.sample(weights, 9, seed=3))


def test_a_tiny_party_with_empty_and_single_row_batches_trains(plan_and_data):
    plan, data = plan_and_data
    model = _private(plan, seed=0)
    update = model.local_update(model.init_weights(), data[:13], epochs=3.0, batch_size=500, round_index=0,
                                party="tiny", privacy=TrainingPrivacy(SIGMA, 1 / 13))
    assert _steps(update) == 39 and update.num_examples == 13
    assert all(np.isfinite(v).all() for v in update.weights.values())
    assert PartyAccountant.from_state_dict(update.accountant_state).steps() == 39


def test_private_and_plain_settings_must_agree(plan_and_data):
    plan, data = plan_and_data
    private = _private(plan, seed=0)
    plain = create_model("ctgan", plan, SMALL, seed=0)
    with pytest.raises(ConfigError, match=r"built with private=True, but the local update of party 'p' in round 0 got no"):
        private.local_update(private.init_weights(), data, epochs=1.0, batch_size=30, round_index=0, party="p")
    with pytest.raises(ConfigError, match=r"built with private=False.*private=config.private on every party"):
        _update(plain, plain.init_weights(), data)
    with pytest.raises(ConfigError, match=r"takes private=True or private=False; got 'yes'"):
        create_model("ctgan", plan, SMALL, private="yes")
    with pytest.raises(ConfigError, match=r"has no options \['private'\]"):  # a build argument, never an option
        create_model("ctgan", plan, {**SMALL, "private": True})


def test_bad_privacy_settings_are_refused_with_the_fix(plan_and_data):
    plan, data = plan_and_data
    model = _private(plan, seed=0)
    weights = model.init_weights()
    with pytest.raises(ConfigError, match=r"holds 300 rows, so its sample rate must be k / 300.*party_rows=300"):
        _update(model, weights, data, sample_rate=0.0123)
    other = PartyAccountant("q").state_dict()
    with pytest.raises(ConfigError, match="handed the privacy accountant of party 'q'"):
        _update(model, weights, data, state=other)
    with pytest.raises(ConfigError, match=r"(?s)'noise_multiplier' must be a finite number > 0.*'steps' must be"):
        TrainingPrivacy(noise_multiplier=0.0, sample_rate=0.1, steps=0)
