"""Who enforces the budget: the parties. Small runs keep their ledger within ε; a plan a party's own budget
does not allow is refused before any statistic is answered, and bad party settings fail with nothing written."""

from __future__ import annotations

import json
from collections import defaultdict
from types import SimpleNamespace

import pytest

from fedtab import FederatedSynthesizer
from fedtab.errors import ConfigError, PrivacyBudgetError
from fedtab.federation import keys
from fedtab.privacy.policy import PartyPolicy, policy_for
from tests.conftest import SMALL_MODEL

pytestmark = [pytest.mark.filterwarnings("ignore:divide by zero encountered in log"),
              pytest.mark.filterwarnings("ignore:Optimal order is the")]


@pytest.mark.parametrize("epsilon", ["0.05", "1"])
def test_the_cli_ledger_stays_within_the_budget(cli, tmp_path, epsilon):
    """Before the accountant settings were defined once, --epsilon 0.05 reported 0.0588 of 0.05."""
    code, output = cli("synthesize", "--demo", "--engine", "local", "--rounds", "1", "--local-epochs", "1",
                       "--epsilon", epsilon, "--rows", "40", "--out", str(tmp_path / "s.csv"), "--format", "json")
    assert code == 0, output
    ledger = json.loads(output[output.index("{"):])["privacy"]
    assert len(ledger["parties"]) == 3
    for party in ledger["parties"]:
        assert party["budget_epsilon"] == float(epsilon)
        assert 0.9 * float(epsilon) < party["epsilon"] <= float(epsilon), party


def test_a_party_budget_below_the_plan_is_refused_before_any_statistic(demo_frames, small_config, tmp_path):
    answered: dict = defaultdict(list)
    config = small_config.replace(epsilon=1.0, party_budgets={"clinic_south": 0.5}, checkpoint=str(tmp_path / "run.ckpt"))
    with pytest.raises(PrivacyBudgetError, match="(?s)Party 'clinic_south' refuses the server's privacy plan .*asks ε = 1 "
                                                  ".*the party allows ε ≤ 0.5.*compose, by this party's own accountant"):
        FederatedSynthesizer(config, engine="local").fit(
            demo_frames, tap=lambda party, kind, reply: answered[kind].append((party, reply)))
    assert [party for party, _ in answered[keys.CONSENT]] == ["clinic_north", "clinic_south"]  # stops at the refusal
    assert not answered[keys.STATS]  # every party checked its plan first: no statistic was requested or answered
    assert not list(tmp_path.iterdir())  # no checkpoint, no party record: nothing half-written


def test_the_cli_names_the_party_and_the_figures(cli, tmp_path):
    code, output = cli("synthesize", "--demo", "--engine", "local", "--rounds", "1", "--epsilon", "1",
                       "--party-budget", "clinic_west=0.3", "--checkpoint", str(tmp_path / "run.ckpt"),
                       "--out", str(tmp_path / "s.csv"))
    assert code == PrivacyBudgetError.exit_code
    assert "Party 'clinic_west' refuses the server's privacy plan" in output and "allows ε ≤ 0.3" in output
    assert "Traceback" not in output and not list(tmp_path.iterdir())


@pytest.mark.parametrize("flag", ["clinic_a", "clinic_a=lots", "=1"])
def test_a_malformed_party_budget_flag_is_refused_in_one_line(cli, tmp_path, flag):
    code, output = cli("synthesize", "--demo", "--engine", "local", "--party-budget", flag, "--out", str(tmp_path / "s.csv"))
    assert code == ConfigError.exit_code and "--party-budget must look like NAME=EPSILON" in output
    assert "Traceback" not in output and not list(tmp_path.iterdir())


def test_a_budget_for_a_party_that_is_not_in_the_run_is_refused(demo_frames, small_config):
    with pytest.raises(ConfigError, match=r"party_budgets names \['clinic_east'\], which are not parties of this run"):
        FederatedSynthesizer(small_config.replace(epsilon=1.0, party_budgets={"clinic_east": 1.0}), engine="local").fit(demo_frames)


def test_a_run_without_dp_is_refused_by_parties_that_require_it(demo_frames, small_config):
    config = small_config.replace(party_budgets={name: 2.0 for name in demo_frames})
    with pytest.raises(PrivacyBudgetError, match="requires differential privacy and the request carries no privacy plan"):
        FederatedSynthesizer(config, engine="local").fit(demo_frames)


def test_a_party_that_does_not_require_dp_still_answers_a_run_without_dp(demo_frames, small_config):
    config = small_config.replace(rounds=1, party_budgets={name: 2.0 for name in demo_frames}, require_dp=False,
                                  model_options=SMALL_MODEL)
    assert FederatedSynthesizer(config, engine="local").fit(demo_frames).state_.ledger is None


def test_the_default_policy_follows_epsilon(small_config):
    assert policy_for(small_config, "a") == PartyPolicy()
    dp = small_config.replace(epsilon=0.3, party_budgets={"b": 0.5})
    assert policy_for(dp, "a") == PartyPolicy(0.3, None, True, "prv", 0.003)
    assert policy_for(dp, "b") == PartyPolicy(0.5, None, True, "prv", 0.003)  # more ε, the run's accountant settings


@pytest.mark.parametrize(("node", "words"), [
    ({"require-dp": "true"}, "'require_dp' is on but no 'epsilon' is set"),
    ({"epsilon": "lots"}, "node-config epsilon='lots' is not a number"),
    ({"epsilon": 1.0, "require-dp": "maybe"}, "require-dp='maybe'; give true or false"),
])
def test_a_node_started_with_bad_privacy_terms_is_refused(tmp_path, node, words):
    from fedtab.federation.node_app import party_from_node

    context = SimpleNamespace(node_id=7, run_config={}, node_config={"data-path": str(tmp_path / "a.parquet"), "party": "clinic_a", **node})
    with pytest.raises(ConfigError, match=f"SuperNode 'clinic_a'.*{words}" if "'require_dp'" not in words else words):
        party_from_node(context)


def test_a_node_reads_its_budget_from_node_config(tmp_path):
    from fedtab.federation.node_app import party_from_node

    context = SimpleNamespace(node_id=7, run_config={}, node_config={"data-path": "a.parquet", "party": "clinic_a", "epsilon": 2,
                                                      "delta": 1e-6, "require-dp": True, "state-dir": str(tmp_path)})
    party = party_from_node(context)
    assert party.policy == PartyPolicy(2.0, 1e-6, True) and party.state_dir == str(tmp_path)


def test_config_refuses_require_dp_without_any_budget():
    from fedtab.config import FedtabConfig

    with pytest.raises(ConfigError, match="'require_dp' is on but 'epsilon' is not set"):
        FedtabConfig(require_dp=True)
    with pytest.raises(ConfigError, match="'party_budgets' must map party names to ε > 0"):
        FedtabConfig(party_budgets={"a": -1})
