"""The ledger reads each party's accountant once and survives JSON; its summary names every spend."""

from __future__ import annotations

import json

import pytest

from fedtab.errors import ConfigError, PartyError
from fedtab.privacy.accountant import PartyAccountant
from fedtab.privacy.ledger import PrivacyLedger
from fedtab.privacy.planning import PrivacyBudget

DELTA = 1e-5


def _accountants() -> list[PartyAccountant]:
    clinic = PartyAccountant("clinic", accountant="rdp")
    clinic.record_gaussian(noise_multiplier=40.0, mechanism="encoder", releases=5)
    clinic.record_gaussian(noise_multiplier=40.0, mechanism="encoder", threshold_delta=1e-7)
    clinic.record_sgd(noise_multiplier=1.2, sample_rate=0.05, steps=200)
    lab = PartyAccountant("lab", accountant="rdp")
    lab.record_sgd(noise_multiplier=2.0, sample_rate=0.1, steps=100)
    return [clinic, lab]


def test_ledger_holds_each_party_per_mechanism_and_in_total() -> None:
    clinic, lab = _accountants()
    ledger = PrivacyLedger.from_accountants([clinic, lab], delta=DELTA, budget=PrivacyBudget(3.0, DELTA))
    spend = ledger.party("clinic")
    assert spend.epsilon == clinic.epsilon(DELTA)
    assert spend.mechanism("encoder").epsilon == clinic.epsilon(DELTA, mechanism="encoder")
    assert spend.mechanism("encoder").steps == 6
    assert spend.mechanism("encoder").threshold_delta == pytest.approx(1e-7)
    assert spend.mechanism("training").noise_multipliers == (1.2,)
    assert spend.mechanism("training").sample_rates == (0.05,)
    assert (spend.delta, spend.accountant, spend.budget_epsilon) == (DELTA, "rdp", 3.0)
    assert ledger.max_epsilon == max(clinic.epsilon(DELTA), lab.epsilon(DELTA))
    with pytest.raises(ConfigError, match="no release under mechanism 'encoder'"):
        ledger.party("lab").mechanism("encoder")
    with pytest.raises(PartyError, match=r"no party 'bank'; it holds \['clinic', 'lab'\]"):
        ledger.party("bank")


def test_ledger_round_trips_through_json() -> None:
    ledger = PrivacyLedger.from_accountants(_accountants(), delta={"clinic": DELTA, "lab": 1e-6})
    again = PrivacyLedger.from_dict(json.loads(json.dumps(ledger.to_dict())))
    assert again == ledger
    assert again.party("lab").delta == 1e-6


def test_summary_lines_name_every_party_mechanism_and_figure() -> None:
    clinic, lab = _accountants()
    lines = PrivacyLedger.from_accountants([clinic, lab], delta=DELTA,
                                           budget={"clinic": PrivacyBudget(3.0, DELTA),
                                                   "lab": PrivacyBudget(2.0, DELTA)}).summary_lines()
    text = "\n".join(lines)
    assert lines[0].startswith("Differential privacy: record-level, accountant RDP")
    assert f"clinic: ε = {clinic.epsilon(DELTA):.3g} of 3 at δ = 1e-05" in text
    assert f"encoder: ε = {clinic.epsilon(DELTA, mechanism='encoder'):.3g} (6 releases, noise multiplier 40" in text
    assert "training: ε = " in text and "200 steps at sample rate 0.05, noise multiplier 1.2" in text
    assert "lab: ε = " in text and "of 2 at" in text
    assert PrivacyLedger(()).summary_lines() == ["Differential privacy: off (no party released under DP)."]


def test_missing_per_party_values_and_damaged_ledgers_are_refused() -> None:
    with pytest.raises(PartyError, match="No delta given for party 'lab'"):
        PrivacyLedger.from_accountants(_accountants(), delta={"clinic": DELTA})
    with pytest.raises(ConfigError, match="format 1 and 'parties'"):
        PrivacyLedger.from_dict({"parties": []})
    with pytest.raises(ConfigError, match="malformed"):
        PrivacyLedger.from_dict({"format": 1, "parties": [{"party": "x"}]})
