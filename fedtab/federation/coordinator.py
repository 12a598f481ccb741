"""The server's side of a run: statistics rounds fit the plan, training rounds fit the model.

Transport-free: Flower's grid (simulation or deployment) and the in-process test transport both
implement ``Transport``. Round loops, aggregation and history live here once.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from fedtab.config import FedtabConfig
from fedtab.errors import ConfigError, FederationError, FedtabError
from fedtab.federation import keys
from fedtab.federation.aggregation import (ROBUST, party_distances, robust_aggregate, row_count_weights, server_step,
                                           similarity_weights, weighted_average)
from fedtab.federation.checkpoint import CheckpointWriter, TrainingStart, check_resume, ledger_dict, resume_start
from fedtab.federation.party_dp import PartyDP, plan_party_dp
from fedtab.federation.payload import Payload, Replies, failures_of, require_every
from fedtab.federation.screening import UpdateScreen
from fedtab.federation.secure_sum import (SecureSum, charge_lost, check_secure_schema, secure_cost, secure_mean, secure_sum,
                                          secure_threshold, sum_noise)
from fedtab.federation.privacy_run import PrivacyRun, confirm_plans, plan_privacy
from fedtab.federation.round_record import BYTES_RECEIVED, BYTES_SENT, FAILED, REJECTED, ROUND_FIELDS, Progress
from fedtab.federation.schema_round import SchemaDeclaration, schema_round
from fedtab.model_state import ModelState
from fedtab.privacy.planning import ENCODER, TRAINING
from fedtab.models import conditional
from fedtab.models.registry import check_model, create_model, get_model_class, resolved_options
from fedtab.schema import TableSchema
from fedtab.transformers import PlanFitter, StatsRequest, TransformPlan
from fedtab.transformers import protocol

Weights = dict[str, np.ndarray]
AfterTraining = Callable[["Transport", "FederatedFit"], object]
RoundHook = Callable[[int, Weights, list[dict[str, float]], list[str]], None]


class Transport(Protocol):
    """Sends one message per party and returns the replies by party name."""

    @property
    def parties(self) -> dict[str, int]:
        """Party name -> row count, learnt when the federation starts."""

    def exchange(self, message_type: str, payloads: Mapping[str, Payload]) -> Replies | dict[str, Payload]:
        """Replies from the parties that answered in time; those that crashed, disconnected or timed out are
        left out and, in a ``Replies``, named with the reason in ``failures``. A party's refusal (an error
        reply of a FedtabError kind) raises that error here, with the replies so far as ``error.replies``."""


@dataclass(frozen=True)
class FederatedFit:
    """What a run produces, before it becomes a ModelState."""

    plan: TransformPlan
    weights: Weights
    parties: dict[str, int]
    history: list[dict[str, float]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    plan_rounds: int = 0
    model_options: dict = field(default_factory=dict)
    ledger: dict | None = None
    after_training: object = None
    rounds_done: int = 0
    party_weights: dict[str, float] = field(default_factory=dict)
    privacy: dict | None = None
    resumed_at: tuple[int, ...] = ()

    def to_state(self, config: FedtabConfig) -> ModelState:
        """The model file: the config as the run used it, and what a later resume needs."""
        return ModelState(
            plan=self.plan, weights=self.weights, config=config.replace(model_options=self.model_options),
            parties=self.parties, history=self.history, warnings=self.warnings,
            timings={**self.timings, "plan_rounds": float(self.plan_rounds)}, ledger=self.ledger,
            rounds_done=self.rounds_done, party_weights=self.party_weights or None, privacy=self.privacy,
            resumed_at=self.resumed_at,
        )


def run_federation(
    transport: Transport,
    *,
    config: FedtabConfig,
    schema: TableSchema | None = None,
    declaration: SchemaDeclaration | None = None,
    progress: Progress | None = None,
    after_training: AfterTraining | None = None,
    resume: ModelState | None = None,
) -> FederatedFit:
    """Settle the schema (the schema round, unless a test hands one in), fit the plan (or take it from the
    ``resume`` checkpoint), train, and optionally run ``after_training`` (e.g. a federated evaluation) on
    the live federation. With ``config.checkpoint`` set, a checkpoint is written after the plan and after
    every round."""
    parties = dict(transport.parties)
    started = time.perf_counter()
    resumed_at: tuple[int, ...] = ()
    party_dp = plan_party_dp(config, parties)
    if schema is None:
        schema = schema_round(transport, config=config, declaration=declaration)
    check_target(config, schema)
    check_model(config.model, config.model_options, schema, seed=config.seed, private=config.private)
    if resume is None:
        plan, plan_rounds, start, privacy = _fresh_start(transport, config=config, schema=schema, progress=progress)
    else:
        _refuse_party_dp_resume(party_dp)
        check_resume(resume, saved_config(config), parties, schema)
        plan, plan_rounds = resume.plan, int(resume.timings.get("plan_rounds", 0))
        start, privacy = resume_start(resume)
        if privacy is not None:
            confirm_plans(transport, privacy, resume=True)
        resumed_at = (*resume.resumed_at, *([start.rounds_done] if start.rounds_done < config.rounds else []))
    encoders_done = time.perf_counter()
    checkpoint = _checkpoint_writer(config, plan, parties, start, privacy, resumed_at,
                                    {"encoders_s": encoders_done - started, "plan_rounds": float(plan_rounds)}, party_dp)
    if checkpoint is not None and resume is None:
        checkpoint(0, start.weights, [], [])
    weights, history, warnings = train(transport, plan=plan, config=config, start=start, progress=progress, privacy=privacy,
                                       on_round=checkpoint, party_dp=party_dp)
    timings = {"encoders_s": encoders_done - started, "training_s": time.perf_counter() - encoders_done}
    fit = FederatedFit(plan, weights, parties, history, warnings, timings, plan_rounds, model_options(config),
                       ledger_dict(privacy, resumed_at, party_dp), rounds_done=max(config.rounds, start.rounds_done),
                       party_weights=start.party_weights, privacy=None if privacy is None else privacy.to_dict(),
                       resumed_at=resumed_at)
    if after_training is None:
        return fit
    return dataclasses.replace(fit, after_training=after_training(transport, fit))


def _fresh_start(
    transport: Transport, *, config: FedtabConfig, schema: TableSchema, progress: Progress | None
) -> tuple[TransformPlan, int, TrainingStart, PrivacyRun | None]:
    """Plan the noise, fit the encoders (charged once, here) and start training from fresh weights."""
    parties = dict(transport.parties)
    privacy = None
    if config.private:
        releases, selections = PlanFitter.release_plan(schema, pair_target(config))
        privacy = plan_privacy(config, parties, encoder_releases=releases, partition_selections=selections)
        confirm_plans(transport, privacy)
    counted: dict[str, float] = {}
    plan, plan_rounds, marginals = fit_plan(transport, config=config, schema=schema, progress=progress, privacy=privacy,
                                            counted_rows=counted)
    rows = bounded_rows(config, parties, counted)
    start = training_start(config, plan, rows, marginals)
    bounded = [f"Party '{p}' declared {parties[p]} training rows, but its own encoder statistics counted {rows[p]}; "
               f"FedAvg weighs it by {rows[p]}." for p in sorted(parties) if rows[p] < parties[p]]
    return plan, plan_rounds, dataclasses.replace(start, warnings=(*start.warnings, *bounded)), privacy


def bounded_rows(config: FedtabConfig, declared: Mapping[str, int], counted: Mapping[str, float]) -> dict[str, int]:
    """The rows FedAvg weighs each party by: its hello claim, bounded by the rows its own encoder statistics
    counted (exact runs; under DP those counts are noisy and the claim stands). A party claiming 10⁹ rows
    would otherwise take nearly all the weight."""
    if not config.update_checks or config.private:
        return dict(declared)
    return {p: int(min(n, counted[p])) if p in counted else n for p, n in declared.items()}


def training_start(config: FedtabConfig, plan: TransformPlan, parties: Mapping[str, int],
                   marginals: list[dict[str, np.ndarray]]) -> TrainingStart:
    """Round 0: fresh weights and each party's aggregation weight (row counts, or Fed-TGAN's similarity)."""
    names = sorted(parties)
    shares = _aggregation_weights(config, marginals, [parties[p] for p in names], plan)
    weights = create_model(config.model, plan, model_options(config), seed=config.seed, private=config.private).init_weights()
    return TrainingStart(weights, {p: float(w) for p, w in zip(names, shares)})


def saved_config(config: FedtabConfig) -> FedtabConfig:
    """The config as model files and checkpoints keep it: with the model options every party built with."""
    return config.replace(model_options=model_options(config))


def _checkpoint_writer(config: FedtabConfig, plan: TransformPlan, parties: dict[str, int], start: TrainingStart,
                       privacy: PrivacyRun | None, resumed_at: tuple[int, ...], timings: dict[str, float],
                       party_dp: PartyDP | None) -> CheckpointWriter | None:
    if config.checkpoint is None:
        return None
    return CheckpointWriter(config.checkpoint, saved_config(config), plan, parties,
                            start.party_weights, privacy, timings, resumed_at, party_dp)


def _refuse_party_dp_resume(party_dp: PartyDP | None) -> None:
    """Flower's party-level accountant and its secret noise seed are not checkpointed, so such a run cannot continue."""
    if party_dp is not None:
        raise ConfigError(
            "A run with party-level DP (party_epsilon) cannot be resumed: Flower's party-level accountant is not "
            "kept in checkpoints, so the resumed ε would under-count. Rerun it from the start."
        )


