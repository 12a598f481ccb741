"""The ledger's party-level entry: additive, survives JSON, and is named in the summary."""

from __future__ import annotations

import dataclasses
import json

import pytest

from fedtab.errors import ConfigError
from fedtab.privacy.accountant import PartyAccountant
from fedtab.privacy.ledger import PartyLevelSpend, PrivacyLedger

PARTY_LEVEL = PartyLevelSpend(epsilon=9.87, delta=1e-5, noise_multiplier=2.9, clip_norm=0.5, rounds=30, parties=5,
                              accountant="flower-rdp, no amplification, equal weights", budget_epsilon=10.0)


def record_ledger() -> PrivacyLedger:
    clinic = PartyAccountant("clinic", accountant="rdp")
    clinic.record_sgd(noise_multiplier=1.2, sample_rate=0.05, steps=200)
    return PrivacyLedger.from_accountants([clinic], delta=1e-5)


def test_party_level_entry_round_trips_through_json():
    ledger = dataclasses.replace(record_ledger(), party_level=PARTY_LEVEL)
    data = json.loads(json.dumps(ledger.to_dict()))
    assert data["party_level"]["accountant"] == "flower-rdp, no amplification, equal weights"
    assert PrivacyLedger.from_dict(data) == ledger


def test_a_ledger_without_party_level_is_unchanged():
    data = record_ledger().to_dict()
    assert "party_level" not in data
    assert PrivacyLedger.from_dict(data).party_level is None


def test_summary_names_the_party_level_guarantee():
    both = dataclasses.replace(record_ledger(), party_level=PARTY_LEVEL).summary_lines()
    assert both[0].startswith("Differential privacy: record-level")
    assert both[-1] == ("Party-level DP (one whole party's model updates): ε = 9.87 of 10 at δ = 1e-05 over 30 rounds "
                        "(noise multiplier 2.9, update clip 0.5, 5 parties; flower-rdp, no amplification, equal weights)")
    alone = PrivacyLedger((), party_level=PARTY_LEVEL).summary_lines()
    assert alone[0].startswith("Record-level differential privacy: off") and alone[1].startswith("Party-level DP")


def test_a_damaged_party_level_entry_is_refused():
    data = {**record_ledger().to_dict(), "party_level": {"epsilon": 1.0}}
    with pytest.raises(ConfigError, match="party-level entry is malformed"):
        PrivacyLedger.from_dict(data)
