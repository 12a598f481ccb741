"""Checkpoints of a federated run, and resuming from one.

A checkpoint is a ``ModelState`` the server writes after the encoder plan is fitted and after
every training round. A resumed run takes the plan, the weights, the aggregation weights and,
under DP, every party's noise plan and accountant from it: the encoders are not refitted (nothing
is charged twice), each party continues its own accountant, and DP-SGD steps follow the fresh
run's schedule from the checkpoint's round on, so the total steps and ε equal a fresh run's.

Party-local state does not travel and is not checkpointed: optimizer buffers and a model's
``local_modules()`` (CTGAN's ``local_discriminator``) restart on resume, the latter from the
server's copy (so a resumed run's weights differ from an uninterrupted one's), and each party
draws a fresh secret noise seed.

A round in flight when the server stopped is not in the checkpoint, but it is in the party's own
record of the run (``party_guard``: kept on the party's side under the run's id, written before
each reply leaves). Before any round of a resumed run every party compares the checkpoint's copy
of its accountant with that record and refuses a copy that is shorter (the checkpoint was
continued before, or its last round was in flight) or different (edited), so a resumed run's ε
counts every release the parties made, and a run cannot be continued twice.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedtab.config import FedtabConfig
from fedtab.errors import ConfigError
from fedtab.federation.party_dp import PartyDP
from fedtab.federation.privacy_run import PrivacyRun
from fedtab.privacy.ledger import PrivacyLedger
from fedtab.model_state import ModelState
from fedtab.schema import TableSchema
from fedtab.transformers import TransformPlan

Weights = dict[str, np.ndarray]

RUN_DEFINING = (
    "model", "model_options", "seed", "epsilon", "delta", "encoder_share", "accountant", "batch_size",
    "local_epochs", "max_grad_norm", "rounds", "aggregation", "max_categories", "min_category_count",
    "bgm_components", "bgm_sample_cap", "bgm_max_rounds", "public_domain", "party_epsilon", "party_delta", "party_clip",
    "server_lr", "target", "local_steps",
)
"""Settings a resume must keep: they define the plan, the weights' shapes, the noise and the step schedule."""


@dataclass(frozen=True)
class TrainingStart:
    """Where the training loop begins: a fresh run's round 0, or a checkpoint's round and weights.

    ``restore`` names the parties that must continue from the server's mirror of their accountant
    (on resume under DP); the mirror is sent in a party's training messages until it has answered.
    """

    weights: Weights
    party_weights: dict[str, float]
    rounds_done: int = 0
    history: tuple[dict[str, float], ...] = ()
    warnings: tuple[str, ...] = ()
    restore: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CheckpointWriter:
    """Writes the run as a ``ModelState`` each time it is called; the file is replaced atomically."""

    path: str
    config: FedtabConfig
    plan: TransformPlan
    parties: dict[str, int]
    party_weights: dict[str, float]
    privacy: PrivacyRun | None
    timings: dict[str, float]
    resumed_at: tuple[int, ...] = ()
    party_dp: PartyDP | None = None

    def __call__(self, rounds_done: int, weights: Weights, history: Sequence[dict[str, float]], warnings: Sequence[str]) -> None:
        ModelState(
            plan=self.plan, weights=weights, config=self.config, parties=dict(self.parties), history=list(history),
            warnings=list(warnings), timings=dict(self.timings), ledger=ledger_dict(self.privacy, self.resumed_at, self.party_dp),
            rounds_done=rounds_done, party_weights=dict(self.party_weights),
            privacy=None if self.privacy is None else self.privacy.to_dict(), resumed_at=self.resumed_at,
        ).save(self.path)


def ledger_dict(privacy: PrivacyRun | None, resumed_at: tuple[int, ...] = (), party_dp: PartyDP | None = None) -> dict | None:
    """The ledger as the model file keeps it: the server's mirror of every party's accountant, plus the party-level entry."""
    if privacy is None and party_dp is None:
        return None
    ledger = privacy.ledger() if privacy is not None else PrivacyLedger(())
    party_level = None if party_dp is None else party_dp.spend()
    return dataclasses.replace(ledger, resumed_at=tuple(resumed_at), party_level=party_level).to_dict()