def fit_plan(
    transport: Transport,
    *,
    config: FedtabConfig,
    schema: TableSchema,
    progress: Progress | None = None,
    privacy: PrivacyRun | None = None,
    counted_rows: dict[str, float] | None = None,
) -> tuple[TransformPlan, int, list[dict[str, np.ndarray]]]:
    """Ferry the encoder fitter's requests to every party; also keep each party's marginals, and fill
    ``counted_rows`` with the rows each party's summary statistics counted.

    Under DP each party answers through its own Gaussian release (planned by ``privacy``) and the
    server only post-processes the noisy statistics.
    """
    mode: dict[str, object] = (
        {"mode": "exact"} if privacy is None else {"mode": "private", "noise_multiplier": sum_noise(privacy, config)}
    )
    fitter = PlanFitter(
        schema,
        num_components=config.bgm_components,
        sample_cap=config.bgm_sample_cap,
        max_em_rounds=config.bgm_max_rounds,
        max_categories=config.max_categories,
        min_category_count=config.min_category_count,
        seed=config.seed,
        target=pair_target(config) if privacy is not None else None,
        **mode,  # type: ignore[arg-type]
    )
    names = sorted(transport.parties)
    if config.secure_aggregation:
        check_secure_schema(schema)
    schema_json = json.dumps(schema.to_dict())
    per_party_by_stage: dict[str, tuple[StatsRequest, list[dict[str, np.ndarray]]]] = {}
    rounds = 0
    while (request := fitter.next_request()) is not None:
        common = {**request.config, keys.STAGE: request.stage, keys.SCHEMA: schema_json, keys.RUN + ".seed": config.seed}
        per_party = {p: {**common, **({} if privacy is None else privacy.stats_config(p))} for p in names}
        payloads = {p: Payload(arrays=request.arrays, config=per_party[p]) for p in names}
        started = time.perf_counter()
        if config.secure_aggregation:  # the server holds only the sum: one "reply" per stage
            summed = secure_sum(transport, payloads, threshold=secure_threshold(privacy, names),
                                what=f"encoder statistics ({request.stage}, statistics round {rounds + 1})")
            replies, stats, cost = summed.replies, [summed.arrays], secure_cost(summed)
            charge_lost(privacy, summed, request)
        else:
            replies = transport.exchange(keys.STATS, payloads)
            _require_all(replies, names, f"encoder statistics ({request.stage})", rounds)
            stats, cost = [replies[p].arrays for p in names], _stage_cost(replies, time.perf_counter() - started)
            per_party_by_stage[request.stage] = (request, stats)
        if privacy is not None:
            for p in sorted(replies):
                privacy.record_reply(p, str(replies[p].config[keys.DP_REPORT]), mechanism=ENCODER)
        if counted_rows is not None and protocol.ROWS in stats[0] and not config.secure_aggregation:
            counted_rows.update({p: float(np.asarray(s[protocol.ROWS]).ravel()[0]) for p, s in zip(names, stats)})
        fitter.merge(stats)
        rounds += 1
        if progress:
            progress("encoders", rounds, 0, cost)
    plan = fitter.finalize()
    return plan, rounds, party_marginals(per_party_by_stage, len(names))


