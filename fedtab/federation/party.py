"""What a party does when a message arrives: read its own table, compute statistics, train locally.

Transport-free, so the Flower ClientApp and the in-process test transport share it. A party's rows
are read here and nowhere else; only statistics and weights go back.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from fedtab.connectors import align, load_party
from fedtab.errors import ConfigError, PartyError
from fedtab.federation import keys
from fedtab.federation.disclosure import error_reply, refuse_evaluation_under_dp
from fedtab.federation.payload import Payload
from fedtab.federation.schema_round import answer_schema_round
from fedtab.models.privacy import TrainingPrivacy
from fedtab.models.registry import create_model
from fedtab.privacy.accountant import PartyAccountant
from fedtab.privacy.encoders import new_noise_seed, private_statistics
from fedtab.privacy.planning import PrivacyPlan
from fedtab.rng import numpy_rng
from fedtab.schema import PartyTable, TableSchema
from fedtab.transformers import StatsRequest, TransformPlan, local_statistics

Weights = dict[str, np.ndarray]
OPTIMIZER = "optim."


@dataclass(frozen=True)
class StagedParty:
    """A party's name, where its table lies on its own machine, and the share of rows it holds out.

    Held-out rows never reach the encoders or the model; they are the party's own fresh rows for
    judging membership risk and utility afterwards.
    """

    name: str
    path: str
    holdout_share: float = 0.0
    seed: int = 0


class PartyWorker:
    """Answers the server's messages for one party."""

    def __init__(self, party: StagedParty) -> None:
        self.party = party

    def handle(self, message_type: str, payload: Payload, state: Weights) -> tuple[Payload, Weights]:
        """Reply to one message; ``state`` is what the party keeps between rounds (optimizer buffers)."""
        try:
            if message_type == keys.HELLO:
                return self._hello(), state
            if message_type == keys.SCHEMA_ROUND:
                return answer_schema_round(self.party.name, self.party.path, payload), state
            if message_type == keys.STATS:
                return self._stats(payload, state)
            if message_type == keys.TRAIN:
                return self._train(payload, state)
            if message_type == keys.EVALUATE:
                refuse_evaluation_under_dp(self.party.name, state)
                return self._evaluate(payload), state
        except Exception as error:  # noqa: BLE001 - every failure leaves as a redacted reply; the full text is logged here
            return error_reply(self.party.name, message_type, error), state
        return Payload.from_error(PartyError(f"Unknown message type '{message_type}'; update fedtab on this party.")), state

    def _hello(self) -> Payload:
        rows = len(_training_and_holdout(self.party, None)[0])
        return Payload(config={keys.PARTY: self.party.name, keys.ROWS: rows})

    def _table(self, schema_json: str) -> PartyTable:
        train, _ = _training_and_holdout(self.party, schema_json)
        return PartyTable(self.party.name, train, TableSchema.from_dict(json.loads(schema_json)))

    def _evaluate(self, payload: Payload) -> Payload:
        """Score the synthetic table (which may travel) against this party's own rows; only scores go back."""
        from fedtab.evaluators import build_context, party_scores

        c = payload.config
        schema_json = str(c[keys.SCHEMA])
        synthetic = pd.read_parquet(io.BytesIO(payload.arrays[keys.SYNTHETIC].tobytes()))
        schema = TableSchema.from_dict(json.loads(schema_json))
        target = str(c[keys.TARGET]) or None
        context = build_context(synthetic, schema=schema, target=target, seed=int(c[keys.RUN + ".seed"]))
        train, holdout = _training_and_holdout(self.party, schema_json)
        scores = party_scores(train, synthetic, context=context, holdout_rows=holdout if len(holdout) else None, party=self.party.name)
        return Payload(arrays=scores)

    def _stats(self, payload: Payload, state: Weights) -> tuple[Payload, Weights]:
        config = dict(payload.config)
        table = self._table(str(config.pop(keys.SCHEMA)))
        stage = str(config.pop(keys.STAGE))
        seed = int(config.pop(keys.RUN + ".seed"))
        plan_json = config.pop(keys.DP_PLAN, None)
        request = StatsRequest(stage=stage, arrays=dict(payload.arrays), config=config)
        if plan_json is None:
            return Payload(arrays=local_statistics(table, request, seed=seed)), state
        plan = PrivacyPlan.from_dict(json.loads(str(plan_json)))
        state = with_noise_seed(state)
        accountant = PartyAccountant.from_state_dict(party_accountant_state(state, self.party.name, plan.accountant))
        stats = private_statistics(table, request, plan=plan, accountant=accountant, noise_seed=noise_seed(state), seed=seed)
        report = accountant.state_dict()
        state = {**state, keys.ACCOUNTANT_STATE: _json_array(report)}
        return Payload(arrays=stats, config={keys.DP_REPORT: json.dumps(report)}), state

    def _train(self, payload: Payload, state: Weights) -> tuple[Payload, Weights]:
        c = payload.config
        plan_json = str(c[keys.PLAN])
        seed = int(c[keys.RUN + ".seed"])
        data = _encoded_rows(self.party, plan_json, seed, keys.DP_NOISE in c)
        model = create_model(str(c[keys.RUN + ".model"]), _plan(plan_json), json.loads(str(c[keys.RUN + ".options"])), seed=seed)
        if keys.DP_NOISE in c:
            state = with_noise_seed(state)
        if keys.DP_RESTORE in c:
            state = restored_accountant(state, str(c[keys.DP_RESTORE]), self.party.name)
        privacy = self._training_privacy(c, state)
        update = model.local_update(
            dict(payload.arrays),
            data,
            epochs=float(c[keys.RUN + ".local_epochs"]),
            batch_size=int(c[keys.RUN + ".batch_size"]),
            round_index=int(c[keys.ROUND]),
            party=self.party.name,
            optimizer_state=_unprefixed(state, OPTIMIZER) or None,
            privacy=privacy,
        )
        metrics = {keys.NUM_EXAMPLES: float(update.num_examples), **update.metrics}
        new_state = {**_prefixed(update.optimizer_state, OPTIMIZER), **_without(state, OPTIMIZER)}
        config: dict = {}
        if update.accountant_state is not None:
            new_state[keys.ACCOUNTANT_STATE] = _json_array(update.accountant_state)
            config[keys.DP_REPORT] = json.dumps(update.accountant_state)
        return Payload(arrays=update.weights, config=config, metrics=metrics), new_state

    def _training_privacy(self, c: dict, state: Weights) -> TrainingPrivacy | None:
        if keys.DP_NOISE not in c:
            return None
        return TrainingPrivacy(
            noise_multiplier=float(c[keys.DP_NOISE]),
            sample_rate=float(c[keys.DP_SAMPLE_RATE]),
            max_grad_norm=float(c[keys.DP_MAX_GRAD_NORM]),
            accountant_state=party_accountant_state(state, self.party.name, str(c[keys.DP_ACCOUNTANT])),
            steps=int(c[keys.DP_STEPS]),
            noise_seed=noise_seed(state),
        )


