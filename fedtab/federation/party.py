"""What a party does when a message arrives: read its own table, compute statistics, train locally.

Transport-free, so the Flower ClientApp and the in-process test transport share it. A party's rows
are read here and nowhere else; only statistics and weights go back.
"""

from __future__ import annotations

import io
import json
from functools import lru_cache

import numpy as np
import pandas as pd

from fedtab.errors import PartyError, PrivacyBudgetError
from fedtab.federation import keys
from fedtab.federation.compression import compress_update
from fedtab.federation.disclosure import error_reply, refuse_evaluation_under_dp
from fedtab.federation.parties import StagedParty, answer, answers_lightly, training_and_holdout
from fedtab.federation.parties import held_out_rows as held_out_rows  # the SDK imports it from here
from fedtab.federation.party_guard import PartyGuard
from fedtab.federation.payload import Payload
from fedtab.federation import secure_sum
from fedtab.federation.secure_sum import SumContext
from fedtab.models.privacy import TrainingPrivacy
from fedtab.models.registry import create_model
from fedtab.privacy.accountant import PartyAccountant
from fedtab.privacy.distributed import check_sum_covers
from fedtab.privacy.encoders import new_noise_seed, private_statistics
from fedtab.privacy.planning import PrivacyPlan
from fedtab.privacy.policy import check_release, refuse_without_plan
from fedtab.rng import numpy_rng
from fedtab.schema import PartyTable, TableSchema
from fedtab.transformers import StatsRequest, TransformPlan, local_statistics

Weights = dict[str, np.ndarray]
OPTIMIZER = "optim."


