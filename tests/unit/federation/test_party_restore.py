"""A party continues from a checkpoint's accountant only if it counts everything the party's own record holds."""

from __future__ import annotations

import json

import pytest

from fedtab.errors import PrivacyBudgetError
from fedtab.federation.party_guard import PartyGuard
from fedtab.privacy.accountant import PartyAccountant
from fedtab.privacy.policy import PartyPolicy

RUN = "0123456789abcdef0123456789abcdef"


def accountant(party: str = "clinic_a", steps: int = 10, sigma: float = 30.0) -> PartyAccountant:
    out = PartyAccountant(party)
    out.record_gaussian(noise_multiplier=sigma, mechanism="encoder", releases=3)
    out.record_sgd(noise_multiplier=1.2, sample_rate=0.05, steps=steps)
    return out


def guard(tmp_path, policy: PartyPolicy = PartyPolicy(epsilon=3.0)) -> PartyGuard:
    return PartyGuard("clinic_a", policy, 1000, str(tmp_path))


def restored(g: PartyGuard, held: PartyAccountant | None, mirror: PartyAccountant) -> PartyAccountant:
    return g._restored(held, json.dumps(mirror.state_dict()), RUN)


def test_the_party_record_is_written_per_run_and_read_back(tmp_path):
    g = guard(tmp_path)
    state = g.keep({}, accountant(steps=10), RUN)
    assert g._held({}, RUN).history == accountant(steps=10).history  # from the file, as a restarted process
    assert g._held(state, RUN).history == accountant(steps=10).history
    assert g._held({}, "f" * 32) is None
    assert (tmp_path / f"fedtab-{RUN}.party-clinic_a.json").is_file() and not list(tmp_path.glob(".*.tmp"))


def test_the_same_or_a_longer_history_is_taken(tmp_path):
    g = guard(tmp_path)
    for steps in (10, 15):
        assert restored(g, accountant(steps=10), accountant(steps=steps)).steps("training") == steps


def test_a_history_shorter_than_the_partys_record_is_refused_as_a_replay(tmp_path):
    with pytest.raises(PrivacyBudgetError, match="already spent more in this run .*training 20.* than the checkpoint holds"):
        restored(guard(tmp_path), accountant(steps=20), accountant(steps=10))


def test_an_edited_history_is_refused(tmp_path):
    with pytest.raises(PrivacyBudgetError, match="does not match the party's own record of the run.*edited"):
        restored(guard(tmp_path), accountant(steps=10), accountant(steps=10, sigma=60.0))


def test_no_record_refuses_a_party_with_a_budget_and_not_one_without(tmp_path):
    with pytest.raises(PrivacyBudgetError, match="holds no record of this run"):
        restored(guard(tmp_path), None, accountant())
    open_party = PartyGuard("clinic_a", PartyPolicy(), 1000, None)
    assert restored(open_party, None, accountant()).steps() == accountant().steps()


def test_another_partys_accountant_is_refused(tmp_path):
    with pytest.raises(PrivacyBudgetError, match="it holds the accountant of party 'clinic_b'"):
        restored(guard(tmp_path), accountant(), accountant("clinic_b"))


def test_a_run_id_that_is_not_fedtabs_is_refused_before_any_file_is_touched(tmp_path):
    with pytest.raises(PrivacyBudgetError, match="expected 32 hex digits"):
        guard(tmp_path).keep({}, accountant(), "../../elsewhere")
    assert not list(tmp_path.iterdir())
