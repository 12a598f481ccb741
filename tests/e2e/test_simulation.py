"""Real Flower simulation: what parties send is only statistics and weights, and it matches the reference engine."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from fedtab import FederatedSynthesizer
from fedtab.evaluation_run import EvaluationRequest
from fedtab.federation import keys

pytestmark = pytest.mark.slow

# Odd sizes, so a payload dimension equal to a party's row count cannot be a coincidence; each party
# holds 20 % of them out for the evaluation, and trains on the rest.
PARTY_ROWS = {"clinic_north": 413, "clinic_south": 137, "clinic_west": 263}
TRAINING_ROWS = {name: rows - round(0.2 * rows) for name, rows in PARTY_ROWS.items()}


@pytest.fixture(scope="module")
def uneven_parties(demo_frames) -> dict[str, pd.DataFrame]:
    return {name: demo_frames[name].iloc[:rows].reset_index(drop=True) for name, rows in PARTY_ROWS.items()}


@pytest.fixture(scope="module")
def simulated(uneven_parties, small_config):
    sent: dict[tuple[str, int], dict[str, object]] = defaultdict(dict)
    counters: dict[tuple[str, str], int] = defaultdict(int)

    def tap(party: str, message_type: str, payload) -> None:
        index = counters[(party, message_type)]
        counters[(party, message_type)] += 1
        sent[(message_type, index)][party] = payload

    synthesizer = FederatedSynthesizer(small_config, engine="simulation").fit(
        uneven_parties, tap=tap, evaluate=EvaluationRequest(target="income", rows=300)
    )
    return synthesizer, sent


def test_every_party_answered_every_round(simulated, small_config):
    _, sent = simulated
    train_rounds = [k for k in sent if k[0] == keys.TRAIN]
    assert len(train_rounds) == small_config.rounds
    assert all(set(replies) == set(PARTY_ROWS) for replies in sent.values())


def test_no_payload_grows_with_a_partys_rows(simulated):
    """Every party's reply to the same message has the same keys and shapes, whatever its row count."""
    _, sent = simulated
    for (message_type, index), replies in sent.items():
        shapes = {party: {k: v.shape for k, v in payload.arrays.items()} for party, payload in replies.items()}
        first = next(iter(shapes.values()))
        assert all(s == first for s in shapes.values()), (message_type, index, shapes)
        for party, payload in replies.items():
            for key, array in payload.arrays.items():
                assert PARTY_ROWS[party] not in array.shape, (message_type, key, array.shape)
                assert TRAINING_ROWS[party] not in array.shape, (message_type, key, array.shape)
            assert set(payload.config) <= {keys.PARTY, keys.ROWS, keys.RELEASED_SCHEMA}, payload.config
            if keys.RELEASED_SCHEMA in payload.config:  # the schema round: names and kinds, never a note
                released = json.loads(str(payload.config[keys.RELEASED_SCHEMA]))
                assert all(column["note"] == "" for column in released["schema"]["columns"])


def test_training_replies_are_weights_only(simulated):
    synthesizer, sent = simulated
    global_weights = synthesizer.state_.weights
    for (message_type, _), replies in sent.items():
        if message_type != keys.TRAIN:
            continue
        for payload in replies.values():
            assert {k: v.shape for k, v in payload.arrays.items()} == {k: v.shape for k, v in global_weights.items()}
            assert set(payload.metrics) == {keys.NUM_EXAMPLES, "loss_g", "loss_d", "steps"}


def test_evaluation_ran_on_the_federation_with_held_out_rows(simulated):
    synthesizer, sent = simulated
    assert synthesizer.state_.parties == TRAINING_ROWS
    assert all(set(replies) == set(PARTY_ROWS) for (kind, _), replies in sent.items() if kind == keys.EVALUATE)
    report = synthesizer.report_
    assert report.mode == "federated" and report.parties == 3
    assert report.rows["holdout"] == sum(PARTY_ROWS.values()) - sum(TRAINING_ROWS.values())
    assert {v.area for v in report.verdicts} >= {"fidelity", "utility", "privacy"}


def test_simulation_matches_the_in_process_engine(simulated, uneven_parties, small_config):
    synthesizer, _ = simulated
    reference = FederatedSynthesizer(small_config.replace(holdout_share=0.2), engine="local").fit(uneven_parties)
    for key, value in reference.state_.weights.items():
        np.testing.assert_array_equal(synthesizer.state_.weights[key], value, err_msg=key)
    pd.testing.assert_frame_equal(synthesizer.sample(200, seed=1), reference.sample(200, seed=1))
