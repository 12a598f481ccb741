"""Secure aggregation of the encoder statistics with the real party worker on the demo federation: the server
only ever holds sums, the sums match the plain path, the noise is added once, and a party refuses share noise
that would leave outside a secure sum."""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict

import numpy as np
import pytest

from fedtab import FedtabConfig, PrivacyBudgetError
from fedtab.connectors.public_domain import read_public_domain
from fedtab.demo import demo_parties, demo_public_domain_path
from fedtab.errors import ConfigError
from fedtab.federation import keys
from fedtab.federation.coordinator import fit_plan
from fedtab.federation.local import LocalTransport
from fedtab.errors import PartyError
from fedtab.federation.party import PartyWorker, StagedParty
from fedtab.federation.payload import Payload
from fedtab.federation.privacy_run import confirm_plans, plan_privacy
from fedtab.federation.schema_round import schema_round
from fedtab.federation.secure_sum import FRACTION_BITS, secure_sum
from fedtab.privacy.distributed import summed_noise
from fedtab.privacy.planning import ENCODER, ENCODER_DISTRIBUTED
from fedtab.schema import PartyTable
from fedtab.transformers import PlanFitter, StatsRequest, local_statistics
from fedtab.transformers import protocol as p

STAGED = [StagedParty(name, str(path)) for name, path in demo_parties().items()]


@pytest.fixture(scope="module")
def domain_config() -> FedtabConfig:
    # A large ε with most of it on the encoders, so the positive control can see a party's histogram through its noise
    # (RDP: planning in milliseconds where PRV takes seconds).
    return FedtabConfig(rounds=1, batch_size=200, seed=2, epsilon=30.0, encoder_share=0.6, accountant="rdp",
                        public_domain=read_public_domain(demo_public_domain_path()))


@pytest.fixture(scope="module")
def schema(domain_config):
    return schema_round(LocalTransport(STAGED), config=domain_config)


def private_fit(config: FedtabConfig, schema, *, secure: bool, lie: bool = False, worker=PartyWorker, progress=None):
    """The encoder fit as the coordinator runs it, every message each party sends tapped; ``lie``: the server plans
    share noise (as for a secure run) but asks for the statistics in the clear."""
    sent: dict[tuple[str, str], list[Payload]] = defaultdict(list)
    asked: dict[tuple[str, str], list[Payload]] = defaultdict(list)
    transport = LocalTransport(STAGED, tap=lambda party, kind, payload: sent[(party, kind)].append(payload),
                               tap_sent=lambda party, kind, payload: asked[(party, kind)].append(payload), worker=worker)
    planned = config.replace(secure_aggregation=True) if lie or secure else config
    releases, selections = PlanFitter.release_plan(schema)
    privacy = plan_privacy(planned, transport.parties, encoder_releases=releases, partition_selections=selections)
    confirm_plans(transport, privacy)
    run = config.replace(secure_aggregation=secure)
    plan, _, _ = fit_plan(transport, config=run, schema=schema, privacy=privacy, progress=progress)
    return plan, privacy, sent, asked


def own_histograms(party: StagedParty, request_payload: Payload, schema) -> np.ndarray:
    """The party's exact histogram for the server's histogram request, computed here from its rows (no noise)."""
    from fedtab.connectors import align, load_party

    table = align(load_party(party.name, party.path), schema)
    config = {k: v for k, v in request_payload.config.items() if k in (
        p.CFG_NUMERICAL, p.CFG_NUMERICAL_KINDS, p.CFG_DATETIME_FORMATS, p.CFG_DISCRETE, p.CFG_BOOLEAN, p.CFG_BINS)}
    arrays = {k: v for k, v in request_payload.arrays.items() if k in (p.REQ_LOW, p.REQ_WIDTH)}
    return local_statistics(PartyTable(party.name, table.frame, schema), StatsRequest(p.STAGE_HISTOGRAM, arrays, config))[p.HIST_COUNTS]


def histogram_request(asked: dict, party: str, kind: str) -> Payload:
    return next(m for m in asked[(party, kind)] if m.config.get(keys.STAGE) == p.STAGE_HISTOGRAM)


