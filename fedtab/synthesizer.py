"""The SDK: a federated synthesizer with scikit-learn manners, built from the same config as the CLI."""

from __future__ import annotations

import dataclasses
import tempfile
from functools import partial
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import polars as pl

from fedtab.config import FedtabConfig
from fedtab.connectors import align, load_party
from fedtab.errors import ConfigError, NotFittedError
from fedtab.evaluation_run import EvaluationRequest, evaluate_on_federation
from fedtab.federation.checkpoint import check_resume, load_checkpoint
from fedtab.federation.coordinator import AfterTraining, FederatedFit, Progress, check_target, saved_config
from fedtab.federation.local import LocalTransport, Tap
from fedtab.federation.party import StagedParty, held_out_rows
from fedtab.federation.schema_round import SchemaDeclaration, merged_schema, released_party_schema
from fedtab.model_state import ModelState
from fedtab.models.base import resolve_device
from fedtab.progress import progress_display
from fedtab.export import export_table
from fedtab.sampler import sample_table, spell
from fedtab.schema import ColumnKind, PartyTable, TableSchema

PartySource = str | Path | pd.DataFrame | pl.DataFrame
Engine = Literal["simulation", "local"]
DEFAULT_HOLDOUT_SHARE = 0.2
EVALUATE_UNDER_DP = (
    "Federated evaluation (evaluate=, --evaluate, --target) is refused under differential privacy (epsilon or party_epsilon set): its "
    "scores are exact figures on the parties' rows that no budget covers, and every party would refuse them. "
    "Fit without evaluate, then evaluate centrally (`fedtab evaluate`, where one examiner holds the real and "
    "held-out rows), or check the synthetic table alone; or drop them to evaluate federatedly."
)


