"""What the server fits on the synthetic table and every party scores against.

The synthetic table may travel; real rows may not. So everything shared — the column layout,
the fidelity bins, the distance encoding, the density projection, the target and the models
trained on synthetic rows (TSTR) — is fitted on the synthetic table (and the public schema)
alone. Built from the same synthetic table, schema, target and seed, the context comes out the
same on every machine, so a party can rebuild it instead of receiving it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from fedtab.errors import ConfigError, SchemaError
from fedtab.evaluators.encoding import MixedEncoder
from fedtab.evaluators.inputs import ColumnLayout, check_columns, prepare, refuse_missing_target, resolve_layout
from fedtab.evaluators.privacy import PrivacySpace
from fedtab.evaluators.statistics import FidelityBins, local_fidelity
from fedtab.evaluators.threads import one_thread
from fedtab.evaluators.utility import Task, fit_models
from fedtab.rng import numpy_rng
from fedtab.schema import TableSchema

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class EvaluationContext:
    """The broadcast: fitted on the synthetic table only; read by every party and by the server."""

    layout: ColumnLayout
    bins: FidelityBins
    privacy: PrivacySpace
    task: Task | None
    tstr_models: Mapping[str, Pipeline] = field(repr=False)
    synthetic_statistics: Mapping[str, np.ndarray] = field(repr=False)
    synthetic_rows: int
    fingerprint: str
    seed: int

    def check_synthetic(self, synthetic: pd.DataFrame) -> pd.DataFrame:
        """The prepared synthetic table, refused if it is not the one this context was fitted on."""
        check_columns(synthetic, self.layout, "synthetic")
        prepared = prepare(synthetic, self.layout, "synthetic")
        if fingerprint(prepared) != self.fingerprint:
            raise ConfigError(
                f"This synthetic table ({len(synthetic)} rows) is not the one the evaluation context was built on "
                f"({self.synthetic_rows} rows). Build the context from the synthetic table the parties score against."
            )
        return prepared


@one_thread()
def build_context(
    synthetic: pd.DataFrame,
    *,
    schema: TableSchema | None = None,
    target: str | None = None,
    seed: int = 0,
    max_attack_rows: int | None = None,
    progress: Progress | None = None,
) -> EvaluationContext:
    """Fit everything the parties share on the synthetic table; deterministic given ``seed``.

    ``max_attack_rows`` caps, per party, the train and holdout rows the membership attacks sample
    (default: as many as the holdout has). A cap changes the train share that DCR and NNDR see,
    so keep it equal when comparing evaluations.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"The seed must be an int >= 0; got {seed!r}. Pass e.g. --seed 0.")
    if max_attack_rows is not None and (not isinstance(max_attack_rows, (int, np.integer)) or max_attack_rows < 10):
        raise ConfigError(f"max_attack_rows must be None or an int >= 10; got {max_attack_rows!r}. Leave it None to use every holdout row.")
    layout = resolve_layout(synthetic, schema)
    check_columns(synthetic, layout, "synthetic")
    prepared = prepare(synthetic, layout, "synthetic")
    task = _task(prepared, target, layout, schema)
    report_progress(progress, "prepare", 0, 1)
    bins = FidelityBins.fit(prepared, layout)
    encoder = MixedEncoder.fit(prepared, layout)
    privacy = PrivacySpace.fit(encoder, encoder.transform(prepared), numpy_rng(seed, "evaluation", "density"), max_attack_rows=max_attack_rows)
    report_progress(progress, "prepare", 1, 1)
    models: dict[str, Pipeline] = {}
    if task is not None:
        done = iter(range(1, 4))
        models = fit_models(prepared, task, layout, seed, "tstr", on_model=lambda _: report_progress(progress, "tstr", next(done), 3))
    return EvaluationContext(
        layout=layout,
        bins=bins,
        privacy=privacy,
        task=task,
        tstr_models=models,
        synthetic_statistics=local_fidelity(prepared, bins),
        synthetic_rows=len(prepared),
        fingerprint=fingerprint(prepared),
        seed=int(seed),
    )


def fingerprint(prepared: pd.DataFrame) -> str:
    hashes = pd.util.hash_pandas_object(prepared, index=False).to_numpy()
    return hashlib.sha256(hashes.tobytes() + ",".join(prepared.columns).encode()).hexdigest()[:16]


def _task(prepared: pd.DataFrame, target: str | None, layout: ColumnLayout, schema: TableSchema | None) -> Task | None:
    if target is None:
        return None
    if target not in layout.kinds:
        where = "is excluded as an identifier" if target in layout.excluded else "is not a column of the synthetic table"
        raise SchemaError(
            f"The target '{target}' {where}; the evaluated columns are {layout.names}. "
            "Choose one of them as the target, or evaluate a synthetic table that holds it."
        )
    refuse_missing_target(prepared, target, "synthetic")
    declared = schema[target].categories if schema is not None and schema[target].categories else ()
    return Task.infer(prepared, target, layout, tuple(declared))


def report_progress(progress: Progress | None, stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(stage, done, total)
