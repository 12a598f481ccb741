"""Checkpoint and resume: a run stopped after round k and resumed spends exactly what an uninterrupted run spends."""

from __future__ import annotations

import json
import sys
from collections import defaultdict

import numpy as np
import pytest

from fedtab import FederatedSynthesizer
from fedtab.connectors import align, load_party, reconcile
from fedtab.errors import ConfigError, PrivacyBudgetError
from fedtab.federation import keys
from fedtab.federation.coordinator import run_federation
from fedtab.federation.local import LocalTransport
from fedtab.model_state import ModelState
from fedtab.models.privacy import round_steps
from fedtab.privacy.accountant import PartyAccountant
from fedtab.privacy.ledger import PrivacyLedger
from fedtab.synthesizer import stage_parties

ROUNDS = 3
CRASH_AFTER = 1


class SimulatedCrash(RuntimeError):
    """Stands for the server dying between rounds."""


def crash_after(round_done: int):
    def progress(stage: str, done: int, total: int, record) -> None:
        if stage == "training" and done == round_done:
            raise SimulatedCrash(f"stopped after round {done}")

    return progress


def recording_tap(sent: dict):
    return lambda party, message_type, payload: sent[(party, message_type)].append(payload)


def spends(ledger: dict) -> dict[str, tuple[float, dict[str, tuple[float, int]]]]:
    """Per party: total ε, and per mechanism (ε, steps)."""
    return {p["party"]: (p["epsilon"], {m["mechanism"]: (m["epsilon"], m["steps"]) for m in p["mechanisms"]})
            for p in ledger["parties"]}


@pytest.fixture(scope="module")
def dp_config(small_config):
    return small_config.replace(rounds=ROUNDS, batch_size=100, epsilon=3.0)


@pytest.fixture(scope="module")
def fresh_dp(demo_frames, dp_config):
    return FederatedSynthesizer(dp_config, engine="local").fit(demo_frames)


def crashed_run(demo_frames, dp_config, folder):
    """A DP run with a checkpoint that dies right after round ``CRASH_AFTER``; its parties' records lie beside it."""
    path = folder / "run.ckpt"
    with pytest.raises(SimulatedCrash):
        FederatedSynthesizer(dp_config.replace(checkpoint=str(path)), engine="local").fit(
            demo_frames, progress=crash_after(CRASH_AFTER))
    return path


@pytest.fixture(scope="module")
def crashed_checkpoint(demo_frames, dp_config, tmp_path_factory):
    return crashed_run(demo_frames, dp_config, tmp_path_factory.mktemp("resume"))


@pytest.fixture(scope="module")
def second_crash(demo_frames, dp_config, tmp_path_factory):
    """Another crashed run, in its own folder, for the edited and moved checkpoints."""
    return crashed_run(demo_frames, dp_config, tmp_path_factory.mktemp("second"))


@pytest.fixture(scope="module")
def resumed_dp(demo_frames, dp_config, crashed_checkpoint):
    sent: dict = defaultdict(list)
    after = crashed_checkpoint.with_name("resumed.ckpt")
    synth = FederatedSynthesizer(dp_config.replace(checkpoint=str(after)), engine="local").fit(
        demo_frames, tap=recording_tap(sent), resume_from=crashed_checkpoint)
    return synth, sent, after


# ---------------------------------------------------------------- (a) DP: same ε as a fresh run