class FederatedSynthesizer:
    """Fit encoders and a generative model across parties that keep their rows; sample a synthetic table.

    Parameters
    ----------
    config:
        The run's settings; keyword overrides replace single fields (``rounds=5``). The model is
        ``config.model``: ``"argn"`` (autoregressive) by default, ``"ctgan"`` or ``"tvae"`` by name.
    engine:
        ``"simulation"`` runs Flower's simulation engine (one virtual SuperNode per party);
        ``"local"`` runs every party in this process, one after another (same results, no Ray).
    """

    report_: Any = None
    local_notes_: dict[str, str] = {}
    """Per column, what inference or metadata decided on this machine's parties (coded categories, personal
    data); the caller of ``fit`` is every party here, so it sees them. The notes never leave a party."""

    def __init__(self, config: FedtabConfig | None = None, *, engine: Engine = "simulation", **overrides: Any) -> None:
        self.config = config
        self.engine = engine
        self.overrides = overrides

    def _resolved_config(self, resume: ModelState | None = None) -> FedtabConfig:
        """The given config, else a resumed checkpoint's, else the defaults; keyword overrides on top."""
        base = self.config if self.config is not None else (resume.config if resume is not None else FedtabConfig())
        if not isinstance(base, FedtabConfig):
            raise ConfigError(f"config must be a FedtabConfig; got {type(base).__name__}. Build one with FedtabConfig(...).")
        return base.replace(**self.overrides) if self.overrides else base

    def fit(
        self,
        parties: Mapping[str, PartySource] | Sequence[PartyTable],
        *,
        overrides: Mapping[str, str | ColumnKind] | None = None,
        metadata: TableSchema | None = None,
        progress: Progress | bool | None = None,
        tap: Tap | None = None,
        evaluate: EvaluationRequest | None = None,
        resume_from: str | Path | ModelState | None = None,
    ) -> FederatedSynthesizer:
        """Read each party's table, reconcile schemas, run the federation; returns self.

        ``progress=True`` shows a bar with the rounds and each round's metrics (losses); a callable
        ``progress(stage, done, total, record)`` receives the same reports instead.
        ``overrides`` (column -> kind) add to the config's ``columns``, the one place column kinds
        are set; they are saved with the model.

        With ``evaluate``, each party first holds out ``holdout_share`` of its rows (0.2 unless
        set) and, after training, scores the synthetic table against its own rows; the aggregated
        report is ``report_``. With ``resume_from`` (a checkpoint written with ``checkpoint`` set),
        the run continues from the checkpoint's round with its encoders and, under DP, every
        party's accountant; the parties and run-defining settings must match (without DP,
        ``rounds`` may grow). A checkpoint with every round done returns its model.
        """
        if self.engine not in ("simulation", "local"):
            raise ConfigError(f"engine must be 'simulation' or 'local'; got {self.engine!r}.")
        resume = None if resume_from is None else load_checkpoint(resume_from)
        config = self._resolved_config(resume)
        resolve_device(config.device)  # cuda without a GPU fails here, before any party starts
        if evaluate is not None and (config.private or config.party_epsilon is not None):
            raise ConfigError(EVALUATE_UNDER_DP)
        if evaluate is not None and config.holdout_share == 0:
            config = config.replace(holdout_share=DEFAULT_HOLDOUT_SHARE)
        if overrides:
            config = dataclasses.replace(config, columns={**config.columns, **overrides})
        tables = load_parties(parties, overrides=config.columns, metadata=metadata)
        declaration = SchemaDeclaration(dict(config.columns), metadata)
        expected = local_precheck(tables, declaration, config)
        self.local_notes_ = local_notes(tables)
        check_target(config, expected)
        if evaluate is not None and evaluate.target is None and config.target is not None:
            evaluate = dataclasses.replace(evaluate, target=config.target)
        if resume is not None:
            saved_config = check_resume_inputs(resume, config, tables, expected)
            if evaluate is None and int(resume.rounds_done or 0) >= config.rounds:  # nothing left to train
                self.report_, self.state_ = None, dataclasses.replace(resume, config=saved_config)
                return self
        after = None if evaluate is None else partial(evaluate_on_federation, config=config, request=evaluate)
        with tempfile.TemporaryDirectory(prefix="fedtab-run-") as run_dir, progress_display(progress, config.rounds) as shown:
            staged = stage_parties(tables, Path(run_dir), holdout_share=config.holdout_share, seed=config.seed,
                                   config=config, state_dir=party_state_dir(config, resume_from),
                                   sources=parties if isinstance(parties, Mapping) else None)
            fit = self._run(staged, config=config, declaration=declaration, progress=shown, tap=tap, after_training=after,
                            resume=resume)
        self.report_ = fit.after_training
        self.state_ = fit.to_state(config)
        return self

    def _run(self, staged: list[StagedParty], *, config: FedtabConfig, declaration: SchemaDeclaration, progress: Progress | None,
             tap: Tap | None, after_training: AfterTraining | None, resume: ModelState | None) -> FederatedFit:
        """The federation, whose first round settles the schema from what each party releases."""
        from fedtab.federation.coordinator import run_federation

        if self.engine == "local":
            return run_federation(LocalTransport(staged, tap=tap), config=config, declaration=declaration, progress=progress,
                                  after_training=after_training, resume=resume)
        from fedtab.federation.simulation import run_simulation

        return run_simulation(staged, config=config, declaration=declaration, progress=progress, tap=tap, after_training=after_training,
                              resume=resume)

    def sample(self, num_rows: int | None = None, *, seed: int | None = None, spelled: bool = True,
               conditions: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Synthetic rows in the real schema; the same seed gives the same rows.

        ``spelled`` writes values as the parties' files do (boolean words such as 'Yes'/'No', a text
        column's missing marker such as '?'); ``False`` gives the schema's dtypes (bool, nulls).
        ``conditions`` (column -> value, e.g. ``{"sex": "Female"}``) fixes those columns in every row
        and generates the others given them; only models that can condition (argn) accept it.
        """
        state = self._state()
        rows = num_rows if num_rows is not None else (state.config.rows or sum(state.parties.values()))
        frame = sample_table(state, rows, seed=state.config.seed if seed is None else seed, conditions=conditions,
                             device=self._resolved_config(state).device)
        return spell(frame, state.plan.schema) if spelled else frame

    def write(self, path: str | Path, num_rows: int | None = None, *, seed: int | None = None) -> Path:
        """Sample and write a .csv or .parquet file spelled as the parties' files (markers, boolean words, dates)."""
        return export_table(self.sample(num_rows, seed=seed), path, schema=self._state().plan.schema)

    def save(self, path: str | Path) -> Path:
        return self._state().save(path)

    @classmethod
    def load(cls, path: str | Path) -> FederatedSynthesizer:
        state = ModelState.load(path)
        synthesizer = cls(state.config)
        synthesizer.state_ = state
        return synthesizer

    def _state(self) -> ModelState:
        state = getattr(self, "state_", None)
        if state is None:
            raise NotFittedError("This FederatedSynthesizer is not fitted yet. Call fit(parties) or load(path) first.")
        return state


def load_parties(
    parties: Mapping[str, PartySource] | Sequence[PartyTable],
    *,
    overrides: Mapping[str, str | ColumnKind] | None = None,
    metadata: TableSchema | None = None,
) -> list[PartyTable]:
    """Each party's table through the connectors; ``reconcile`` then checks names and schemas together."""
    if isinstance(parties, Mapping):
        return [load_party(name, source, overrides=overrides, metadata=metadata) for name, source in parties.items()]
    return list(parties)


def local_notes(tables: Sequence[PartyTable]) -> dict[str, str]:
    """Each column's first non-empty note over the parties, in party order."""
    notes: dict[str, str] = {}
    for table in tables:
        for column in table.schema:
            if column.note and column.name not in notes:
                notes[column.name] = column.note
    return notes


def local_precheck(tables: Sequence[PartyTable], declaration: SchemaDeclaration, config: FedtabConfig) -> TableSchema:
    """Fail fast, with full local messages: here the caller is every party, so the schema round's own
    functions run in this process first (release, merge, align). The run still takes its schema from
    the round, where only redacted errors travel."""
    released = [released_party_schema(t, private=config.private, declaration=declaration) for t in tables]
    schema = merged_schema(released, config)
    for table in tables:
        align(table, schema)
    return schema


def check_resume_inputs(resume: ModelState, config: FedtabConfig, tables: Sequence[PartyTable], schema: TableSchema) -> FedtabConfig:
    """Refuse a mismatched resume before any federation starts; returns the config as the run saves it.

    The coordinator checks again against what the parties report; this only fails faster.
    """
    saved = saved_config(config)
    rows = {t.name: len(t.frame) - held_out_rows(len(t.frame), config.holdout_share) for t in tables}
    check_resume(resume, saved, rows, schema)
    return saved


def stage_parties(tables: Sequence[PartyTable], run_dir: Path, *, holdout_share: float = 0.0, seed: int = 0,
                  config: FedtabConfig | None = None, state_dir: str | None = None,
                  sources: Mapping[str, PartySource] | None = None) -> list[StagedParty]:
    """Give each party's worker its own table: the file or SQL URL it came from (read again by the party, as a
    SuperNode reads its node-config path, so the file's own spelling survives), else a Parquet copy of the frame.

    With ``config``, each party gets its own privacy policy (``policy_for``); ``state_dir`` is where
    the parties keep their privacy records of the run.
    """
    from fedtab.privacy.policy import PartyPolicy, policy_for

    names = {t.name for t in tables}
    unknown = sorted(set(config.party_budgets) - names) if config is not None else []
    if unknown:
        raise ConfigError(f"party_budgets names {unknown}, which are not parties of this run (they are {sorted(names)}). "
                          "Fix the names in --party-budget or the config.")
    staged = []
    for index, table in enumerate(tables):
        path = _staged_path(table, run_dir / f"party-{index}.parquet", (sources or {}).get(table.name))
        policy = PartyPolicy() if config is None else policy_for(config, table.name)
        staged.append(StagedParty(table.name, str(path), holdout_share=holdout_share, seed=seed, policy=policy,
                                  state_dir=state_dir))
    return staged


def _staged_path(table: PartyTable, copy: Path, source: PartySource | None) -> str:
    if isinstance(source, (str, Path)):
        local = Path(source)
        return str(local.resolve()) if local.exists() else str(source)
    table.frame.to_parquet(copy, index=False)
    return str(copy)


def party_state_dir(config: FedtabConfig, resume_from: str | Path | ModelState | None) -> str | None:
    """Where simulated parties keep their privacy records: the given folder, else the checkpoint's folder, else
    the folder of the checkpoint resumed from; None (memory only) for a run that neither checkpoints nor resumes."""
    if config.party_state_dir is not None:
        return config.party_state_dir
    if config.checkpoint is not None:
        return str(Path(config.checkpoint).resolve().parent)
    if isinstance(resume_from, (str, Path)):
        return str(Path(resume_from).resolve().parent)
    return None