def best_match(own: np.ndarray, candidates: list[np.ndarray]) -> float:
    return max((float(np.corrcoef(c, own)[0, 1]) for c in candidates if c.size == own.size and np.std(c) > 0), default=0.0)


def readings(array: np.ndarray, size: int) -> list[np.ndarray]:
    """What a curious server could read off one array: its numbers, or 64-bit words as fixed point (each window)."""
    if array.dtype == np.uint64:
        values = array.view(np.int64).astype(np.float64) / 2**FRACTION_BITS
    elif array.dtype.kind in "iuf":
        values = array.astype(np.float64).ravel()
    else:
        return []
    return [values[i:i + size] for i in range(0, max(values.size - size, 0) + 1, size)] if values.size >= size else []


def test_without_secure_aggregation_the_server_reads_each_partys_histogram(domain_config, schema):
    """The positive control: each party's reply is its own (noisy) histogram, close to its exact one."""
    _, privacy, sent, asked = private_fit(domain_config, schema, secure=False)
    sigma = privacy.encoder_noise_multiplier
    for party in STAGED:
        own = own_histograms(party, histogram_request(asked, party.name, keys.STATS), schema).ravel()
        received = sent[(party.name, keys.STATS)][-1].arrays[p.HIST_COUNTS].ravel()
        assert np.abs(received - own).max() < 6 * sigma
        assert best_match(own, [received]) > 0.9


def test_with_secure_aggregation_the_server_holds_only_sums(domain_config, schema):
    plan, privacy, sent, asked = private_fit(domain_config, schema, secure=True)
    assert not any(kind == keys.STATS for _, kind in sent)  # nothing went in the clear
    mine = {}
    for party in STAGED:
        own = own_histograms(party, histogram_request(asked, party.name, keys.SECURE_COLLECT), schema).ravel()
        mine[party.name] = own
        arrays = [a for kind in keys.SECURE_MESSAGES for m in sent[(party.name, kind)] for a in m.arrays.values()]
        assert len(arrays) >= 4 * 2  # keys, shares, masked vector, unmask shares: each stage
        assert best_match(own, [r for a in arrays for r in readings(a, own.size)]) < 0.3
    ledger = privacy.ledger()
    assert {m.mechanism for spend in ledger.parties for m in spend.mechanisms} == {ENCODER_DISTRIBUTED}
    assert plan.schema.names == schema.names


def test_the_secure_sum_equals_the_plain_sum_of_exact_statistics(schema):
    """Without noise, the same real party statistics summed securely and in the clear agree to the fixed point."""
    fitter = PlanFitter(schema, seed=0)
    transport = LocalTransport(STAGED)
    names = sorted(transport.parties)
    common = {keys.SCHEMA: json.dumps(schema.to_dict()), keys.RUN + ".seed": 0}
    summary = fitter.next_request()
    payloads = {n: Payload(arrays=summary.arrays, config={**summary.config, keys.STAGE: summary.stage, **common}) for n in names}
    fitter.merge([r.arrays for r in transport.exchange(keys.STATS, payloads).values()])
    request = fitter.next_request()
    assert request.stage == p.STAGE_HISTOGRAM
    payloads = {n: Payload(arrays=request.arrays, config={**request.config, keys.STAGE: request.stage, **common}) for n in names}
    plain = sum(r.arrays[p.HIST_COUNTS] for r in transport.exchange(keys.STATS, payloads).values())
    summed = secure_sum(transport, payloads, threshold=2, what="histogram")
    assert plain.sum() > 1000 and np.abs(summed.arrays[p.HIST_COUNTS] - plain).max() <= len(names) * 2.0**-FRACTION_BITS


def test_the_noise_is_added_once_in_total(domain_config, schema):
    """Per party every release is charged σ either way; the sum carries σ·√(P/(P−T)) instead of σ·√P."""
    plain_plan, plain, _, _ = private_fit(domain_config, schema, secure=False)
    secure_plan, secure, sent, asked = private_fit(domain_config, schema, secure=True)
    sigma, parties, tolerated = secure.encoder_noise_multiplier, len(STAGED), secure.plans["clinic_west"].noise_tolerance
    assert plain.encoder_noise_multiplier == pytest.approx(sigma) and tolerated == 1
    assert summed_noise(sigma, parties, tolerated) == pytest.approx(sigma * np.sqrt(3 / 2))
    spend = {s.party: s for s in secure.ledger().parties}
    assert all(spend[s.party].epsilon == pytest.approx(s.epsilon) for s in plain.ledger().parties)
    assert {m.mechanism for s in plain.ledger().parties for m in s.mechanisms} == {ENCODER}


