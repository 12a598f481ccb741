"""The SDK entry: evaluate a synthetic table against the real rows held in one place.

A central evaluation is a federation of one party plus what only pooled rows allow: SDMetrics'
Quality and Diagnostic reports and the papers' exact Wasserstein distance. Running the same
party code keeps central and federated figures comparable by construction.
"""

from __future__ import annotations

import time

import pandas as pd

from fedtab.evaluators.context import Progress, build_context, report_progress
from fedtab.evaluators.federated import build_report, merge_scores, party_scores
from fedtab.evaluators.fidelity import fidelity_from_statistics, with_sdmetrics
from fedtab.evaluators.inputs import check_tables, prepare
from fedtab.evaluators.report import EvaluationReport
from fedtab.evaluators.threads import one_thread
from fedtab.schema import TableSchema


@one_thread()
def evaluate(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    *,
    holdout: pd.DataFrame | None = None,
    target: str | None = None,
    schema: TableSchema | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> EvaluationReport:
    """Fidelity, utility and membership risk of ``synthetic`` against ``real`` (the training rows).

    Parameters
    ----------
    real, synthetic
        The rows the generator was trained on, and what it produced; same columns.
    holdout
        Real rows from the same population that the generator never saw. Needed for utility
        (models are tested on them) and membership risk (the baseline a copy is told from).
    target
        Column to predict for utility; its kind (classification or regression) is inferred.
    schema
        Column kinds; without one, numeric dtypes are numerical and the rest categorical.
    seed
        Makes every sample and model deterministic.
    progress
        Called as ``progress(stage, done, total)`` during the slow parts; the stages, in order:
        ``prepare``, ``tstr`` (models trained on synthetic rows), ``fidelity``, ``trtr`` (models
        trained on real rows), ``privacy`` (one call per chunk of distances), ``sdmetrics``.

    Returns
    -------
    EvaluationReport
        Every figure, a verdict per area with the thresholds behind it; ``to_json`` / ``to_html``.
    """
    started = time.perf_counter()
    check_tables(real, synthetic, holdout, target)
    context = build_context(synthetic, schema=schema, target=target, seed=seed, progress=progress)
    timings = {"context (fit on synthetic, incl. TSTR models)": time.perf_counter() - started}
    scores = party_scores(real, synthetic, context=context, holdout_rows=holdout, progress=progress)
    merged = merge_scores([scores])
    clock = time.perf_counter()
    report_progress(progress, "sdmetrics", 0, 1)
    statistics = fidelity_from_statistics(merged, context.synthetic_statistics, context.bins)
    real_prepared = prepare(real, context.layout, "real")
    synthetic_prepared = prepare(synthetic, context.layout, "synthetic")
    fidelity = with_sdmetrics(statistics, real_prepared, synthetic_prepared, context.layout)
    report_progress(progress, "sdmetrics", 1, 1)
    timings["sdmetrics"] = time.perf_counter() - clock
    timings["total"] = time.perf_counter() - started
    return build_report(merged, context, mode="central", parties=1, fidelity=fidelity, timings=timings)
