"""A party continues from the accountant a checkpoint kept, and never from one shorter than its own."""

from __future__ import annotations

import json

import pytest

from fedtab.errors import ConfigError
from fedtab.federation import keys
from fedtab.federation.party import party_accountant_state, restored_accountant
from fedtab.privacy.accountant import PartyAccountant


def accountant(party: str = "clinic_a", steps: int = 10) -> PartyAccountant:
    out = PartyAccountant(party)
    out.record_gaussian(noise_multiplier=30.0, mechanism="encoder", releases=3)
    out.record_sgd(noise_multiplier=1.2, sample_rate=0.05, steps=steps)
    return out


def holding(held: PartyAccountant) -> dict:
    return restored_accountant({}, json.dumps(held.state_dict()), held.party)


def test_a_fresh_party_process_takes_the_checkpointed_history():
    state = holding(accountant(steps=10))
    assert party_accountant_state(state, "clinic_a", "prv") == accountant(steps=10).state_dict()


def test_the_same_or_a_longer_history_is_taken():
    state = holding(accountant(steps=10))
    for steps in (10, 15):
        again = restored_accountant(state, json.dumps(accountant(steps=steps).state_dict()), "clinic_a")
        assert PartyAccountant.from_state_dict(party_accountant_state(again, "clinic_a", "prv")).steps("training") == steps


def test_a_shorter_history_than_the_party_holds_is_refused():
    state = holding(accountant(steps=20))
    with pytest.raises(ConfigError, match="refuses the checkpoint's accountant .*training 10 < 20.*under-count"):
        restored_accountant(state, json.dumps(accountant(steps=10).state_dict()), "clinic_a")
    assert keys.ACCOUNTANT_STATE in state


def test_another_partys_accountant_is_refused():
    with pytest.raises(ConfigError, match="Party 'clinic_b' was sent the checkpointed accountant of party 'clinic_a'"):
        restored_accountant({}, json.dumps(accountant("clinic_a").state_dict()), "clinic_b")