class PartyWorker:
    """Answers the server's messages for one party."""

    def __init__(self, party: StagedParty) -> None:
        self.party = party

    def handle(self, message_type: str, payload: Payload, state: Weights) -> tuple[Payload, Weights]:
        """Reply to one message; ``state`` is what the party keeps between rounds (optimizer buffers)."""
        try:
            if answers_lightly(self.party, message_type):  # greeting and schema round (``parties``)
                return answer(self.party, message_type, payload, state)
            if message_type == keys.CONSENT:
                return self._consent(payload), state
            if message_type == keys.STATS:
                return self._stats(payload, state)
            if message_type in keys.SECURE_MESSAGES:
                return secure_sum.answer(self.party.name, message_type, payload, state, self._summed)
            if message_type == keys.TRAIN:
                return self._train(payload, state)
            if message_type == keys.EVALUATE:
                refuse_evaluation_under_dp(self.party.name, state, require_dp=self.party.policy.require_dp)
                return self._evaluate(payload), state
        except Exception as error:  # noqa: BLE001 - every failure leaves as a redacted reply; the full text is logged here
            return error_reply(self.party.name, message_type, error), state
        return Payload.from_error(PartyError(f"Unknown message type '{message_type}'; update fedtab on this party.")), state

    def _table(self, schema_json: str) -> PartyTable:
        train, _ = training_and_holdout(self.party, schema_json)
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
        train, holdout = training_and_holdout(self.party, schema_json)
        scores = party_scores(train, synthetic, context=context, holdout_rows=holdout if len(holdout) else None, party=self.party.name)
        return Payload(arrays=scores)

    def _consent(self, payload: Payload) -> Payload:
        """Accept or refuse the server's plan before any party releases anything (nothing is read or charged)."""
        plan = PrivacyPlan.from_dict(json.loads(str(payload.config[keys.DP_PLAN])))
        restore = str(payload.config[keys.DP_RESTORE]) if keys.DP_RESTORE in payload.config else None
        self._guard().accountant({}, plan, str(payload.config.get(keys.DP_RUN, "")), restore_json=restore)
        return Payload(config={keys.PARTY: self.party.name})

    def _stats(self, payload: Payload, state: Weights, secure: SumContext | None = None) -> tuple[Payload, Weights]:
        """The party's statistics for one stage; ``secure``: they go into a secure sum (``secure_sum``)."""
        config = dict(payload.config)
        stage = str(config.pop(keys.STAGE))
        plan_json, run_id = config.pop(keys.DP_PLAN, None), str(config.pop(keys.DP_RUN, ""))
        if plan_json is None:
            refuse_without_plan(self.party.policy, self.party.name, f"'{stage}' statistics")
        table = self._table(str(config.pop(keys.SCHEMA)))
        seed = int(config.pop(keys.RUN + ".seed"))
        request = StatsRequest(stage=stage, arrays=dict(payload.arrays), config=config)
        if plan_json is None:
            return Payload(arrays=local_statistics(table, request, seed=seed)), state
        plan = PrivacyPlan.from_dict(json.loads(str(plan_json)))
        if secure is not None:
            check_sum_covers(plan, parties=len(secure.parties), threshold=secure.threshold, party=self.party.name)
        state = with_noise_seed(state)
        guard = self._guard()
        accountant = guard.accountant(state, plan, run_id)
        stats = private_statistics(table, request, plan=plan, accountant=accountant, noise_seed=noise_seed(state), seed=seed,
                                   secure=secure is not None)
        check_release(plan, accountant, f"'{stage}' statistics")
        state = guard.keep(state, accountant, run_id)
        return Payload(arrays=stats, config={keys.DP_REPORT: json.dumps(accountant.state_dict())}), state

    def _summed(self, payload: Payload, state: Weights, secure: SumContext) -> tuple[Payload, Weights]:
        """What this party enters a secure sum with: a stage's statistics, or a training round's rows·weights."""
        if keys.SA_FEDAVG not in payload.config:
            return self._stats(payload, state, secure)
        config = {k: v for k, v in payload.config.items() if k != keys.SA_FEDAVG}
        if int(config.get(keys.UPDATE_BITS, 32)) != 32:
            raise PartyError(f"Party '{self.party.name}' refuses compressed updates inside a secure sum: each party's "
                             "quantiser differs, so they cannot be summed. Drop --update-bits or --secure-aggregation.")
        reply, state = self._train(Payload(arrays=payload.arrays, config=config), state)
        rows = int(reply.metrics[keys.NUM_EXAMPLES])
        arrays = secure_sum.weighted_update(self.party.name, reply.arrays, rows, int(config[keys.ROUND]))
        return Payload(arrays=arrays, config=reply.config, metrics=reply.metrics), state

    def _train(self, payload: Payload, state: Weights) -> tuple[Payload, Weights]:
        c = payload.config
        plan_json = str(c[keys.PLAN])
        seed = int(c[keys.RUN + ".seed"])
        if keys.DP_NOISE in c:
            state = with_noise_seed(state)
        privacy, guarded = self._training_privacy(c, state)
        data = _encoded_rows(self.party, plan_json, seed, keys.DP_NOISE in c)
        model = create_model(str(c[keys.RUN + ".model"]), _plan(plan_json), json.loads(str(c[keys.RUN + ".options"])),
                             seed=seed, private=privacy is not None, device=str(c.get(keys.RUN + ".device", "cpu")))
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
        if guarded is not None:
            guard, plan, run_id = guarded
            spent = PartyAccountant.from_state_dict(update.accountant_state or {})
            check_release(plan, spent, f"training round {int(c[keys.ROUND]) + 1}")
            new_state = guard.keep(new_state, spent, run_id)
            config[keys.DP_REPORT] = json.dumps(update.accountant_state)
        arrays = compress_update(payload.arrays, update.weights, int(c.get(keys.UPDATE_BITS, 32)))
        return Payload(arrays=arrays, config=config, metrics=metrics), new_state

    def _training_privacy(self, c: dict, state: Weights) -> tuple[TrainingPrivacy | None, tuple | None]:
        """The round's DP-SGD settings, refused unless the party's policy and accepted plan cover them."""
        what = f"training round {int(c[keys.ROUND]) + 1}"
        if keys.DP_NOISE not in c:
            refuse_without_plan(self.party.policy, self.party.name, what)
            return None, None
        if keys.DP_PLAN not in c:
            raise PrivacyBudgetError(f"Party {self.party.name!r} refuses {what}: the server sent DP-SGD settings without "
                                     "the privacy plan they come from. Run the server and parties on one fedtab version.")
        plan = PrivacyPlan.from_dict(json.loads(str(c[keys.DP_PLAN])))
        run_id = str(c.get(keys.DP_RUN, ""))
        guard = self._guard()
        restore = str(c[keys.DP_RESTORE]) if keys.DP_RESTORE in c else None
        accountant = guard.accountant(state, plan, run_id, restore_json=restore)
        privacy = TrainingPrivacy(
            noise_multiplier=float(c[keys.DP_NOISE]),
            sample_rate=float(c[keys.DP_SAMPLE_RATE]),
            max_grad_norm=float(c[keys.DP_MAX_GRAD_NORM]),
            accountant_state=accountant.state_dict(),
            steps=int(c[keys.DP_STEPS]),
            noise_seed=noise_seed(state),
        )
        preview = accountant.copy()
        preview.record_sgd(noise_multiplier=privacy.noise_multiplier, sample_rate=privacy.sample_rate,
                           steps=privacy.steps_for(float(c[keys.RUN + ".local_epochs"])))
        check_release(plan, preview, what)
        return privacy, (guard, plan, run_id)

    def _guard(self) -> PartyGuard:
        rows = len(training_and_holdout(self.party, None)[0])
        return PartyGuard(self.party.name, self.party.policy, rows, self.party.state_dir)


def with_noise_seed(state: Weights) -> Weights:
    """A party-local secret for every DP noise draw, made once and never sent (the run seed is public)."""
    if keys.NOISE_SEED in state:
        return state
    return {**state, keys.NOISE_SEED: np.array([new_noise_seed()], dtype=np.uint64)}


def noise_seed(state: Weights) -> int:
    return int(state[keys.NOISE_SEED][0])


def _prefixed(weights: Weights, prefix: str) -> Weights:
    return {f"{prefix}{k}": v for k, v in weights.items()}


def _unprefixed(weights: Weights, prefix: str) -> Weights:
    return {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}


def _without(weights: Weights, prefix: str) -> Weights:
    return {k: v for k, v in weights.items() if not k.startswith(prefix)}


@lru_cache(maxsize=8)
def _plan(plan_json: str) -> TransformPlan:
    return TransformPlan.from_dict(json.loads(plan_json))


@lru_cache(maxsize=16)
def _encoded_rows(party: StagedParty, plan_json: str, seed: int, private: bool = False) -> np.ndarray:
    """Encode once per plan; later rounds reuse the rows (the plan travels with every round). Under DP
    the party fills its own gaps where the plan has no missing span (see ``TransformPlan.imputed``)."""
    plan = _plan(plan_json)
    train, _ = training_and_holdout(party, json.dumps(plan.schema.to_dict()))
    return plan.encode(plan.imputed(train) if private else train, numpy_rng(seed, "encode", party.name))
