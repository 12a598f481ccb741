"""CTGAN's ``local_discriminator`` on the demo federation (in process, real party worker, tiny model): each party
keeps its own discriminator between rounds and sends the global one back unchanged, so the server never sees it
(without the option it receives and averages the parties' discriminators); round two trains from the party's own
copy; under DP the spend is the same with and without it."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest

from fedtab import FedtabConfig
from fedtab.connectors.public_domain import read_public_domain
from fedtab.demo import demo_parties, demo_public_domain_path
from fedtab.federation import keys
from fedtab.federation.aggregation import weighted_average
from fedtab.federation.coordinator import run_federation
from fedtab.federation.local import LocalTransport
from fedtab.federation.party import OPTIMIZER, PartyWorker, StagedParty, _encoded_rows, _plan
from fedtab.federation.schema_round import schema_round
from fedtab.models.registry import create_model
from fedtab.models.trainer import KEPT
from fedtab.threads import single_torch_thread

STAGED = [StagedParty(name, str(path)) for name, path in demo_parties().items()]
TINY = {"embedding_dim": 8, "generator_dims": [16], "discriminator_dims": [16]}
DISC = "discriminator."


@pytest.fixture(scope="module")
def config() -> FedtabConfig:
    return FedtabConfig(model="ctgan", rounds=2, local_epochs=0.5, batch_size=200, seed=5, model_options=TINY,
                        bgm_max_rounds=2)


@pytest.fixture(scope="module")
def schema(config):
    return schema_round(LocalTransport(STAGED), config=config)


def federate(config: FedtabConfig, schema, *, local: bool):
    """One run; what the server sends, what each party replies and the state each party keeps, per round."""
    sent, replied, kept = defaultdict(list), defaultdict(list), defaultdict(list)

    class Recording(PartyWorker):
        def _train(self, payload, state):
            reply, state = super()._train(payload, state)
            kept[self.party.name].append({k: v.copy() for k, v in state.items()})  # next round's Adam steps in place
            return reply, state

    def tap_sent(party, kind, payload):
        if kind == keys.TRAIN:
            sent[party].append(payload)

    def tap(party, kind, reply):
        if kind == keys.TRAIN:
            replied[party].append(dict(reply.arrays))

    transport = LocalTransport(STAGED, worker=Recording, tap=tap, tap_sent=tap_sent)
    options = {**config.model_options, "local_discriminator": local}
    fit = run_federation(transport, config=config.replace(model_options=options), schema=schema)
    return fit, sent, replied, kept


def part(weights: dict, prefix: str = DISC) -> dict:
    return {k: v for k, v in weights.items() if k.startswith(prefix)}


def own_discriminator(state: dict) -> dict:
    return {k[len(OPTIMIZER + KEPT):]: v for k, v in state.items() if k.startswith(OPTIMIZER + KEPT)}


def same(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_without_the_option_the_server_receives_and_averages_the_discriminators(config, schema):
    """The control: each reply carries the party's trained discriminator, and the global one is their mean."""
    fit, sent, replied, kept = federate(config, schema, local=False)
    for party in STAGED:
        assert not own_discriminator(kept[party.name][-1])
        assert not same(part(replied[party.name][-1]), part(dict(sent[party.name][-1].arrays)))
    rows = [fit.parties[p.name] for p in STAGED]
    mean = weighted_average([part(replied[p.name][-1]) for p in STAGED], rows)
    for key, value in mean.items():
        np.testing.assert_allclose(fit.weights[key], value, rtol=1e-6, atol=1e-7)


@pytest.fixture(scope="module")
def local_run(config, schema):
    return federate(config, schema, local=True)


def test_each_party_keeps_its_own_discriminator_and_sends_the_global_one_back(local_run):
    fit, sent, replied, kept = local_run
    global_disc = part(fit.weights)
    owns = {p.name: own_discriminator(kept[p.name][-1]) for p in STAGED}
    for party in STAGED:
        own = owns[party.name]
        assert set(own) == set(global_disc)
        assert not same(own, global_disc)
        assert all(not same(own, owns[other.name]) for other in STAGED if other is not party)
        for payload, reply in zip(sent[party.name], replied[party.name]):
            assert same(part(reply), part(dict(payload.arrays)))  # the global discriminator, not the party's
            assert not same(part(reply, "generator."), part(dict(payload.arrays), "generator."))
    assert same(global_disc, part(dict(sent[STAGED[0].name][0].arrays)))  # it never moved on the server
    assert not same(part(fit.weights, "generator."), part(dict(sent[STAGED[0].name][0].arrays), "generator."))


def test_round_two_trains_from_the_partys_own_discriminator(local_run):
    """Round two's reply is exactly what training from the party's round-one discriminator gives."""
    fit, sent, replied, kept = local_run
    party = STAGED[0]
    payload, state = sent[party.name][1], kept[party.name][0]
    c = payload.config
    options = {**json.loads(str(c[keys.RUN + ".options"])), "local_discriminator": False}
    model = create_model("ctgan", _plan(str(c[keys.PLAN])), options, seed=int(c[keys.RUN + ".seed"]))
    optimizer = {k[len(OPTIMIZER):]: v for k, v in state.items() if k.startswith(OPTIMIZER) and KEPT not in k}
    with single_torch_thread():  # as LocalTransport trains a party: another thread count sums in another order
        update = model.local_update({**dict(payload.arrays), **own_discriminator(state)},
                                    _encoded_rows(party, str(c[keys.PLAN]), int(c[keys.RUN + ".seed"])),
                                    epochs=float(c[keys.RUN + ".local_epochs"]), batch_size=int(c[keys.RUN + ".batch_size"]),
                                    round_index=int(c[keys.ROUND]), party=party.name, optimizer_state=optimizer)
    assert same(part(update.weights, "generator."), part(replied[party.name][1], "generator."))
    assert same(part(update.weights), own_discriminator(kept[party.name][1]))


def test_under_dp_the_kept_discriminator_trains_and_costs_the_same(config, schema):
    private = config.replace(rounds=1, epsilon=3.0, accountant="rdp", public_domain=read_public_domain(demo_public_domain_path()))
    plain = federate(private, schema, local=False)[0]
    fit, sent, replied, kept = federate(private, schema, local=True)
    for party in STAGED:
        own = own_discriminator(kept[party.name][-1])
        assert own and not same(own, part(fit.weights))
        assert same(part(replied[party.name][-1]), part(dict(sent[party.name][-1].arrays)))
    assert fit.ledger and fit.ledger == plain.ledger
