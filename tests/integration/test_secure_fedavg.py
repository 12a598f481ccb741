"""Secure aggregation of the training updates on the demo federation (in process, real party worker, tiny model):
the server never receives one party's update (without the option it receives exactly that), the secure mean equals
plain FedAvg of the very same updates to the fixed point, a party lost mid-round is left out, and every rule that
needs one party's update is refused up front."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from fedtab import FedtabConfig
from fedtab.connectors.public_domain import read_public_domain
from fedtab.demo import demo_parties, demo_public_domain_path
from fedtab.errors import ConfigError, PartyError
from fedtab.federation import keys
from fedtab.federation.aggregation import weighted_average
from fedtab.federation.coordinator import run_federation
from fedtab.federation.local import LocalTransport
from fedtab.federation.party import PartyWorker, StagedParty
from fedtab.federation.payload import Payload
from fedtab.federation.schema_round import schema_round
from fedtab.federation.secure_sum import FRACTION_BITS, weighted_update

STAGED = [StagedParty(name, str(path)) for name, path in demo_parties().items()]
TINY = {"embedding_dim": 8, "generator_dims": [16], "discriminator_dims": [16]}
LOST = "clinic_west"


@pytest.fixture(scope="module")
def config() -> FedtabConfig:
    return FedtabConfig(model="ctgan", rounds=1, local_epochs=0.5, batch_size=200, seed=5, epsilon=3.0, accountant="rdp", model_options=TINY,
                        bgm_max_rounds=2, public_domain=read_public_domain(demo_public_domain_path()))


@pytest.fixture(scope="module")
def schema(config):
    return schema_round(LocalTransport(STAGED), config=config)


def federate(config: FedtabConfig, schema, *, secure: bool, lose: bool = False):
    """One run; every reply the server receives is tapped, and every update a party computes is recorded at the party."""
    received: dict[tuple[str, str], list[Payload]] = defaultdict(list)
    trained: dict[str, list[tuple[dict, int]]] = defaultdict(list)

    class Recording(PartyWorker):
        def handle(self, message_type: str, payload: Payload, state: dict) -> tuple[Payload, dict]:
            if lose and self.party.name == LOST and message_type == keys.SECURE_COLLECT and keys.SA_FEDAVG in payload.config:
                return Payload.from_error(PartyError("connection reset by peer"), fault=True), state
            return super().handle(message_type, payload, state)

        def _train(self, payload: Payload, state: dict) -> tuple[Payload, dict]:
            reply, state = super()._train(payload, state)
            trained[self.party.name].append((dict(reply.arrays), int(reply.metrics[keys.NUM_EXAMPLES])))
            return reply, state

    transport = LocalTransport(STAGED, worker=Recording, tap=lambda party, kind, reply: received[(party, kind)].append(reply))
    fit = run_federation(transport, config=config.replace(secure_aggregation=secure), schema=schema)
    return fit, received, trained


@pytest.fixture(scope="module")
def secure_run(config, schema):
    return federate(config, schema, secure=True)


def flat(arrays: dict) -> np.ndarray:
    """Values in sorted key order, as a secure sum lays them out."""
    return np.concatenate([np.asarray(arrays[k], dtype=np.float64).ravel() for k in sorted(arrays)])


def test_without_secure_aggregation_the_server_receives_each_partys_update(config, schema):
    """The positive control: the plain training reply is the party's own update, value for value."""
    fit, received, trained = federate(config, schema, secure=False)
    for party in STAGED:
        own, _ = trained[party.name][-1]
        reply = received[(party.name, keys.TRAIN)][-1].arrays
        assert set(reply) == set(own) and all(np.array_equal(reply[k], own[k]) for k in own)