def _stage_cost(replies: Mapping[str, Payload], seconds: float) -> dict[str, float]:
    """A plain statistics stage's seconds and bytes each way (the progress report's record for the stage)."""
    return {"stage_s": seconds, BYTES_SENT: float(sum(getattr(replies, "sent", {}).values())),
            BYTES_RECEIVED: float(sum(getattr(replies, "received", {}).values()))}


def model_options(config: FedtabConfig) -> dict:
    """The options every party and the sampler build the model with: the user's (and the run's declared
    target) over the model's defaults.

    Whether the build is private is not an option: it is ``config.private``, passed to the model.
    """
    declared = {} if config.target is None else {"target": config.target}
    return resolved_options(config.model, {**config.model_options, **declared})


def pair_target(config: FedtabConfig) -> str | None:
    """The declared target whose 2-way marginals the parties release with the encoder statistics: under DP, when
    the model reads them (DP-SGD's clipped, noised gradients keep the relations with the target worse than the
    column shapes; without DP the model fits them from the rows). Charged to the encoder share."""
    if config.target is None or not config.private:
        return None
    return config.target if get_model_class(config.model).reads_target_pairs(model_options(config)) else None


def check_target(config: FedtabConfig, schema: TableSchema) -> None:
    """The declared target is a categorical column and the model uses one: checked before any statistic leaves."""
    if config.target is None:
        return
    conditional.check_target(schema, config.target)
    if "target" not in get_model_class(config.model).default_options():
        raise ConfigError(f"Model {config.model!r} does not use a declared target (got target {config.target!r}); "
                          "models that do: argn, ctgan. Drop the target or pick such a model.")


