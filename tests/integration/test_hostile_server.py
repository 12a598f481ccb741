"""A server that lies: every request a party's policy does not allow is refused, and nothing computed
from its rows comes back. The positive control shows the same request leaks exact statistics from a
party that does not require DP, so the test can see a leak."""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict

import numpy as np
import pytest

from fedtab.connectors import align, load_party, reconcile
from fedtab.errors import PrivacyBudgetError
from fedtab.federation import keys
from fedtab.federation.coordinator import fit_plan, run_federation
from fedtab.federation.local import LocalTransport
from fedtab.federation.party import PartyWorker, StagedParty
from fedtab.federation.party_guard import json_array
from fedtab.federation.payload import Payload
from fedtab.federation.privacy_run import PrivacyRun, plan_privacy
from fedtab.privacy.policy import PartyPolicy
from fedtab.synthesizer import stage_parties
from fedtab.transformers import PlanFitter

PARTY = "clinic_north"
ALLOWS = PartyPolicy(epsilon=1.0, require_dp=True)
pytestmark = [pytest.mark.filterwarnings("ignore:divide by zero encountered in log"),
              pytest.mark.filterwarnings("ignore:Optimal order is the")]


class Captured(Exception):
    """Stops the server after it built its first message."""


class FirstMessage:
    """A transport that records what the honest server would send first, and sends nothing."""

    def __init__(self, parties: dict[str, int]) -> None:
        self.parties = parties
        self.sent: dict[str, Payload] = {}

    def exchange(self, message_type: str, payloads: dict[str, Payload]) -> dict[str, Payload]:
        self.sent = dict(payloads)
        raise Captured


@pytest.fixture(scope="module")
def federation(demo_frames, tmp_path_factory):
    tables = [load_party(name, frame) for name, frame in demo_frames.items()]
    schema = reconcile(tables)
    staged = stage_parties([align(t, schema) for t in tables], tmp_path_factory.mktemp("hostile"))
    return schema, staged, {t.name: len(t.frame) for t in tables}


def honest_run(config, schema, rows) -> tuple[dict[str, Payload], PrivacyRun | None]:
    """The first statistics messages an honest server sends for ``config``, and its plans."""
    privacy = None
    if config.private:
        releases, selections = PlanFitter.release_plan(schema)
        privacy = plan_privacy(config, rows, encoder_releases=releases, partition_selections=selections)
    recorder = FirstMessage(rows)
    with pytest.raises(Captured):
        fit_plan(recorder, config=config, schema=schema, privacy=privacy)
    return recorder.sent, privacy


def party(staged, policy: PartyPolicy, name: str = PARTY) -> StagedParty:
    return dataclasses.replace(next(p for p in staged if p.name == name), policy=policy)


def assert_refused(reply: Payload, state: dict, words: str, name: str = PARTY) -> None:
    assert reply.config.get(keys.ERROR_KIND) == "PrivacyBudgetError", reply.config
    assert words in str(reply.config[keys.ERROR_MESSAGE]), reply.config[keys.ERROR_MESSAGE]
    assert f"Party '{name}'" in str(reply.config[keys.ERROR_MESSAGE])
    assert reply.arrays == {} and set(reply.config) == {keys.ERROR_KIND, keys.ERROR_MESSAGE} and not reply.metrics
    assert keys.ACCOUNTANT_STATE not in state


def with_plan(message: Payload, plan) -> Payload:
    return Payload(arrays=message.arrays, config={**message.config, keys.DP_PLAN: json.dumps(plan.to_dict())})


def test_a_statistics_request_without_a_plan_is_refused_and_leaks_without_the_policy(federation, small_config):
    schema, staged, rows = federation
    sent, _ = honest_run(small_config, schema, rows)
    reply, state = PartyWorker(party(staged, ALLOWS)).handle(keys.STATS, sent[PARTY], {})
    assert_refused(reply, state, "requires differential privacy and the request carries no privacy plan")

    # Positive control: a party without a budget that does not require DP answers with exact values.
    exact, _ = PartyWorker(party(staged, PartyPolicy())).handle(keys.STATS, sent[PARTY], {})
    assert exact.arrays and keys.ERROR_KIND not in exact.config
    again, _ = PartyWorker(party(staged, PartyPolicy())).handle(keys.STATS, sent[PARTY], {})
    assert all(np.array_equal(exact.arrays[k], again.arrays[k]) for k in exact.arrays)  # no noise at all