def party_accountant_state(state: Weights, party: str, accountant: str) -> dict:
    """The party's own accountant: kept in its state across every round and mechanism."""
    if keys.ACCOUNTANT_STATE in state:
        return json.loads(state[keys.ACCOUNTANT_STATE].tobytes().decode())
    return PartyAccountant(party, accountant=accountant).state_dict()


def restored_accountant(state: Weights, restored_json: str, party: str) -> Weights:
    """On resume, continue from the accountant the server's checkpoint kept for this party.

    A party that already holds a longer history in this process (the server stopped after the
    party trained) refuses it: adopting it would forget releases and under-count the party's ε.
    """
    restored = PartyAccountant.from_state_dict(json.loads(restored_json))
    if restored.party != party:
        raise ConfigError(
            f"Party {party!r} was sent the checkpointed accountant of party {restored.party!r} on resume; charging it "
            "would misreport both parties' ε. Resume with the checkpoint this federation wrote."
        )
    if keys.ACCOUNTANT_STATE in state:
        held = PartyAccountant.from_state_dict(party_accountant_state(state, party, restored.accountant))
        shorter = [f"{m} {restored.steps(m)} < {held.steps(m)}" for m in held.mechanisms if restored.steps(m) < held.steps(m)]
        if shorter or held.accountant != restored.accountant:
            raise ConfigError(
                f"Party {party!r} refuses the checkpoint's accountant ({restored.accountant}, {restored.steps()} releases "
                f"in all): it already holds a longer history in this process ({held.accountant}; "
                f"{'; '.join(shorter) or 'another accountant'}), so continuing from the checkpoint would under-count "
                "its ε. Resume from the latest checkpoint, written after this party's last round, or start a fresh run."
            )
    return {**state, keys.ACCOUNTANT_STATE: _json_array(restored.state_dict())}


