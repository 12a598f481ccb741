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
from fedtab.errors import FederationError
from fedtab.federation import keys
from fedtab.federation.aggregation import party_distances, row_count_weights, similarity_weights, weighted_average
from fedtab.federation.party_dp import PartyDP, plan_party_dp
from fedtab.federation.payload import Payload
from fedtab.federation.privacy_run import PrivacyRun, plan_privacy
from fedtab.privacy.ledger import PrivacyLedger
from fedtab.privacy.planning import ENCODER, TRAINING
from fedtab.models.registry import create_model
from fedtab.schema import TableSchema
from fedtab.transformers import PlanFitter, StatsRequest, TransformPlan
from fedtab.transformers import protocol

Weights = dict[str, np.ndarray]
Progress = Callable[[str, int, int, Mapping[str, float]], None]
AfterTraining = Callable[["Transport", "FederatedFit"], object]


class Transport(Protocol):
    """Sends one message per party and returns the replies by party name."""

    @property
    def parties(self) -> dict[str, int]:
        """Party name -> row count, learnt when the federation starts."""

    def exchange(self, message_type: str, payloads: Mapping[str, Payload]) -> dict[str, Payload]:
        """Replies from the parties that answered; raise FederationError if a reply is an error."""


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


def run_federation(
    transport: Transport,
    *,
    config: FedtabConfig,
    schema: TableSchema,
    progress: Progress | None = None,
    after_training: AfterTraining | None = None,
) -> FederatedFit:
    """Fit the plan, train, and optionally run ``after_training`` (e.g. a federated evaluation) on the live federation."""
    parties = dict(transport.parties)
    started = time.perf_counter()
    privacy = None
    if config.private:
        releases, selections = PlanFitter.release_plan(schema)
        privacy = plan_privacy(config, parties, encoder_releases=releases, partition_selections=selections)
    party_dp = plan_party_dp(config, parties)
    plan, plan_rounds, marginals = fit_plan(transport, config=config, schema=schema, progress=progress, privacy=privacy)
    encoders_done = time.perf_counter()
    weights, history, warnings = train(transport, plan=plan, config=config, marginals=marginals, progress=progress, privacy=privacy,
                                       party_dp=party_dp)
    timings = {"encoders_s": encoders_done - started, "training_s": time.perf_counter() - encoders_done}
    ledger = _ledger(privacy, party_dp)
    fit = FederatedFit(plan, weights, parties, history, warnings, timings, plan_rounds, model_options(config), ledger)
    if after_training is None:
        return fit
    return dataclasses.replace(fit, after_training=after_training(transport, fit))


def fit_plan(
    transport: Transport,
    *,
    config: FedtabConfig,
    schema: TableSchema,
    progress: Progress | None = None,
    privacy: PrivacyRun | None = None,
) -> tuple[TransformPlan, int, list[dict[str, np.ndarray]]]:
    """Ferry the encoder fitter's requests to every party; also keep each party's marginals.

    Under DP each party answers through its own Gaussian release (planned by ``privacy``) and the
    server only post-processes the noisy statistics.
    """
    mode: dict[str, object] = (
        {"mode": "exact"} if privacy is None else {"mode": "private", "noise_multiplier": privacy.encoder_noise_multiplier}
    )
    fitter = PlanFitter(
        schema,
        num_components=config.bgm_components,
        sample_cap=config.bgm_sample_cap,
        max_em_rounds=config.bgm_max_rounds,
        max_categories=config.max_categories,
        min_category_count=config.min_category_count,
        seed=config.seed,
        **mode,  # type: ignore[arg-type]
    )
    names = sorted(transport.parties)
    schema_json = json.dumps(schema.to_dict())
    per_party_by_stage: dict[str, tuple[StatsRequest, list[dict[str, np.ndarray]]]] = {}
    rounds = 0
    while (request := fitter.next_request()) is not None:
        common = {**request.config, keys.STAGE: request.stage, keys.SCHEMA: schema_json, keys.RUN + ".seed": config.seed}
        per_party = {p: {**common, **({} if privacy is None else {keys.DP_PLAN: privacy.plan_json(p)})} for p in names}
        replies = transport.exchange(keys.STATS, {p: Payload(arrays=request.arrays, config=per_party[p]) for p in names})
        _require_all(replies, names, f"encoder statistics ({request.stage})", rounds)
        if privacy is not None:
            for p in names:
                privacy.record_reply(p, str(replies[p].config[keys.DP_REPORT]), mechanism=ENCODER)
        stats = [replies[p].arrays for p in names]
        per_party_by_stage[request.stage] = (request, stats)
        fitter.merge(stats)
        rounds += 1
        if progress:
            progress("encoders", rounds, 0, {})
    plan = fitter.finalize()
    return plan, rounds, party_marginals(per_party_by_stage, len(names))