def test_with_secure_aggregation_no_message_carries_a_partys_update(secure_run):
    fit, received, trained = secure_run
    assert not any(kind == keys.TRAIN for _, kind in received)
    for party in STAGED:
        update, rows = trained[party.name][-1]
        own = flat(update)
        contribution = flat(weighted_update(party.name, update, rows, 0))  # rows·update, and the rows, as summed
        compared = 0
        for kind in keys.SECURE_MESSAGES:
            for reply in received[(party.name, kind)]:
                for array in (a for a in reply.arrays.values() if a.dtype.kind in "iuf"):
                    values = (array.view(np.int64).astype(np.float64) / 2**FRACTION_BITS if array.dtype == np.uint64
                              else array.astype(np.float64).ravel())
                    for target in (own, contribution):
                        if values.size == target.size:
                            assert not np.allclose(values, target, atol=1e-3)
                            assert abs(np.corrcoef(values, target)[0, 1]) < 0.3
                            compared += 1
        assert compared >= 1  # the party's masked training vector was among them


def test_the_secure_mean_equals_plain_fedavg_of_the_same_updates(secure_run):
    fit, _, trained = secure_run
    updates = [trained[p.name][-1] for p in STAGED]
    plain = weighted_average([u for u, _ in updates], [n for _, n in updates])
    precision = len(updates) * 2.0**-FRACTION_BITS / sum(n for _, n in updates)
    assert set(fit.weights) == set(plain)
    for key, value in plain.items():
        np.testing.assert_allclose(fit.weights[key], value, rtol=1e-6, atol=precision)
    assert any(not np.array_equal(fit.weights[k], updates[0][0][k]) for k in plain)  # a mean, not one party's update


def test_a_party_lost_mid_round_is_left_out_of_the_secure_mean(config, schema):
    fit, received, trained = federate(config, schema, secure=True, lose=True)
    kept = [trained[p.name][-1] for p in STAGED if p.name != LOST]
    plain = weighted_average([u for u, _ in kept], [n for _, n in kept])
    for key, value in plain.items():
        np.testing.assert_allclose(fit.weights[key], value, rtol=1e-6, atol=1e-6)
    assert fit.history[-1]["parties"] == 2.0 and fit.history[-1][f"failed.{LOST}"] == 1.0
    assert fit.ledger["missing"] == {LOST: [1]}  # still charged the round it was sent (never under-count)


class RefusesTrainingSetup(PartyWorker):
    """clinic_west refuses the third secure sum it is asked to set up: the first training round's (two DP stages before)."""

    setups = 0

    def handle(self, message_type: str, payload: Payload, state: dict) -> tuple[Payload, dict]:
        if self.party.name == LOST and message_type == keys.SECURE_SETUP:
            RefusesTrainingSetup.setups += 1
            if RefusesTrainingSetup.setups == 3:
                return Payload.from_error(PartyError(f"Party '{LOST}' refuses this secure sum.")), state
        return super().handle(message_type, payload, state)


def test_a_refusal_before_anyone_trained_stops_the_run_with_the_partys_words(config, schema):
    """The parties asked before the refusal only sent keys: nothing was trained, nothing is charged, the error is the party's."""
    with pytest.raises(PartyError, match="refuses this secure sum"):
        run_federation(LocalTransport(STAGED, worker=RefusesTrainingSetup), config=config.replace(secure_aggregation=True),
                       schema=schema)
    assert RefusesTrainingSetup.setups == 3


@pytest.mark.parametrize("option", [{"aggregation": "median"}, {"aggregation": "krum"}, {"update_bits": 8},
                                    {"party_epsilon": 5.0}])
def test_rules_that_need_one_partys_update_are_refused(config, option):
    with pytest.raises(ConfigError, match=f"{next(iter(option))}=.*needs each party's update on the server"):
        config.replace(secure_aggregation=True, **option)


def test_a_value_the_fixed_point_cannot_carry_names_the_party_and_round():
    with pytest.raises(PartyError, match=r"Party 'clinic_north' has model update of training round 3 \('w' × 5000 rows\)"):
        weighted_update("clinic_north", {"w": np.array([1.0, 3e8])}, 5000, 2)
    with pytest.raises(PartyError, match="not finite"):
        weighted_update("clinic_north", {"w": np.array([np.nan])}, 10, 0)