def load_checkpoint(source: str | Path | ModelState) -> ModelState:
    """A checkpoint (or a finished model file) that holds what a resume needs; refused with the fix otherwise."""
    if isinstance(source, ModelState):
        state, where = source, "the given ModelState"
    else:
        path = Path(source)
        where = f"'{path}'"
        if not path.is_file():
            raise ConfigError(
                f"Checkpoint {where} does not exist. Pass the file a run wrote with --checkpoint (config 'checkpoint'), "
                "or start a fresh run without --resume."
            )
        try:
            state = ModelState.load(path)
        except ConfigError as error:
            raise ConfigError(
                f"Cannot resume from checkpoint {where}: {error} Checkpoints are replaced atomically, so a crash "
                "cannot leave one half-written: pass the file --checkpoint named, or start a fresh run without --resume."
            ) from error
    if state.party_weights is None or (state.config.private and state.privacy is None):
        raise ConfigError(
            f"{where} holds a model but no resume state (aggregation weights{', accountants' if state.config.private else ''}); "
            "it was written by an older fedtab or by hand. Resume from a checkpoint written with --checkpoint, "
            "or start a fresh run without --resume."
        )
    return state


def check_resume(state: ModelState, config: FedtabConfig, parties: Mapping[str, int] | None = None,
                 schema: TableSchema | None = None) -> None:
    """Refuse a resume that would not continue the checkpointed run, listing every difference with its fix.

    ``config`` is the run's config as it is saved (model options included, see ``model_options``);
    ``parties`` maps each party to its training rows.
    """
    problems = _setting_problems(state, config)
    if parties is not None:
        problems += _party_problems(state.parties, dict(parties))
    if schema is not None:
        problems += _schema_problems(state.plan.schema, schema)
    if problems:
        raise ConfigError(
            f"Cannot resume from the checkpoint (round {state.rounds_done} of {state.config.rounds}); it does not "
            "match this run:\n" + "\n".join(f"  - {p}" for p in problems)
        )


def resume_start(state: ModelState) -> tuple[TrainingStart, PrivacyRun | None]:
    """The training start and, under DP, the server's mirror of every party's accountant, as checkpointed."""
    privacy = None if state.privacy is None else PrivacyRun.from_dict(state.privacy)
    restore = frozenset() if privacy is None else frozenset(privacy.accountants)
    start = TrainingStart(
        weights=dict(state.weights), party_weights=dict(state.party_weights or {}), rounds_done=int(state.rounds_done or 0),
        history=tuple(state.history), warnings=tuple(state.warnings), restore=restore,
    )
    return start, privacy


def _setting_problems(state: ModelState, config: FedtabConfig) -> list[str]:
    saved_config = state.config
    private = saved_config.private or config.private
    problems = []
    for name in RUN_DEFINING:
        saved, given = getattr(saved_config, name), getattr(config, name)
        if name == "rounds" and not private:
            if given < int(state.rounds_done or 0):
                problems.append(f"'rounds' is {given}, but the checkpoint already holds {state.rounds_done} rounds; "
                                f"ask for at least {state.rounds_done} (more trains longer).")
            continue
        if _canonical(saved) != _canonical(given):
            why = "its noise was planned for it (changing it would void the ε plan)" if private else "the run was built with it"
            problems.append(f"'{name}' is {given!r}; the checkpoint's run used {saved!r} and {why}. "
                            f"Set it back to {saved!r}, or start a fresh run without --resume.")
    return problems


def _party_problems(expected: dict[str, int], got: dict[str, int]) -> list[str]:
    problems = [f"party '{name}' took part in the checkpointed run ({expected[name]} training rows) but is missing now; "
                "add it back with the same name and table." for name in sorted(set(expected) - set(got))]
    problems += [f"party '{name}' ({got[name]} training rows) was not in the checkpointed run (its parties: "
                 f"{sorted(expected)}); drop it, or start a fresh run to include it." for name in sorted(set(got) - set(expected))]
    problems += [f"party '{name}' trains on {got[name]} rows; the checkpoint expected {expected[name]} (rows after the "
                 "held-out share). Give it the same table and holdout_share, or start a fresh run."
                 for name in sorted(set(expected) & set(got)) if expected[name] != got[name]]
    return problems


def _schema_problems(saved: TableSchema, given: TableSchema) -> list[str]:
    before = [(c.name, c.kind.value) for c in saved.columns]
    now = [(c.name, c.kind.value) for c in given.columns]
    if before == now:
        return []
    return [f"the parties' columns are now {now}; the checkpoint's plan encodes {before}. Give the parties the "
            "tables (and schema overrides) of the checkpointed run, or start a fresh run."]


def _canonical(value: object) -> str:
    """Compare settings as saved: tuples and lists alike, 3 and 3.0 alike, key order ignored."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    return json.dumps(value, sort_keys=True, default=str)