def train(
    transport: Transport,
    *,
    plan: TransformPlan,
    config: FedtabConfig,
    start: TrainingStart,
    progress: Progress | None = None,
    privacy: PrivacyRun | None = None,
    on_round: RoundHook | None = None,
    party_dp: PartyDP | None = None,
) -> tuple[Weights, list[dict[str, float]], list[str]]:
    """Training rounds from ``start`` (``training_start`` for a fresh run, a checkpoint's on resume) to ``config.rounds``.

    A party that crashes, disconnects or times out is left out of the round (and asked again in the
    next, with the current global weights: that is how it rejoins); an update that fails the server's
    checks (``UpdateScreen``) is rejected for the round. The round goes on while at least
    ``min_training_parties`` updates remain; below that the run stops with a checkpoint it can resume
    from (``_stop``). A party's refusal (a FedtabError) stops the run the same way.

    ``on_round`` (the checkpoint) sees every finished round before ``progress`` does, so a crash in
    the progress display still leaves that round checkpointed.
    """
    names = sorted(transport.parties)
    weights = start.weights
    static = _run_config(plan, config)
    history, warnings, restore = list(start.history), list(start.warnings), set(start.restore)
    # Under party-level DP every update is clipped to party_clip, which already bounds a long one: no length check there.
    tolerance = None if party_dp is not None else config.norm_tolerance
    screen = UpdateScreen(dict(transport.parties), tolerance, config.update_checks, config.update_bits)
    minimum = min_training_parties(config, len(names))
    for round_index in range(start.rounds_done, config.rounds):
        if party_dp is not None:
            party_dp.check_round(round_index)
        payloads = {p: Payload(arrays=weights, config={**static, **_party_config(config, transport, privacy, restore, p, round_index)})
                    for p in names}
        try:
            summed = _secure_round(transport, payloads, privacy, round_index) if config.secure_aggregation else None
            replies = transport.exchange(keys.TRAIN, payloads) if summed is None else summed.replies
        except FedtabError as refusal:  # a party refused: charge what was released, checkpoint, stop
            _charge_refused(privacy, payloads, refusal, round_index)
            _stop(on_round, privacy, round_index, weights, history, warnings, str(refusal))
            raise
        failed = failures_of(replies, names) if summed is None else dict(summed.failures)
        if privacy is not None:  # a party charged for a round it did not answer rejoins from the server's mirror
            _account_training(privacy, payloads, replies, round_index)
            restore.update(failed)
        answered = [p for p in names if p in replies]
        restore.difference_update(answered)
        # Under secure aggregation no single update reaches the server: the parties screen their own, it checks the sum.
        updates, rejected = screen.screen(weights, replies, answered) if summed is None else (dict.fromkeys(answered), {})
        note = _round_note(round_index, failed, rejected, len(updates), len(names))
        if note:
            warnings.append(note)
        record = {**_round_record(round_index, replies, list(updates)), **_wire_record(replies, failed, rejected, summed)}
        if len(updates) < minimum:
            stop = _below_minimum(round_index, failed, rejected, len(updates), minimum, config.checkpoint)
            _stop(on_round, privacy, round_index, weights, [*history, record], warnings, stop)
            raise FederationError(stop)
        weights = (_aggregate(weights, updates, start.party_weights, party_dp, round_index, config) if summed is None else
                   server_step(weights, secure_mean(summed, weights, transport.parties, round_index), config.server_lr))
        history.append(record)
        if on_round:
            on_round(round_index + 1, weights, history, warnings)
        if progress:
            progress("training", round_index + 1, config.rounds, record)
    return weights, history, warnings + (party_dp.warnings if party_dp is not None else [])