def model_options(config: FedtabConfig) -> dict:
    """The options every party and the sampler build the model with; DP changes the discriminator."""
    return {**config.model_options, "private": True} if config.private else dict(config.model_options)


def train(
    transport: Transport,
    *,
    plan: TransformPlan,
    config: FedtabConfig,
    marginals: list[dict[str, np.ndarray]],
    progress: Progress | None = None,
    privacy: PrivacyRun | None = None,
    party_dp: PartyDP | None = None,
) -> tuple[Weights, list[dict[str, float]], list[str]]:
    model = create_model(config.model, plan, model_options(config), seed=config.seed)
    weights = model.init_weights()
    names = sorted(transport.parties)
    static = {
        keys.PLAN: json.dumps(plan.to_dict()),
        keys.RUN + ".seed": config.seed,
        keys.RUN + ".model": config.model,
        keys.RUN + ".options": json.dumps(model.options),
        keys.RUN + ".local_epochs": float(config.local_epochs),
        keys.RUN + ".batch_size": config.batch_size,
    }
    party_weights = _aggregation_weights(config, marginals, [transport.parties[p] for p in names], plan)
    history: list[dict[str, float]] = []
    warnings: list[str] = []
    for round_index in range(config.rounds):
        if party_dp is not None:
            party_dp.check_round(round_index)
        payloads = {p: Payload(arrays=weights, config={**static, keys.ROUND: round_index, **_dp_config(privacy, p, round_index, config)}) for p in names}
        replies = transport.exchange(keys.TRAIN, payloads)
        answered = [p for p in names if p in replies]
        if privacy is not None:
            _account_training(privacy, payloads, replies)
        if not answered:
            raise FederationError(
                f"No party replied to training round {round_index + 1}; the federation is down. "
                "Check the parties' processes and network, then rerun."
            )
        if len(answered) < len(names):
            missing = sorted(set(names) - set(answered))
            warnings.append(f"Round {round_index + 1}: parties {missing} did not reply; averaged the {len(answered)} that did.")
        if party_dp is None:
            share = np.array([party_weights[names.index(p)] for p in answered])
            weights = weighted_average([replies[p].arrays for p in answered], share)
        else:
            weights = party_dp.aggregate(weights, {p: replies[p].arrays for p in answered}, round_index)
        record = _round_record(round_index, replies, answered)
        history.append(record)
        if progress:
            progress("training", round_index + 1, config.rounds, record)
    return weights, history, warnings + (party_dp.warnings if party_dp is not None else [])


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
    if config.aggregation == "fedavg" or not marginals:
        return row_count_weights(rows)
    kinds = {c.name: ("categorical" if c.kind.value in ("categorical", "boolean") else "numerical") for c in plan.schema if c.name in marginals[0]}
    distances = party_distances(marginals, kinds)
    return similarity_weights(distances, rows, softmax=config.aggregation == "similarity-softmax")


def _ledger(privacy: PrivacyRun | None, party_dp: PartyDP | None) -> dict | None:
    """Record-level spend per party, plus the party-level entry when the run has one."""
    if privacy is None and party_dp is None:
        return None
    ledger = privacy.ledger() if privacy is not None else PrivacyLedger(())
    return (ledger if party_dp is None else dataclasses.replace(ledger, party_level=party_dp.spend())).to_dict()


def _dp_config(privacy: PrivacyRun | None, party: str, round_index: int, config: FedtabConfig) -> dict:
    return {} if privacy is None else privacy.training_config(party, round_index, config.rounds, config.max_grad_norm)


def _account_training(privacy: PrivacyRun, payloads: Mapping[str, Payload], replies: Mapping[str, Payload]) -> None:
    """Mirror each party's accountant; a silent party is charged the steps it was sent (never under-count)."""
    for party, payload in payloads.items():
        steps = int(payload.config[keys.DP_STEPS])
        if party in replies:
            privacy.record_reply(party, str(replies[party].config[keys.DP_REPORT]), mechanism=TRAINING, expected_steps=steps)
        else:
            privacy.charge_unreported(party, steps)


def _round_record(round_index: int, replies: Mapping[str, Payload], answered: list[str]) -> dict[str, float]:
    rows = np.array([replies[p].metrics.get(keys.NUM_EXAMPLES, 0.0) for p in answered])
    record: dict[str, float] = {"round": float(round_index + 1), "parties": float(len(answered))}
    for name in ("loss_g", "loss_d"):
        values = np.array([replies[p].metrics.get(name, np.nan) for p in answered])
        if np.isfinite(values).any():
            record[name] = float(np.average(values, weights=rows) if rows.sum() > 0 else values.mean())
    return record


def _require_all(replies: Mapping[str, Payload], names: list[str], what: str, round_index: int) -> None:
    missing = sorted(set(names) - set(replies))
    if missing:
        raise FederationError(
            f"Parties {missing} did not reply during {what} (statistics round {round_index + 1}); every party's "
            "statistics are needed for the encoders. Check that they are running, then rerun."
        )