@pytest.mark.parametrize("name", ["clinic_north", "clinic_south", "clinic_west"])
def test_every_lying_plan_is_refused_before_any_release(federation, small_config, name):
    schema, staged, rows = federation
    config = small_config.replace(epsilon=1.0, batch_size=100)
    sent, privacy = honest_run(config, schema, rows)
    plan = privacy.plans[name]
    accepted, state = PartyWorker(party(staged, ALLOWS, name)).handle(keys.STATS, sent[name], {})
    assert accepted.arrays and keys.ACCOUNTANT_STATE in state  # the honest plan passes: the refusals are specific

    inflated, _ = honest_run(config.replace(epsilon=4.0), schema, rows)
    other_kind, _ = honest_run(config.replace(accountant="rdp"), schema, rows)
    other_party = next(p for p in sorted(privacy.plans) if p != name)
    lies = {
        "inflated ε": (inflated[name], "the party allows ε = 1"),
        "smaller noise": (with_plan(sent[name], dataclasses.replace(plan, noise_multiplier=plan.noise_multiplier / 3)),
                          "by this party's own accountant"),
        "more steps": (with_plan(sent[name], dataclasses.replace(plan, steps=plan.steps * 20)), "by this party's own accountant"),
        "other accountant": (other_kind[name], "composes with the rdp accountant; this party uses prv"),
        "other eps_error": (with_plan(sent[name], dataclasses.replace(plan, eps_error=0.002)), "eps_error 0.002"),
        "larger δ": (with_plan(sent[name], dataclasses.replace(plan, budget=dataclasses.replace(plan.budget, delta=1e-3))),
                     "is above the party's δ"),
        "more rows claimed": (with_plan(sent[name], dataclasses.replace(plan, party_rows=plan.party_rows * 10)),
                              f"this party trains on {plan.party_rows}"),
        "another party's plan": (with_plan(sent[name], privacy.plans[other_party]), f"made for party '{other_party}'"),
    }
    for message, words in lies.values():
        reply, after = PartyWorker(party(staged, ALLOWS, name)).handle(keys.STATS, message, {})
        assert_refused(reply, after, words, name)


def training_message(privacy: PrivacyRun, rounds: int, **dp: object) -> Payload:
    """A training round's config as the coordinator builds it (the model plan is never reached)."""
    config = {keys.PLAN: "{}", keys.RUN + ".seed": 0, keys.RUN + ".model": "ctgan", keys.RUN + ".options": "{}",
              keys.RUN + ".local_epochs": 1.0, keys.RUN + ".batch_size": 100, keys.ROUND: 0,
              **privacy.training_config(PARTY, 0, rounds, 1.0), **dp}
    return Payload(config={k: v for k, v in config.items() if v is not None})


def test_training_beyond_the_plan_or_without_it_is_refused(federation, small_config):
    schema, staged, rows = federation
    config = small_config.replace(epsilon=1.0, batch_size=100)
    _, privacy = honest_run(config, schema, rows)
    plan = privacy.plans[PARTY]
    spent = plan.planned_accountant()  # every release the plan allows is already spent
    state = {keys.ACCOUNTANT_STATE: json_array(spent.state_dict()), keys.DP_RUN_STATE: json_array(privacy.run_id),
             keys.NOISE_SEED: np.array([7], dtype=np.uint64)}
    worker = PartyWorker(party(staged, ALLOWS))
    cases = {
        "a round beyond the plan's steps": (training_message(privacy, config.rounds), state, "the plan allows"),
        "smaller noise than planned": (training_message(privacy, config.rounds, **{keys.DP_NOISE: plan.noise_multiplier / 2}),
                                       {}, "the plan allows 0"),
        "no DP at all": (training_message(privacy, config.rounds, **{keys.DP_NOISE: None}), {}, "requires differential privacy"),
        "DP without its plan": (training_message(privacy, config.rounds, **{keys.DP_PLAN: None}), {},
                                "without the privacy plan"),
    }
    for case, (message, held, words) in cases.items():
        reply, after = worker.handle(keys.TRAIN, message, held)
        assert reply.config.get(keys.ERROR_KIND) == "PrivacyBudgetError", case
        assert words in str(reply.config[keys.ERROR_MESSAGE]), (case, reply.config[keys.ERROR_MESSAGE])
        assert reply.arrays == {} and not reply.metrics, case
        assert after is held or after == held, case


def recorded(sent: dict):
    return lambda name, message_type, payload: sent[message_type].append(payload)


@pytest.mark.parametrize(("server_epsilon", "words"), [
    (None, "requires differential privacy and the request carries no privacy plan"),
    (3.0, "the party allows ε = 1"),
])
def test_through_the_local_transport_no_statistic_is_answered(federation, small_config, server_epsilon, words):
    schema, staged, _ = federation
    parties = [dataclasses.replace(p, policy=ALLOWS) for p in staged]
    replies: dict = defaultdict(list)
    transport = LocalTransport(parties, tap=recorded(replies))
    with pytest.raises(PrivacyBudgetError, match=f"(?s)Party .{sorted(p.name for p in parties)[0]}.*{words}"):
        run_federation(transport, config=small_config.replace(epsilon=server_epsilon), schema=schema)
    assert all(r.arrays == {} for r in replies[keys.STATS])  # under DP the plan check refuses before any request
    assert not replies[keys.TRAIN] and (server_epsilon is None or not replies[keys.STATS])