class LosesWestAtCollect(PartyWorker):
    """clinic_west's connection drops whenever it is asked for its masked statistics."""

    def handle(self, message_type: str, payload: Payload, state: dict) -> tuple[Payload, dict]:
        if self.party.name == "clinic_west" and message_type == keys.SECURE_COLLECT:
            return Payload.from_error(PartyError("connection reset by peer"), fault=True), state
        return super().handle(message_type, payload, state)


def test_a_party_lost_mid_sum_is_left_out_and_still_charged(domain_config, schema):
    """3 parties, T = 1: the sums go on with two; the lost party's releases are counted in the server's mirror."""
    stages: list[dict] = []
    _, privacy, sent, _ = private_fit(domain_config, schema, secure=True, worker=LosesWestAtCollect,
                                      progress=lambda stage, done, total, record: stages.append(record))
    assert [r["secagg_parties"] for r in stages] == [2.0, 2.0] and all(r["secagg_lost"] == 1.0 for r in stages)
    assert not sent[("clinic_west", keys.SECURE_UNMASK)]
    west = privacy.ledger().party("clinic_west").mechanism(ENCODER_DISTRIBUTED)
    assert west.steps == privacy.plans["clinic_west"].encoder_releases


def test_a_server_asking_for_share_noise_in_the_clear_is_refused(domain_config, schema):
    with pytest.raises(PrivacyBudgetError, match=r"refuses the 'summary' statistics request: the plan asks for a share of the noise"):
        private_fit(domain_config, schema, secure=False, lie=True)


def test_a_secure_sum_too_small_for_the_plans_shares_is_refused(domain_config, schema):
    """T = 0 planned (each party adds σ/√3), but the server sets the sum up to unmask two parties: refused."""
    config = domain_config.replace(secure_aggregation=True, secure_dropouts=0)
    transport = LocalTransport(STAGED)
    releases, selections = PlanFitter.release_plan(schema)
    privacy = plan_privacy(config, transport.parties, encoder_releases=releases, partition_selections=selections)
    request = PlanFitter(schema, mode="private", noise_multiplier=1.0).next_request()
    payloads = {n: Payload(arrays=request.arrays, config={**request.config, keys.STAGE: request.stage,
                                                           keys.SCHEMA: json.dumps(schema.to_dict()), keys.RUN + ".seed": 0,
                                                           **privacy.stats_config(n)}) for n in sorted(transport.parties)}
    with pytest.raises(PrivacyBudgetError, match="threshold 2, so the server could unmask a sum carrying less than σ"):
        secure_sum(transport, payloads, threshold=2, what="summary")


def test_a_plan_whose_noise_shares_colluders_could_strip_is_refused_at_consent(domain_config, schema):
    transport = LocalTransport(STAGED)
    releases, selections = PlanFitter.release_plan(schema)
    privacy = plan_privacy(domain_config.replace(secure_aggregation=True), transport.parties,
                           encoder_releases=releases, partition_selections=selections)
    privacy.plans = {n: dataclasses.replace(plan, noise_tolerance=2) for n, plan in privacy.plans.items()}
    with pytest.raises(PrivacyBudgetError, match=r"noise cannot be trusted: .*\[0, P/2\)"):
        confirm_plans(transport, privacy)


def test_secure_aggregation_needs_dp_and_declared_categories(domain_config, schema):
    with pytest.raises(ConfigError, match="needs epsilon"):
        FedtabConfig(secure_aggregation=True)
    undeclared = domain_config.replace(public_domain={}, secure_aggregation=True)
    plain_schema = schema_round(LocalTransport(STAGED), config=undeclared)
    with pytest.raises(ConfigError, match=r"categories declared; \['workclass'"):
        fit_plan(LocalTransport(STAGED), config=undeclared, schema=plain_schema)
