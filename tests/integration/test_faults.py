"""A party that crashes mid-run does not sink it: the round goes on with the parties left (its round still
charged), the party rejoins at the next round, and below the minimum the run stops with a checkpoint it
resumes from. The fault is real: the party's privacy record cannot be written (its file turned into a
folder after round 1), so its handler raises OSError after training, before its reply leaves."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fedtab.connectors import align, load_party, reconcile
from fedtab.errors import FederationError, PrivacyBudgetError
from fedtab.federation.checkpoint import load_checkpoint
from fedtab.federation.coordinator import run_federation
from fedtab.federation.local import LocalTransport
from fedtab.federation.party import PartyWorker
from fedtab.synthesizer import stage_parties

FAILING = "clinic_west"
ROWS = 240
TINY_MODEL = {"embedding_dim": 8, "generator_dims": [16], "discriminator_dims": [16]}


@pytest.fixture(scope="module")
def federation(demo_frames, tmp_path_factory):
    """The demo parties cut to ``ROWS`` rows each, staged once, and their schema."""
    tables = [load_party(n, f.iloc[:ROWS]) for n, f in demo_frames.items()]
    schema = reconcile(tables)
    return stage_parties([align(t, schema) for t in tables], tmp_path_factory.mktemp("staged")), schema


@pytest.fixture(scope="module")
def dp_config(small_config):
    return small_config.replace(rounds=3, local_epochs=0.5, batch_size=60, epsilon=4.0, model_options=TINY_MODEL,
                                bgm_max_rounds=2)


def with_state(staged, folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    return [dataclasses.replace(p, state_dir=str(folder)) for p in staged]


class Obstruction:
    """Puts a folder where one party's privacy record lies after round ``start`` (its next write fails with
    IsADirectoryError: a crash, not a refusal) and puts the record back after round ``end`` (or ``clear``)."""

    def __init__(self, folder: Path, party: str, start: int, end: int | None = None) -> None:
        self.folder, self.party, self.start, self.end = folder, party, start, end
        self.record: Path | None = None

    def __call__(self, stage: str, done: int, total: int, record) -> None:
        if stage == "training" and done == self.start:
            (self.record,) = self.folder.glob(f"fedtab-*.party-{self.party}.json")
            self.record.rename(self.record.with_suffix(".aside"))
            self.record.mkdir()
        if stage == "training" and done == self.end:
            self.clear()

    def clear(self) -> None:
        assert self.record is not None and self.record.is_dir()
        self.record.rmdir()
        self.record.with_suffix(".aside").rename(self.record)


def test_crashing_party_is_left_out_charged_and_rejoins(federation, dp_config, tmp_path):
    staged, schema = federation
    folder = tmp_path / "records"
    fit = run_federation(LocalTransport(with_state(staged, folder)), config=dp_config, schema=schema,
                         progress=Obstruction(folder, FAILING, start=1, end=2))
    assert [r["parties"] for r in fit.history] == [3.0, 2.0, 3.0]  # round 3: it rejoined with the global weights
    assert fit.history[1][f"failed.{FAILING}"] == 1.0
    assert any("Round 2" in w and FAILING in w and "IsADirectoryError" in w for w in fit.warnings), fit.warnings
    ledger = fit.ledger
    assert ledger["missing"] == {FAILING: [2]}
    steps = {p["party"]: {m["mechanism"]: m["steps"] for m in p["mechanisms"]} for p in ledger["parties"]}
    assert steps[FAILING]["training"] == steps["clinic_north"]["training"] > 0  # equal tables: charged every round


def test_below_minimum_stops_with_a_checkpoint_that_resumes(federation, dp_config, tmp_path):
    staged, schema = federation
    folder, checkpoint = tmp_path / "records", tmp_path / "run.ckpt"
    config = dp_config.replace(min_parties=3, checkpoint=str(checkpoint))  # the old contract: every party, every round
    obstruction = Obstruction(folder, FAILING, start=1)
    with pytest.raises(FederationError, match=rf"Training round 2 stopped the run.*'{FAILING}'.*IsADirectoryError") as stop:
        run_federation(LocalTransport(with_state(staged, folder)), config=config, schema=schema, progress=obstruction)
    assert stop.value.exit_code != 0 and str(checkpoint) in str(stop.value)
    saved = load_checkpoint(checkpoint)
    assert saved.rounds_done == 2  # the failed round's releases were charged, so it counts as spent

    obstruction.clear()  # the party's operator fixes its disk
    resumed = run_federation(LocalTransport(with_state(staged, folder)), config=config, schema=schema, resume=saved)
    assert resumed.rounds_done == 3 and resumed.resumed_at == (2,)
    assert resumed.ledger["missing"] == {FAILING: [2]}
    assert all(p["epsilon"] <= config.epsilon for p in resumed.ledger["parties"])


def test_a_refusal_still_stops_the_run(federation, small_config, monkeypatch):
    """A FedtabError from a party is its decision, not a fault: the run stops with the party's words."""
    staged, schema = federation
    original = PartyWorker._train

    def refusing(self, payload, state):
        if self.party.name == FAILING:
            raise PrivacyBudgetError("the board has withdrawn consent for this study")
        return original(self, payload, state)

    monkeypatch.setattr(PartyWorker, "_train", refusing)
    config = small_config.replace(rounds=1, model_options=TINY_MODEL, bgm_max_rounds=2)
    with pytest.raises(PrivacyBudgetError, match=f"Party '{FAILING}'.*withdrawn consent"):
        run_federation(LocalTransport(staged), config=config, schema=schema)


@pytest.mark.slow
def test_simulation_engine_goes_on_without_a_crashed_party(federation, dp_config, tmp_path):
    """The same fault in Flower's simulation engine: the crash comes back as an error reply, the run goes on."""
    from fedtab.federation.simulation import run_simulation

    staged, schema = federation
    folder = tmp_path / "records"
    fit = run_simulation(with_state(staged, folder), config=dp_config, schema=schema,
                         progress=Obstruction(folder, FAILING, start=1, end=2))
    assert [r["parties"] for r in fit.history] == [3.0, 2.0, 3.0]
    assert any("Round 2" in w and FAILING in w and "IsADirectoryError" in w for w in fit.warnings), fit.warnings
    assert fit.ledger["missing"] == {FAILING: [2]}
    assert fit.history[-1]["bytes_received"] > 0
