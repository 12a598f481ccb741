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
from fedtab.connectors import align, check_party, load_party, reconcile
from fedtab.connectors.public_domain import declare_public
from fedtab.errors import ConfigError, NotFittedError
from fedtab.evaluation_run import EvaluationRequest, evaluate_on_federation
from fedtab.federation.checkpoint import check_resume, load_checkpoint
from fedtab.federation.coordinator import AfterTraining, FederatedFit, Progress, check_target, saved_config
from fedtab.federation.local import LocalTransport, Tap
from fedtab.federation.party import StagedParty, held_out_rows
from fedtab.model_state import ModelState
from fedtab.sampler import sample_table
from fedtab.schema import ColumnKind, PartyTable, TableSchema

PartySource = str | Path | pd.DataFrame | pl.DataFrame
Engine = Literal["simulation", "local"]
MIN_PARTY_ROWS = 10
DEFAULT_HOLDOUT_SHARE = 0.2


class FederatedSynthesizer:
    """Fit encoders and a generative model across parties that keep their rows; sample a synthetic table.

    Parameters
    ----------
    config:
        The run's settings; keyword overrides replace single fields (``rounds=5``).
    engine:
        ``"simulation"`` runs Flower's simulation engine (one virtual SuperNode per party);
        ``"local"`` runs every party in this process, one after another (same results, no Ray).
    """

    report_: Any = None

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
        progress: Progress | None = None,
        tap: Tap | None = None,
        evaluate: EvaluationRequest | None = None,
        resume_from: str | Path | ModelState | None = None,
    ) -> FederatedSynthesizer:
        """Read each party's table, reconcile schemas, run the federation; returns self.

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
        if evaluate is not None and config.holdout_share == 0:
            config = config.replace(holdout_share=DEFAULT_HOLDOUT_SHARE)
        tables = load_parties(parties, overrides=overrides, metadata=metadata)
        schema = declare_public(reconcile(tables), config.public_domain)
        check_target(config, schema)
        if evaluate is not None and evaluate.target is None and config.target is not None:
            evaluate = dataclasses.replace(evaluate, target=config.target)
        aligned = [align(t, schema) for t in tables]
        for table in aligned:
            check_party(table, min_rows=MIN_PARTY_ROWS)
        if resume is not None:
            saved_config = check_resume_inputs(resume, config, aligned, schema)
            if evaluate is None and int(resume.rounds_done or 0) >= config.rounds:  # nothing left to train
                self.report_, self.state_ = None, dataclasses.replace(resume, config=saved_config)
                return self
        after = None if evaluate is None else partial(evaluate_on_federation, config=config, request=evaluate)
        with tempfile.TemporaryDirectory(prefix="fedtab-run-") as run_dir:
            staged = stage_parties(aligned, Path(run_dir), holdout_share=config.holdout_share, seed=config.seed)
            fit = self._run(staged, config=config, schema=schema, progress=progress, tap=tap, after_training=after, resume=resume)
        self.report_ = fit.after_training
        self.state_ = fit.to_state(config)
        return self

    def _run(self, staged: list[StagedParty], *, config: FedtabConfig, schema: TableSchema, progress: Progress | None,
             tap: Tap | None, after_training: AfterTraining | None, resume: ModelState | None) -> FederatedFit:
        from fedtab.federation.coordinator import run_federation

        if self.engine == "local":
            return run_federation(LocalTransport(staged, tap=tap), config=config, schema=schema, progress=progress,
                                  after_training=after_training, resume=resume)
        from fedtab.federation.simulation import run_simulation

        return run_simulation(staged, config=config, schema=schema, progress=progress, tap=tap, after_training=after_training,
                              resume=resume)

    def sample(self, num_rows: int | None = None, *, seed: int | None = None) -> pd.DataFrame:
        """Synthetic rows in the real schema; the same seed gives the same rows."""
        state = self._state()
        rows = num_rows if num_rows is not None else (state.config.rows or sum(state.parties.values()))
        return sample_table(state, rows, seed=state.config.seed if seed is None else seed)

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


def check_resume_inputs(resume: ModelState, config: FedtabConfig, tables: Sequence[PartyTable], schema: TableSchema) -> FedtabConfig:
    """Refuse a mismatched resume before any federation starts; returns the config as the run saves it.

    The coordinator checks again against what the parties report; this only fails faster.
    """
    saved = saved_config(config)
    rows = {t.name: len(t.frame) - held_out_rows(len(t.frame), config.holdout_share) for t in tables}
    check_resume(resume, saved, rows, schema)
    return saved


def stage_parties(tables: Sequence[PartyTable], run_dir: Path, *, holdout_share: float = 0.0, seed: int = 0) -> list[StagedParty]:
    """Write each aligned table where only its own party's worker reads it (one file per party)."""
    staged = []
    for index, table in enumerate(tables):
        path = run_dir / f"party-{index}.parquet"
        table.frame.to_parquet(path, index=False)
        staged.append(StagedParty(table.name, str(path), holdout_share=holdout_share, seed=seed))
    return staged