def held_out_rows(rows: int, holdout_share: float) -> int:
    """How many of a party's ``rows`` it holds out for evaluation (the rest train)."""
    return int(round(holdout_share * rows))


def with_noise_seed(state: Weights) -> Weights:
    """A party-local secret for every DP noise draw, made once and never sent (the run seed is public)."""
    if keys.NOISE_SEED in state:
        return state
    return {**state, keys.NOISE_SEED: np.array([new_noise_seed()], dtype=np.uint64)}


def noise_seed(state: Weights) -> int:
    return int(state[keys.NOISE_SEED][0])


def _json_array(value: object) -> np.ndarray:
    return np.frombuffer(json.dumps(value).encode(), dtype=np.uint8).copy()


def _prefixed(weights: Weights, prefix: str) -> Weights:
    return {f"{prefix}{k}": v for k, v in weights.items()}


def _unprefixed(weights: Weights, prefix: str) -> Weights:
    return {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}


def _without(weights: Weights, prefix: str) -> Weights:
    return {k: v for k, v in weights.items() if not k.startswith(prefix)}


@lru_cache(maxsize=16)
def _read_table(name: str, path: str, kinds: tuple[tuple[str, str], ...] = ()) -> PartyTable:
    """The party's own table through the same connectors the SDK uses (CSV, Parquet, SQL URL), read
    with the run's column kinds once the schema round has settled them (a date column is parsed in
    this party's own format, which need not leave it)."""
    return load_party(name, path, overrides=dict(kinds) or None)


@lru_cache(maxsize=16)
def _aligned_table(name: str, path: str, schema_json: str | None) -> PartyTable:
    if schema_json is None:
        return _read_table(name, path)
    schema = TableSchema.from_dict(json.loads(schema_json))
    return align(_read_table(name, path, tuple((c.name, c.kind.value) for c in schema)), schema)


@lru_cache(maxsize=16)
def _training_and_holdout(party: StagedParty, schema_json: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The party's rows split once, by its own seeded draw, into training rows and held-out rows."""
    frame = _aligned_table(party.name, party.path, schema_json).frame
    held = np.zeros(len(frame), dtype=bool)
    count = held_out_rows(len(frame), party.holdout_share)
    held[numpy_rng(party.seed, "holdout", party.name).choice(len(frame), size=count, replace=False)] = True
    return frame[~held].reset_index(drop=True), frame[held].reset_index(drop=True)


@lru_cache(maxsize=8)
def _plan(plan_json: str) -> TransformPlan:
    return TransformPlan.from_dict(json.loads(plan_json))


@lru_cache(maxsize=16)
def _encoded_rows(party: StagedParty, plan_json: str, seed: int, private: bool = False) -> np.ndarray:
    """Encode once per plan; later rounds reuse the rows (the plan travels with every round). Under DP
    the party fills its own gaps where the plan has no missing span (see ``TransformPlan.imputed``)."""
    plan = _plan(plan_json)
    train, _ = _training_and_holdout(party, json.dumps(plan.schema.to_dict()))
    return plan.encode(plan.imputed(train) if private else train, numpy_rng(seed, "encode", party.name))
