"""A hostile server sends its own candidate rows as the "synthetic" table to evaluate: without DP the
per-row distances it gets back read off which candidates a party holds; after a DP run every party
refuses the message, whatever the message says about privacy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fedtab import FedtabConfig
from fedtab.errors import ConfigError
from fedtab.evaluation_run import evaluation_payload
from fedtab.federation import keys
from fedtab.federation.coordinator import FederatedFit, Transport, run_federation
from fedtab.federation.local import LocalTransport
from fedtab.federation.schema_round import SchemaDeclaration
from fedtab.synthesizer import stage_parties
from fedtab.connectors import load_party

SMALL = {"embedding_dim": 16, "generator_dims": [32], "discriminator_dims": [32]}
CANDIDATES = 20


def hostile_run(demo_frames, tmp_path, epsilon: float | None) -> tuple[pd.DataFrame, dict[str, object]]:
    """Train, then send 20 member rows and 20 rows no party holds as the 'synthetic' table, party by party."""
    north = demo_frames["clinic_north"].iloc[: 300 + CANDIDATES]
    members, outsiders = north.iloc[:CANDIDATES], north.iloc[300:]
    frames = {"clinic_north": north.iloc[:300], "clinic_south": demo_frames["clinic_south"].iloc[:300]}
    candidates = pd.concat([members, outsiders], ignore_index=True)
    answers: dict[str, object] = {}

    def attack(transport: Transport, fit: FederatedFit) -> None:
        payload = evaluation_payload(candidates, fit.plan.schema, target=None, seed=0)
        for party in sorted(fit.parties):
            try:
                answers[party] = transport.exchange(keys.EVALUATE, {party: payload})[party]
            except ConfigError as refusal:
                answers[party] = refusal

    staged = stage_parties([load_party(n, f) for n, f in frames.items()], tmp_path, holdout_share=0.2)
    config = FedtabConfig(model="ctgan", rounds=1, local_epochs=1.0, batch_size=100, seed=0, epsilon=epsilon, model_options=SMALL)
    run_federation(LocalTransport(staged), config=config, declaration=SchemaDeclaration(), after_training=attack)
    return candidates, answers


def test_without_dp_the_scores_read_off_membership(demo_frames, tmp_path):
    """Positive control: the copy flags and the closest distances name exactly the rows a party holds."""
    _, answers = hostile_run(demo_frames, tmp_path, epsilon=None)
    # the copy flag covers every training row; the holdout distances every held-out row (60 of 60 here)
    held = np.max([np.maximum(answers[p].arrays["max:privacy/copy_of_train"],
                              answers[p].arrays["smallest:privacy/holdout_top2"][:, 0] == 0) for p in answers], axis=0)
    assert held[:CANDIDATES].all() and not held[CANDIDATES:].any(), held  # membership read off for 40 of 40


def test_after_a_dp_run_every_party_refuses_the_candidate_table(demo_frames, tmp_path):
    _, answers = hostile_run(demo_frames, tmp_path, epsilon=10.0)
    assert set(answers) == {"clinic_north", "clinic_south"}
    for party, answer in answers.items():
        assert isinstance(answer, ConfigError), party
        assert f"Party {party!r} refuses federated evaluation" in str(answer)
        assert "fedtab evaluate" in str(answer)


def test_the_sdk_refuses_evaluation_with_epsilon_before_anything_is_sent(demo_frames):
    from fedtab import FederatedSynthesizer
    from fedtab.evaluation_run import EvaluationRequest

    sent: list[str] = []
    config = FedtabConfig(model="ctgan", rounds=1, epsilon=1.0, model_options=SMALL)
    with pytest.raises(ConfigError, match="refused under differential privacy"):
        FederatedSynthesizer(config, engine="local").fit(demo_frames, evaluate=EvaluationRequest(), tap=lambda *a: sent.append(a[1]))
    assert sent == []


def test_a_party_that_requires_dp_refuses_evaluation_and_answers_the_schema_round_under_dp(demo_frames, tmp_path):
    """Its own policy decides, even when a server skips every DP message and claims a plain run."""
    import json

    from fedtab.federation.party import PartyWorker, StagedParty
    from fedtab.federation.payload import Payload
    from fedtab.privacy.policy import PartyPolicy

    path = tmp_path / "a.parquet"
    frame = demo_frames["clinic_west"].iloc[:200].copy()
    frame.loc[frame.index[:5], "age"] = None
    frame.to_parquet(path, index=False)
    strict, plain = (PartyWorker(StagedParty("clinic_a", str(path), policy=PartyPolicy(epsilon=3.0 if flag else None, require_dp=flag))) for flag in (True, False))
    payload = evaluation_payload(frame, load_party("clinic_a", frame).schema, target=None, seed=0)
    reply, _ = strict.handle(keys.EVALUATE, payload, {})
    assert reply.config[keys.ERROR_KIND] == "ConfigError" and "refuses federated evaluation" in str(reply.config[keys.ERROR_MESSAGE])
    assert keys.ERROR_KIND not in plain.handle(keys.EVALUATE, payload, {})[0].config  # positive control: plain answers

    ask = Payload(config={keys.DECLARED: SchemaDeclaration().to_json(), keys.PRIVATE_RUN: False})
    released = {name: json.loads(str(w.handle(keys.SCHEMA_ROUND, ask, {})[0].config[keys.RELEASED_SCHEMA]))["schema"]
                for name, w in (("strict", strict), ("plain", plain))}
    age = {name: next(c for c in schema["columns"] if c["name"] == "age") for name, schema in released.items()}
    assert age["plain"]["has_missing"] and age["plain"]["is_integer"]  # exact facts without DP
    assert not age["strict"]["has_missing"] and not age["strict"]["is_integer"]  # not released under DP's rules
