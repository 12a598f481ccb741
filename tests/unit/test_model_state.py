"""ModelState files: version 2 keeps what a resume needs, older files still load, writes are atomic."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from fedtab.config import FedtabConfig
from fedtab.connectors import load_party
from fedtab.errors import ConfigError
from fedtab.federation.checkpoint import load_checkpoint
from fedtab.federation.privacy_run import PrivacyRun
from fedtab.model_state import FORMAT, FORMAT_VERSION, ModelState
from fedtab.models.registry import create_model
from fedtab.privacy.planning import PrivacyBudget, plan_noise
from fedtab.transformers import fit_plan


@pytest.fixture(scope="module")
def plan():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"kind": rng.choice(["a", "b"], size=120), "amount": rng.normal(0, 1, 120)})
    return fit_plan([load_party("p", frame)], seed=0)


@pytest.fixture(scope="module")
def privacy() -> PrivacyRun:
    budget = PrivacyBudget(epsilon=4.0, delta=1e-4)
    plans = {name: plan_noise(budget=budget, party_rows=rows, batch_size=20, epochs=2.0, encoder_releases=2,
                              accountant="rdp", party=name) for name, rows in (("a", 200), ("b", 100))}
    run = PrivacyRun(budget, plans)
    for name, party_plan in plans.items():
        accountant = party_plan.new_accountant()
        accountant.record_gaussian(noise_multiplier=party_plan.encoder_noise_multiplier, mechanism="encoder", releases=2)
        accountant.record_sgd(noise_multiplier=party_plan.noise_multiplier, sample_rate=party_plan.sample_rate, steps=7)
        run.accountants[name] = accountant
    return run


def weights() -> dict[str, np.ndarray]:
    return {"layer.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "steps": np.array([4], dtype=np.int64)}


def checkpoint(plan, privacy: PrivacyRun) -> ModelState:
    config = FedtabConfig(rounds=4, epsilon=4.0, delta=1e-4, model_options={"embedding_dim": 64}, checkpoint="run.ckpt")
    return ModelState(plan=plan, weights=weights(), config=config, parties={"a": 200, "b": 100},
                      history=[{"round": 1.0, "parties": 2.0}], timings={"plan_rounds": 2.0},
                      ledger=privacy.ledger().to_dict(), rounds_done=1, party_weights={"a": 2 / 3, "b": 1 / 3},
                      privacy=privacy.to_dict(), resumed_at=(1,))


def test_version_2_round_trips_what_a_resume_needs(plan, privacy, tmp_path):
    state = checkpoint(plan, privacy)
    loaded = ModelState.load(state.save(tmp_path / "run.ckpt"))
    assert (loaded.rounds_done, loaded.party_weights, loaded.resumed_at) == (1, {"a": 2 / 3, "b": 1 / 3}, (1,))
    assert loaded.config == state.config and loaded.config.checkpoint == "run.ckpt"
    assert loaded.privacy == state.privacy and loaded.ledger == state.ledger and not loaded.finished
    for key, value in state.weights.items():
        np.testing.assert_array_equal(loaded.weights[key], value)
        assert loaded.weights[key].dtype == value.dtype
    restored = PrivacyRun.from_dict(loaded.privacy)
    assert restored.plans == privacy.plans and restored.budget == privacy.budget
    for name, accountant in privacy.accountants.items():
        assert restored.accountants[name].history == accountant.history
        assert restored.accountants[name].epsilon(1e-4) == accountant.epsilon(1e-4)


def test_a_version_1_file_loads_as_a_finished_run_that_cannot_be_resumed(plan, tmp_path):
    config = FedtabConfig(rounds=3)
    path = tmp_path / "v1.fedtab"
    torch.save({"format": FORMAT, "version": 1, "plan": plan.to_dict(),
                "weights": {k: torch.from_numpy(v) for k, v in weights().items()},
                "config": {k: v for k, v in config.to_dict().items() if k != "checkpoint"}, "parties": {"a": 200},
                "history": [], "warnings": [], "timings": {}, "ledger": None}, path)
    state = ModelState.load(path)
    assert (state.rounds_done, state.party_weights, state.privacy, state.resumed_at) == (3, None, None, ())
    assert state.finished and state.config == config
    with pytest.raises(ConfigError, match="holds a model but no resume state .* written with --checkpoint"):
        load_checkpoint(path)


def test_a_version_2_file_drops_the_private_option_the_server_used_to_inject(plan, privacy, tmp_path):
    path = checkpoint(plan, privacy).save(tmp_path / "run.ckpt")
    blob = torch.load(path, weights_only=True)
    blob["config"]["model_options"] = {"embedding_dim": 64, "private": True}
    torch.save({**blob, "version": 2}, tmp_path / "v2.ckpt")
    assert ModelState.load(tmp_path / "v2.ckpt").config.model_options == {"embedding_dim": 64}
    torch.save({**blob, "version": FORMAT_VERSION}, tmp_path / "current.ckpt")
    current = ModelState.load(tmp_path / "current.ckpt")  # control: only older files are migrated
    with pytest.raises(ConfigError, match="private"):
        create_model("ctgan", current.plan, current.config.model_options)


def test_a_newer_or_damaged_file_is_refused(plan, privacy, tmp_path):
    path = checkpoint(plan, privacy).save(tmp_path / "run.ckpt")
    blob = torch.load(path, weights_only=True)
    torch.save({**blob, "version": FORMAT_VERSION + 1}, tmp_path / "newer.ckpt")
    with pytest.raises(ConfigError, match="newer fedtab .*upgrade"):
        ModelState.load(tmp_path / "newer.ckpt")
    torch.save({k: v for k, v in blob.items() if k != "plan"}, tmp_path / "damaged.ckpt")
    with pytest.raises(ConfigError, match="damaged fedtab model file"):
        ModelState.load(tmp_path / "damaged.ckpt")


def test_a_write_that_dies_halfway_keeps_the_previous_file(plan, privacy, tmp_path, monkeypatch):
    state = checkpoint(plan, privacy)
    path = state.save(tmp_path / "run.ckpt")
    before = path.read_bytes()

    def dies_halfway(obj, stream) -> None:
        stream.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(OSError, match="disk full"):
        dataclasses.replace(state, rounds_done=2).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.ckpt"]
    assert ModelState.load(path).rounds_done == 1
