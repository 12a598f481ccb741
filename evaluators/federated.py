"""Federated evaluation: each party scores its own rows; only scores and histograms leave it.

A party calls :func:`party_scores` with its train rows, optionally its holdout rows, and the
synthetic table (which may travel). What comes back is a dict of arrays whose sizes depend on
the context (bins, columns, synthetic rows) and never on how many rows the party holds. The
server calls :func:`aggregate`, which merges the dicts key by key — the prefix of each key says
how: ``sum:`` adds (counts, so the merge weighs parties by their row counts), ``smallest:`` keeps
the two smallest per synthetic row (closest distances), ``max:`` keeps the largest (copy flags)
— and turns the merged figures into an :class:`EvaluationReport`.

What differs from a central evaluation, by necessity: TRTR models are trained by each party on
its own rows (real rows cannot be pooled), and the density attack's reference density is each
party's own holdout, so with small holdouts that attack is weaker than centrally (measured: a 2 %
jittered copy scored 0.82 centrally, 0.72 over five parties of 400 holdout rows; fresh rows 0.50
both ways). Everything else pools exactly or agrees within sampling noise. Flower transport lives
in ``fedtab/federation``; this module has none.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from fedtab.errors import FederationError
from fedtab.evaluators.context import EvaluationContext, Progress, report_progress
from fedtab.evaluators.fidelity import fidelity_from_statistics
from fedtab.evaluators.inputs import check_columns, prepare, refuse_missing_target
from fedtab.evaluators.privacy import finalize_privacy, local_copies, local_privacy
from fedtab.evaluators.report import EvaluationReport, FidelityResult
from fedtab.evaluators.statistics import local_fidelity
from fedtab.evaluators.threads import one_thread
from fedtab.evaluators.utility import MODELS, fit_models, finalize_utility, local_utility
from fedtab.evaluators.verdicts import fidelity_verdict, overall_verdict, privacy_verdict, utility_verdict
from fedtab.rng import derive_seed, numpy_rng

Payload = dict[str, np.ndarray]
DISTANCE = (
    "Euclidean over one-hot categoricals scaled by 1/√2 and numericals standardised by the synthetic "
    "table's mean and standard deviation: a category mismatch and a one-standard-deviation gap each add 1 "
    "to the squared distance. Chosen over Gower because it allows exact nearest neighbours by chunked matrix "
    "products, and because Gower's range scaling lets one outlier flatten a column."
)
FEDERATED_NOTES = (
    "TRTR models were trained by each party on its own rows and tested on its own holdout; the counts were pooled.",
    "The density-ratio attack used each party's own holdout as its reference density, which makes it weaker than a central one when holdouts are small.",
)
_REDUCERS = ("sum", "smallest", "max")


@one_thread()
def party_scores(
    real_rows: pd.DataFrame,
    synthetic: pd.DataFrame,
    *,
    context: EvaluationContext,
    holdout_rows: pd.DataFrame | None = None,
    party: str | None = None,
    progress: Progress | None = None,
) -> dict[str, np.ndarray]:
    """One party's scores of the synthetic table against its own train (and holdout) rows.

    ``party`` names the party in error messages and seeds its samples; leave it ``None`` centrally.
    """
    context.check_synthetic(synthetic)
    where = "" if party is None else f"party '{party}' "
    check_columns(real_rows, context.layout, f"{where}real")
    real = prepare(real_rows, context.layout, f"{where}real")
    clock = time.perf_counter()
    report_progress(progress, "fidelity", 0, 1)
    out = local_fidelity(real, context.bins)
    report_progress(progress, "fidelity", 1, 1)
    out["sum:timing/fidelity"] = np.array([time.perf_counter() - clock])
    encoded = context.privacy.encoder.transform(real)
    if holdout_rows is None:
        return out | local_copies(encoded, context.privacy)
    check_columns(holdout_rows, context.layout, f"{where}holdout")
    holdout = prepare(holdout_rows, context.layout, f"{where}holdout")
    out["sum:rows/holdout"] = np.array([float(len(holdout))])
    if context.task is not None:
        clock = time.perf_counter()
        out |= party_utility(real, holdout, context, party, progress)
        out["sum:timing/utility"] = np.array([time.perf_counter() - clock])
    rng = numpy_rng(context.seed, "evaluation", "privacy", party or "central")
    on_chunk = None if progress is None else (lambda done, total: progress("privacy", done, total))
    return out | local_privacy(encoded, context.privacy.encoder.transform(holdout), context.privacy, rng, on_chunk)


def aggregate(party_scores: Sequence[Mapping[str, np.ndarray]], *, context: EvaluationContext) -> EvaluationReport:
    """Merge the parties' scores and turn them into one report."""
    merged = merge_scores(party_scores)
    return build_report(merged, context, mode="federated", parties=len(party_scores), notes=FEDERATED_NOTES)