def _run_config(plan: TransformPlan, config: FedtabConfig) -> dict:
    """What every training round tells every party: the plan, the model and its options, the local work's size."""
    model = create_model(config.model, plan, model_options(config), seed=config.seed, private=config.private)
    return {
        keys.PLAN: json.dumps(plan.to_dict()),
        keys.RUN + ".seed": config.seed,
        keys.RUN + ".model": config.model,
        keys.RUN + ".options": json.dumps(model.options),
        keys.RUN + ".local_epochs": float(config.local_epochs),
        keys.RUN + ".batch_size": config.batch_size,
        **({keys.UPDATE_BITS: config.update_bits} if config.update_bits != 32 else {}),
        keys.RUN + ".device": config.device,
    }


def _party_config(config: FedtabConfig, transport: Transport, privacy: PrivacyRun | None, restore: set[str], party: str,
                  round_index: int) -> dict:
    """What this round tells one party beyond ``_run_config``: the round, its DP-SGD settings, its share of the work."""
    return {keys.ROUND: round_index, **_dp_config(privacy, party, round_index, config),
            **_local_work(config, transport.parties[party], sum(transport.parties.values())),
            **_restore_config(privacy, restore, party)}


def _charge_refused(privacy: PrivacyRun | None, payloads: Mapping[str, Payload], refusal: FedtabError, round_index: int) -> None:
    """A round a party refused still charges the parties that answered or were asked and failed."""
    partial = getattr(refusal, "replies", None)
    if privacy is not None and partial is not None:
        asked = [*partial, *getattr(partial, "failures", {})]
        _account_training(privacy, {p: payloads[p] for p in asked}, partial, round_index)


def _secure_round(transport: Transport, payloads: Mapping[str, Payload], privacy: PrivacyRun | None,
                  round_index: int) -> SecureSum:
    """A training round as a secure sum: each party masks its rows·weights; the server holds only their sum."""
    marked = {p: Payload(arrays=m.arrays, config={**m.config, keys.SA_FEDAVG: 1}) for p, m in payloads.items()}
    try:
        return secure_sum(transport, marked, threshold=secure_threshold(privacy, sorted(payloads)),
                          what=f"model updates (training round {round_index + 1})")
    except FedtabError as refusal:
        partial = getattr(refusal, "replies", None) or {}
        if privacy is not None and any(keys.DP_REPORT not in r.config for r in partial.values()):
            refusal.replies = None  # type: ignore[attr-defined]  # refused before the collect step: nobody trained
        raise