def test_the_checkpoint_holds_the_rounds_done_and_every_partys_accountant(crashed_checkpoint, dp_config):
    state = ModelState.load(crashed_checkpoint)
    assert state.rounds_done == CRASH_AFTER and len(state.history) == CRASH_AFTER
    assert set(state.privacy["accountants"]) == set(state.parties) == set(state.party_weights)
    for party, saved in state.privacy["accountants"].items():
        plan_steps = state.privacy["plans"][party]["steps"]
        trained = sum(round_steps(plan_steps, ROUNDS, r) for r in range(CRASH_AFTER))
        assert PartyAccountant.from_state_dict(saved).steps("training") == trained
    assert not list(crashed_checkpoint.parent.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_a_resumed_dp_run_spends_exactly_what_a_fresh_run_spends(fresh_dp, resumed_dp):
    synth, _, _ = resumed_dp
    fresh, resumed = spends(fresh_dp.state_.ledger), spends(synth.state_.ledger)
    assert set(fresh) == set(resumed) == {"clinic_north", "clinic_south", "clinic_west"}
    for party, (epsilon, mechanisms) in fresh.items():
        assert resumed[party][0] == pytest.approx(epsilon, abs=1e-9), party
        assert set(resumed[party][1]) == set(mechanisms) == {"encoder", "training"}
        for mechanism, (mechanism_epsilon, steps) in mechanisms.items():
            assert resumed[party][1][mechanism][1] == steps, (party, mechanism)
            assert resumed[party][1][mechanism][0] == pytest.approx(mechanism_epsilon, abs=1e-9), (party, mechanism)
    assert synth.state_.rounds_done == ROUNDS and len(synth.state_.history) == ROUNDS
    assert [r["round"] for r in synth.state_.history] == [float(r + 1) for r in range(ROUNDS)]


def test_resume_charges_the_encoders_once_and_never_refits_them(resumed_dp, crashed_checkpoint):
    synth, sent, _ = resumed_dp
    assert not [key for key in sent if key[1] == keys.STATS]  # no statistics round after the resume
    before = ModelState.load(crashed_checkpoint)
    assert synth.state_.plan.to_dict() == before.plan.to_dict()
    for party, saved in before.privacy["accountants"].items():
        encoder_steps = PartyAccountant.from_state_dict(saved).steps("encoder")
        assert synth.state_.ledger and PrivacyLedger.from_dict(synth.state_.ledger).party(party).mechanism("encoder").steps == encoder_steps


def test_each_party_continued_its_own_accountant(resumed_dp):
    synth, sent, _ = resumed_dp
    for spend in synth.state_.ledger["parties"]:
        replies = sent[(spend["party"], keys.TRAIN)]
        assert len(replies) == ROUNDS - CRASH_AFTER
        accountant = PartyAccountant.from_state_dict(json.loads(replies[-1].config[keys.DP_REPORT]))
        assert accountant.epsilon(spend["delta"]) == pytest.approx(spend["epsilon"], abs=1e-9)
        assert accountant.steps("encoder") > 0  # the party's own history starts at the encoders, not at the resume


def test_the_ledger_and_summary_say_where_the_run_was_resumed(resumed_dp, fresh_dp):
    synth, _, after = resumed_dp
    assert synth.state_.resumed_at == (CRASH_AFTER,)
    ledger = PrivacyLedger.from_dict(synth.state_.ledger)
    assert ledger.resumed_at == (CRASH_AFTER,)
    assert any(f"resumed from a checkpoint after round {CRASH_AFTER}" in line for line in ledger.summary_lines())
    assert PrivacyLedger.from_dict(fresh_dp.state_.ledger).resumed_at == ()
    assert ModelState.load(after).resumed_at == (CRASH_AFTER,)


def test_a_finished_checkpoint_resumes_to_the_same_model_without_a_federation(demo_frames, dp_config, resumed_dp):
    synth, _, after = resumed_dp
    sent: dict = defaultdict(list)
    again = FederatedSynthesizer(dp_config, engine="local").fit(demo_frames, tap=recording_tap(sent), resume_from=after)
    assert not sent
    assert again.state_.ledger == ModelState.load(after).ledger
    for key, value in synth.state_.weights.items():
        np.testing.assert_array_equal(again.state_.weights[key], value, err_msg=key)
    assert again.sample(50, seed=4).equals(synth.sample(50, seed=4))


# ---------------------------------------------------------------- (b) without DP: train longer


def test_a_run_without_dp_resumes_and_trains_longer(demo_frames, small_config, tmp_path):
    path = tmp_path / "plain.ckpt"
    first = FederatedSynthesizer(small_config.replace(checkpoint=str(path)), engine="local").fit(demo_frames)
    sent: dict = defaultdict(list)
    longer = FederatedSynthesizer(small_config.replace(rounds=small_config.rounds + 2), engine="local").fit(
        demo_frames, tap=recording_tap(sent), resume_from=path)
    state = longer.state_
    assert ModelState.load(path).rounds_done == small_config.rounds
    assert state.rounds_done == len(state.history) == small_config.rounds + 2
    assert state.history[: small_config.rounds] == first.state_.history
    assert [r["round"] for r in state.history[small_config.rounds:]] == [small_config.rounds + 1.0, small_config.rounds + 2.0]
    assert state.resumed_at == (small_config.rounds,) and state.ledger is None
    assert all(len(sent[(p, keys.TRAIN)]) == 2 for p in demo_frames) and not [k for k in sent if k[1] == keys.STATS]
    assert any(not np.array_equal(state.weights[k], first.state_.weights[k]) for k in state.weights)


def test_fewer_rounds_than_the_checkpoint_holds_is_refused(demo_frames, small_config, tmp_path):
    path = tmp_path / "plain.ckpt"
    FederatedSynthesizer(small_config.replace(checkpoint=str(path)), engine="local").fit(demo_frames)
    with pytest.raises(ConfigError, match="'rounds' is 1, but the checkpoint already holds 2 rounds; ask for at least 2"):
        FederatedSynthesizer(small_config.replace(rounds=1), engine="local").fit(demo_frames, resume_from=path)


# ---------------------------------------------------------------- (c) bad inputs


def test_a_missing_party_is_named(demo_frames, dp_config, crashed_checkpoint):
    parties = {k: v for k, v in demo_frames.items() if k != "clinic_west"}
    with pytest.raises(ConfigError, match="party 'clinic_west' took part in the checkpointed run .*add it back"):
        FederatedSynthesizer(dp_config, engine="local").fit(parties, resume_from=crashed_checkpoint)


def test_a_renamed_party_is_named_both_ways(demo_frames, dp_config, crashed_checkpoint):
    parties = {("clinic_east" if k == "clinic_west" else k): v for k, v in demo_frames.items()}
    with pytest.raises(ConfigError) as info:
        FederatedSynthesizer(dp_config, engine="local").fit(parties, resume_from=crashed_checkpoint)
    assert "party 'clinic_west' took part" in str(info.value)
    assert "party 'clinic_east' (1000 training rows) was not in the checkpointed run" in str(info.value)


def test_a_changed_row_count_is_named(demo_frames, dp_config, crashed_checkpoint):
    parties = {**demo_frames, "clinic_north": demo_frames["clinic_north"].iloc[:1500]}
    with pytest.raises(ConfigError, match="party 'clinic_north' trains on 1500 rows; the checkpoint expected 2000"):
        FederatedSynthesizer(dp_config, engine="local").fit(parties, resume_from=crashed_checkpoint)


@pytest.mark.parametrize("change, words", [
    ({"epsilon": 5.0}, "'epsilon' is 5.0; the checkpoint's run used 3.0"),
    ({"rounds": ROUNDS + 1}, f"'rounds' is {ROUNDS + 1}; the checkpoint's run used {ROUNDS} and its noise was planned"),
    ({"batch_size": 50}, "'batch_size' is 50; the checkpoint's run used 100"),
])
def test_a_changed_dp_setting_is_refused(demo_frames, dp_config, crashed_checkpoint, change, words):
    with pytest.raises(ConfigError, match=words):
        FederatedSynthesizer(dp_config.replace(**change), engine="local").fit(demo_frames, resume_from=crashed_checkpoint)


def test_the_server_checks_the_parties_that_connect(demo_frames, dp_config, crashed_checkpoint, tmp_path):
    """The SDK checks early; the coordinator checks again against what the parties report (the deployment path)."""
    tables = [load_party(name, frame) for name, frame in demo_frames.items() if name != "clinic_south"]
    schema = reconcile(tables)
    transport = LocalTransport(stage_parties([align(t, schema) for t in tables], tmp_path))
    with pytest.raises(ConfigError, match="party 'clinic_south' took part in the checkpointed run"):
        run_federation(transport, config=dp_config, schema=schema, resume=ModelState.load(crashed_checkpoint))


def test_a_missing_checkpoint_says_how_to_fix_it(demo_frames, dp_config, tmp_path):
    with pytest.raises(ConfigError, match="does not exist. Pass the file a run wrote with --checkpoint .* without --resume"):
        FederatedSynthesizer(dp_config, engine="local").fit(demo_frames, resume_from=tmp_path / "nope.ckpt")


def test_a_corrupt_or_truncated_checkpoint_says_how_to_fix_it(demo_frames, dp_config, crashed_checkpoint, tmp_path):
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint at all")
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(crashed_checkpoint.read_bytes()[: crashed_checkpoint.stat().st_size // 2])
    for path in (garbage, truncated):
        with pytest.raises(ConfigError, match=f"Cannot resume from checkpoint '{path}': .*not a fedtab model file.*without --resume"):
            FederatedSynthesizer(dp_config, engine="local").fit(demo_frames, resume_from=path)


def test_the_cli_resumes_and_reports_where(monkeypatch, capsys, tmp_path, resumed_dp):
    from fedtab.cli.main import run

    _, _, after = resumed_dp
    out = tmp_path / "synthetic.csv"
    monkeypatch.setattr(sys, "argv", ["fedtab", "synthesize", "--demo", "--resume", str(after), "--engine", "local",
                                      "--rows", "40", "--out", str(out), "--format", "json"])
    run()
    summary = json.loads(capsys.readouterr().out)
    assert summary["resumed_at"] == [CRASH_AFTER] and summary["rows"] == 40 and out.exists()
    assert summary["privacy"]["resumed_at"] == [CRASH_AFTER]


def test_the_cli_refuses_a_missing_checkpoint_in_one_line(monkeypatch, capsys, tmp_path):
    from fedtab.cli.main import run

    monkeypatch.setattr(sys, "argv", ["fedtab", "synthesize", "--demo", "--resume", str(tmp_path / "nope.ckpt"), "--engine", "local"])
    with pytest.raises(SystemExit) as info:
        run()
    output = capsys.readouterr().err
    assert info.value.code == ConfigError.exit_code
    assert "does not exist" in output and "Traceback" not in output


# ---------------------------------------------------------------- (c2) replayed and edited checkpoints


def test_the_parties_keep_their_own_record_of_the_run(crashed_checkpoint):
    state = ModelState.load(crashed_checkpoint)
    run_id = state.privacy["run_id"]
    for party, mirror in state.privacy["accountants"].items():
        record = json.loads((crashed_checkpoint.parent / f"fedtab-{run_id}.party-{party}.json").read_text())
        assert record["run_id"] == run_id and record["party"] == party
        assert PartyAccountant.from_state_dict(record["accountant"]).steps() >= PartyAccountant.from_state_dict(mirror).steps()


def test_a_checkpoint_continued_twice_is_refused_and_writes_nothing(demo_frames, dp_config, crashed_checkpoint, resumed_dp):
    """``resumed_dp`` continued the checkpoint once; the parties hold those rounds and refuse to spend them again."""
    again = crashed_checkpoint.with_name("again.ckpt")
    records = {p: p.read_bytes() for p in crashed_checkpoint.parent.glob("fedtab-*.json")}
    with pytest.raises(PrivacyBudgetError, match="(?s)Party 'clinic_north' refuses to resume run .*already spent more "
                                                  "in this run .*than the checkpoint holds .*continued before"):
        FederatedSynthesizer(dp_config.replace(checkpoint=str(again)), engine="local").fit(
            demo_frames, resume_from=crashed_checkpoint)
    assert not again.exists()
    assert {p: p.read_bytes() for p in crashed_checkpoint.parent.glob("fedtab-*.json")} == records


def test_an_edited_accountant_history_is_refused(demo_frames, dp_config, second_crash):
    state = ModelState.load(second_crash)
    history = state.privacy["accountants"]["clinic_north"]["history"]
    history[0]["noise_multiplier"] *= 2  # claim the encoder statistics were noisier than they were
    edited = second_crash.with_name("edited.ckpt")
    state.save(edited)
    records = {p: p.read_bytes() for p in second_crash.parent.glob("fedtab-*.json")}
    with pytest.raises(PrivacyBudgetError, match="(?s)Party 'clinic_north' refuses to resume.*does not match the "
                                                  "party's own record of the run.*edited"):
        FederatedSynthesizer(dp_config.replace(checkpoint=str(second_crash.with_name("after-edit.ckpt"))),
                             engine="local").fit(demo_frames, resume_from=edited)
    assert {p: p.read_bytes() for p in second_crash.parent.glob("fedtab-*.json")} == records and len(records) == 3
    assert not second_crash.with_name("after-edit.ckpt").exists()


def test_a_checkpoint_without_the_parties_records_cannot_be_resumed(demo_frames, dp_config, second_crash, tmp_path):
    moved = tmp_path / "moved.ckpt"
    moved.write_bytes(second_crash.read_bytes())
    with pytest.raises(PrivacyBudgetError, match="holds no record of this run in .*Give the party the state folder"):
        FederatedSynthesizer(dp_config, engine="local").fit(demo_frames, resume_from=moved)
    run = FederatedSynthesizer(dp_config.replace(party_state_dir=str(second_crash.parent)), engine="local")
    assert run.fit(demo_frames, resume_from=moved).state_.rounds_done == ROUNDS  # pointed at the records, it resumes


# ---------------------------------------------------------------- (d) Flower's simulation engine


@pytest.mark.slow
def test_a_resume_on_the_simulation_engine_spends_what_a_fresh_local_run_spends(demo_frames, dp_config, fresh_dp, tmp_path):
    crashed = crashed_run(demo_frames, dp_config, tmp_path)
    synth = FederatedSynthesizer(dp_config, engine="simulation").fit(demo_frames, resume_from=crashed)
    fresh, resumed = spends(fresh_dp.state_.ledger), spends(synth.state_.ledger)
    for party, (epsilon, mechanisms) in fresh.items():
        assert resumed[party][0] == pytest.approx(epsilon, abs=1e-9), party
        assert {m: s for m, (_, s) in resumed[party][1].items()} == {m: s for m, (_, s) in mechanisms.items()}
    assert synth.state_.rounds_done == ROUNDS and synth.state_.resumed_at == (CRASH_AFTER,)