def merge_scores(party_scores: Sequence[Mapping[str, np.ndarray]]) -> Payload:
    """Key by key: ``sum:`` adds, ``smallest:`` keeps the two smallest per row, ``max:`` the largest."""
    if not party_scores:
        raise FederationError("No party sent evaluation scores; at least one party must take part. Check that the parties ran.")
    merged: Payload = {}
    for index, scores in enumerate(party_scores):
        for key, value in scores.items():
            reducer = key.split(":", 1)[0]
            if reducer not in _REDUCERS:
                raise FederationError(f"Party {index} sent the score '{key}', which names no known merge ({_REDUCERS}). Run the same fedtab version on every party.")
            value = np.asarray(value, dtype=np.float64)
            if key not in merged:
                merged[key] = value.copy()
                continue
            if merged[key].shape != value.shape:
                raise FederationError(
                    f"Party {index} sent '{key}' with shape {value.shape}; the parties before it sent {merged[key].shape}. "
                    "Every party must score against the same evaluation context."
                )
            merged[key] = _merge(reducer, merged[key], value)
    return merged


def build_report(
    merged: Mapping[str, np.ndarray],
    context: EvaluationContext,
    *,
    mode: str,
    parties: int,
    fidelity: FidelityResult | None = None,
    timings: Mapping[str, float] | None = None,
    notes: tuple[str, ...] = (),
) -> EvaluationReport:
    """The report from merged scores; ``fidelity`` replaces the statistics' one (the central SDMetrics figures)."""
    fidelity = fidelity or fidelity_from_statistics(merged, context.synthetic_statistics, context.bins)
    utility, reason = None, "Utility needs a target column and real holdout rows; pass both to assess it."
    if context.task is not None and "sum:utility/test_rows" in merged:
        utility = finalize_utility(merged, context.task, trtr_note=notes[0] if notes else "")
    privacy = finalize_privacy(merged) if "max:privacy/copy_of_train" in merged else None
    spent = {k.split("/", 1)[1]: float(v[0]) for k, v in merged.items() if k.startswith("sum:timing/")}
    verdicts = (fidelity_verdict(fidelity), utility_verdict(utility, reason), privacy_verdict(privacy))
    return EvaluationReport(
        mode=mode,
        parties=parties,
        rows={
            "real": int(merged["sum:fidelity/rows"][0]),
            "synthetic": context.synthetic_rows,
            "holdout": int(merged.get("sum:rows/holdout", np.zeros(1))[0]),
        },
        columns=dict(context.layout.kinds),
        target=None if context.task is None else context.task.target,
        seed=context.seed,
        distance=DISTANCE,
        fidelity=fidelity,
        utility=utility,
        privacy=privacy,
        verdicts=(overall_verdict(*verdicts), *verdicts),
        timings=_ordered_timings(spent, timings or {}),
        notes=notes,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def party_utility(real: pd.DataFrame, holdout: pd.DataFrame, context: EvaluationContext, party: str | None, progress: Progress | None = None) -> Payload:
    """TSTR and TRTR counts on one party's prepared holdout rows; TRTR models are trained on its own rows."""
    task = context.task
    where = "" if party is None else f"party '{party}' "
    refuse_missing_target(real, task.target, f"{where}real")
    refuse_missing_target(holdout, task.target, f"{where}holdout")
    done = iter(range(1, len(MODELS) + 1))
    seed = derive_seed(context.seed, "trtr", party or "central")
    trtr = fit_models(real, task, context.layout, seed, "trtr", on_model=lambda _: report_progress(progress, "trtr", next(done), len(MODELS)))
    out = local_utility(context.tstr_models, holdout, task, context.layout, "tstr")
    return out | local_utility(trtr, holdout, task, context.layout, "trtr")


def _ordered_timings(spent: Mapping[str, float], central: Mapping[str, float]) -> dict[str, float]:
    """Seconds per stage in the order they ran; summed over parties when federated."""
    first = {k: v for k, v in central.items() if k.startswith("context")}
    last = {k: v for k, v in central.items() if k not in first}
    return first | dict(spent) | last


def _merge(reducer: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if reducer == "sum":
        return a + b
    if reducer == "max":
        return np.maximum(a, b)
    return np.sort(np.concatenate([a, b], axis=-1), axis=-1)[..., : a.shape[-1]]