def min_training_parties(config: FedtabConfig, parties: int) -> int:
    """Usable updates a training round needs: ``config.min_parties``, or by default max(2, ⌈P/2⌉)
    (never more than P): a round averaged over fewer is mostly one party's data."""
    wanted = config.min_parties if config.min_parties is not None else max(2, -(-parties // 2))
    return max(1, min(wanted, parties))


def _aggregate(weights: Weights, updates: Mapping[str, Weights], party_weights: Mapping[str, float],
               party_dp: PartyDP | None, round_index: int, config: FedtabConfig) -> Weights:
    """FedAvg with the run's party weights, or a robust rule (each party once), then the server learning
    rate; under party-level DP, clipped equal-weight updates plus noise."""
    answered = list(updates)
    if party_dp is not None:
        return party_dp.aggregate(weights, dict(updates), round_index)
    if config.aggregation in ROBUST:
        return server_step(weights, robust_aggregate(config.aggregation, [updates[p] for p in answered]), config.server_lr)
    share = np.array([party_weights[p] for p in answered])
    return server_step(weights, weighted_average([updates[p] for p in answered], share), config.server_lr)


def _round_note(round_index: int, failed: Mapping[str, str], rejected: Mapping[str, str], used: int, parties: int) -> str:
    """The round's warning: who failed and who was rejected, and why (empty when every party's update was used)."""
    parts = [f"parties {sorted(failed)} did not reply (" + "; ".join(f"'{p}': {why}" for p, why in failed.items()) + ")"] if failed else []
    parts += [f"party '{p}' was rejected: {why}" for p, why in sorted(rejected.items())]
    if not parts:
        return ""
    return f"Round {round_index + 1}: " + "; ".join(parts) + f"; aggregated the {used} of {parties} parties left."


def _below_minimum(round_index: int, failed: Mapping[str, str], rejected: Mapping[str, str], used: int, minimum: int,
                   checkpoint: str | None) -> str:
    lost = {**failed, **rejected}
    named = "; ".join(f"'{p}': {why}" for p, why in sorted(lost.items()))
    resume = (f"Its checkpoint '{checkpoint}' can be resumed (--resume) once those parties are back"
              if checkpoint else "Set --checkpoint to be able to resume such a run")
    return (f"Training round {round_index + 1} stopped the run: only {used} usable update{'s' if used != 1 else ''}, "
            f"the minimum is {minimum} (min_parties). Lost: {named}. {resume}, or lower --min-parties.")


def _stop(on_round: RoundHook | None, privacy: PrivacyRun | None, round_index: int, weights: Weights,
          history: list[dict[str, float]], warnings: list[str], why: str) -> None:
    """Checkpoint a stopped round so the run can resume. Under DP the round's releases were charged (the
    parties' own records hold them), so it counts as done with the weights unchanged: a resume continues
    from the next round on the planned schedule. Without DP the round is simply run again."""
    if on_round is None:
        return
    done = round_index + 1 if privacy is not None else round_index
    kept = history if privacy is not None else history[:round_index]
    on_round(done, weights, kept, [*warnings, f"Round {round_index + 1}: stopped: {why}"])


def _wire_record(replies: Mapping[str, Payload], failed: Mapping[str, str], rejected: Mapping[str, str],
                 summed: SecureSum | None = None) -> dict[str, float]:
    """Bytes on the wire this round (serialized payloads, per party and in total; a secure round's four exchanges in
    total only), and who failed or was rejected."""
    sent, received = getattr(replies, "sent", {}), getattr(replies, "received", {})
    if summed is not None:
        sent, received = {"": summed.sent}, {"": summed.received}
    record: dict[str, float] = {}
    if sent or received:
        record.update({BYTES_SENT: float(sum(sent.values())), BYTES_RECEIVED: float(sum(received.values()))})
        record.update({f"{BYTES_SENT}.{p}": float(n) for p, n in sorted(sent.items()) if p})
        record.update({f"{BYTES_RECEIVED}.{p}": float(n) for p, n in sorted(received.items()) if p})
    record.update({f"{FAILED}.{p}": 1.0 for p in failed})
    record.update({f"{REJECTED}.{p}": 1.0 for p in rejected})
    return record


def party_marginals(by_stage: Mapping[str, tuple[StatsRequest, list[dict[str, np.ndarray]]]], parties: int) -> list[dict[str, np.ndarray]]:
    """Each party's per-column distribution, read off the statistics it already sent for the encoders.

    Categorical columns: counts over the union of the labels parties reported; numerical columns:
    the fine histogram on the shared global bins. Fed-TGAN's similarity weights compare these.
    """
    out: list[dict[str, np.ndarray]] = [{} for _ in range(parties)]
    if protocol.STAGE_SUMMARY in by_stage:
        request, stats = by_stage[protocol.STAGE_SUMMARY]
        for j, column in enumerate(request.config.get(protocol.CFG_DISCRETE, [])):
            per_party = [dict(zip(s[protocol.CAT_LABELS][j], s[protocol.CAT_COUNTS][j])) for s in stats]
            labels = sorted({label for counts in per_party for label in counts if label != ""})
            for k, counts in enumerate(per_party):
                out[k][column] = np.array([counts.get(label, 0.0) for label in labels])
    if protocol.STAGE_HISTOGRAM in by_stage:
        request, stats = by_stage[protocol.STAGE_HISTOGRAM]
        for j, column in enumerate(request.config.get(protocol.CFG_NUMERICAL, [])):
            for k, s in enumerate(stats):
                out[k][column] = np.asarray(s[protocol.HIST_COUNTS][j], dtype=np.float64)
    return out


def _aggregation_weights(config: FedtabConfig, marginals: list[dict[str, np.ndarray]], rows: list[int], plan: TransformPlan) -> np.ndarray:
    if config.aggregation not in ("similarity", "similarity-softmax") or not marginals:
        return row_count_weights(rows)
    kinds = {c.name: ("categorical" if c.kind.value in ("categorical", "boolean") else "numerical") for c in plan.schema if c.name in marginals[0]}
    distances = party_distances(marginals, kinds)
    return similarity_weights(distances, rows, softmax=config.aggregation == "similarity-softmax")


def _local_work(config: FedtabConfig, rows: int, total_rows: int) -> dict[str, float | int]:
    """Each party's batch as its share of the run's batch, or ``local_steps`` as epochs of its rows.

    With ``batch_size · rows / all rows`` every party takes a central epoch's steps per local epoch
    and the row-weighted average moves about as central training at ``batch_size`` does (FedAvg of
    small steps is one step on the union's batch). At the full batch, K equal parties took K× fewer
    sequential steps than a central fit (Adult, 5 IID parties: TSTR ROC-AUC 0.52 against 0.84).
    Not under DP: there the privacy plan fixes each party's batch and steps.
    """
    if config.local_steps is not None:
        return {keys.RUN + ".local_epochs": config.local_steps * min(config.batch_size, max(rows, 1)) / max(rows, 1)}
    if config.private or total_rows <= rows:
        return {}
    return {keys.RUN + ".batch_size": max(2, round(config.batch_size * rows / total_rows))}


def _dp_config(privacy: PrivacyRun | None, party: str, round_index: int, config: FedtabConfig) -> dict:
    return {} if privacy is None else privacy.training_config(party, round_index, config.rounds, config.max_grad_norm)


def _restore_config(privacy: PrivacyRun | None, restore: set[str], party: str) -> dict[str, str]:
    """On resume, the server's mirror of the party's accountant, to continue from until the party has answered."""
    if privacy is None or party not in restore:
        return {}
    return {keys.DP_RESTORE: json.dumps(privacy.accountants[party].state_dict())}


def _account_training(privacy: PrivacyRun, payloads: Mapping[str, Payload], replies: Mapping[str, Payload],
                      round_index: int) -> None:
    """Mirror each party's accountant; a silent party is charged the steps it was sent (never under-count),
    and the ledger names the round it was charged for without answering."""
    for party, payload in payloads.items():
        steps = int(payload.config[keys.DP_STEPS])
        if party in replies:
            privacy.record_reply(party, str(replies[party].config[keys.DP_REPORT]), mechanism=TRAINING, expected_steps=steps)
        else:
            privacy.charge_unreported(party, steps, round_index + 1)


def _round_record(round_index: int, replies: Mapping[str, Payload], answered: list[str]) -> dict[str, float]:
    """Every metric the parties reported, averaged by their rows; the plugin names them."""
    rows = np.array([replies[p].metrics.get(keys.NUM_EXAMPLES, 0.0) for p in answered])
    record: dict[str, float] = dict(zip(ROUND_FIELDS, (float(round_index + 1), float(len(answered)))))
    reported = sorted({k for p in answered for k in replies[p].metrics} - {keys.NUM_EXAMPLES, *ROUND_FIELDS})
    for name in reported:
        values = np.array([replies[p].metrics.get(name, np.nan) for p in answered], dtype=np.float64)
        finite = np.isfinite(values)
        if finite.any():
            share = rows[finite]
            record[name] = float(np.average(values[finite], weights=share) if share.sum() > 0 else values[finite].mean())
    return record


def _require_all(replies: Mapping[str, Payload], names: list[str], what: str, round_index: int) -> None:
    require_every(replies, names, f"{what} (statistics round {round_index + 1})",
                  "every party's statistics are needed for the encoders.")
