"""Turn the server's merged statistics and fitted mixtures into the immutable TransformPlan."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedtab.schema import ColumnKind, ColumnSchema, TableSchema
from fedtab.transformers import mixture
from fedtab.transformers import protocol as p
from fedtab.transformers.codecs import mode_log_posterior
from fedtab.transformers.dtypes import is_integer_dtype, is_textual, nullable
from fedtab.transformers.numeric_server import FinalMixture, HistogramLayout, Standardisation, final_mixture
from fedtab.transformers.plan import NUMERIC_KINDS, ColumnPlan, SpanInfo, TransformPlan
from fedtab.transformers.values import MISSING_TOKEN, RARE_TOKEN
from fedtab.transformers.vocabulary import Vocabulary


@dataclass(frozen=True)
class PlanInputs:
    """What the server knows once the last round is merged (numerical arrays in schema order)."""

    schema: TableSchema
    summary: dict[str, np.ndarray]
    low: np.ndarray
    high: np.ndarray
    steps: np.ndarray
    fitted: np.ndarray
    space: Standardisation | None
    state: mixture.MixtureState | None
    vocabularies: dict[str, Vocabulary]
    layout: HistogramLayout | None = None
    histograms: np.ndarray | None = None
    """The summed histograms (fitted columns' order) the plan keeps for quantile maps."""


def build_plan(inputs: PlanInputs) -> TransformPlan:
    numeric_names = [c.name for c in inputs.schema if c.kind in NUMERIC_KINDS]
    columns, notes = [], []
    for column in inputs.schema:
        if column.kind is ColumnKind.IDENTIFIER:
            columns.append(ColumnPlan(column.name, column.kind, column.dtype, textual=is_textual(column.dtype)))
            notes.append(_identifier_note(column))
        elif column.kind in NUMERIC_KINDS:
            plan, note = _numeric_plan(column, numeric_names.index(column.name), inputs)
            columns.append(plan)
            notes.extend([note] if note else [])
        else:
            vocabulary = inputs.vocabularies[column.name]
            columns.append(_discrete_plan(column, vocabulary))
            notes.extend([vocabulary.note] if vocabulary.note else [])
    return TransformPlan(inputs.schema, tuple(columns), tuple(notes))


def _numeric_plan(column: ColumnSchema, j: int, inputs: PlanInputs) -> tuple[ColumnPlan, str | None]:
    count = float(inputs.summary[p.NUM_COUNT][j])
    has_missing = column.has_missing or float(inputs.summary[p.NUM_MISSING][j]) > 0
    note = None
    if count > 0 and inputs.state is not None and inputs.space is not None:
        position = int(np.flatnonzero(inputs.fitted == j)[0])
        space = inputs.space
        mix = final_mixture(inputs.state.take(position), float(space.loc[position]), float(space.scale[position]))
        bounds = (float(inputs.low[j]), float(inputs.high[j]))
        histogram = _kept_histogram(inputs, position)
    else:
        bounds = column.bounds or (0.0, 0.0)
        mix = FinalMixture((float(np.mean(bounds)),), (1.0,), (1.0,))
        histogram = {}
        has_missing = True
        note = f"Column '{column.name}' has no values at any party; it is modelled as always missing."
    means, stds, weights = (np.asarray(v) for v in (mix.means, mix.stds, mix.weights))
    fill = float((weights * means).sum())
    step = float(inputs.steps[j])
    if step == 0 and (column.is_integer or is_integer_dtype(column.dtype)):
        step = 1.0
    spans = (SpanInfo(1, "tanh"), SpanInfo(len(means), "softmax")) + ((SpanInfo(2, "softmax"),) if has_missing else ())
    plan = ColumnPlan(
        name=column.name,
        kind=column.kind,
        dtype=nullable(column.dtype) if has_missing else column.dtype,
        spans=spans,
        means=mix.means,
        stds=mix.stds,
        weights=mix.weights,
        bounds=bounds,
        is_integer=step >= 1,
        step=step,
        has_missing=has_missing,
        missing_mode=int(mode_log_posterior(np.array([fill]), weights, means, stds)[0].argmax()),
        missing_fill=fill,
        textual=False,
        datetime_format=column.datetime_format,
        **histogram,
    )
    return plan, note


def _kept_histogram(inputs: PlanInputs, position: int) -> dict[str, object]:
    """The fitted column's summed histogram and its bins, as ColumnPlan fields (none when not given)."""
    if inputs.layout is None or inputs.histograms is None:
        return {}
    return {"histogram": tuple(float(v) for v in inputs.histograms[position]),
            "histogram_low": float(inputs.layout.low[position]), "histogram_width": float(inputs.layout.width[position])}


def _discrete_plan(column: ColumnSchema, vocabulary: Vocabulary) -> ColumnPlan:
    textual = is_textual(column.dtype)
    has_missing = MISSING_TOKEN in vocabulary.labels
    may_be_missing = has_missing or (RARE_TOKEN in vocabulary.labels and not textual)
    return ColumnPlan(
        name=column.name,
        kind=column.kind,
        dtype=nullable(column.dtype) if may_be_missing else column.dtype,
        spans=(SpanInfo(len(vocabulary.labels), "softmax"),),
        has_missing=has_missing,
        vocabulary=vocabulary.labels,
        counts=vocabulary.counts,
        textual=textual,
    )


def _identifier_note(column: ColumnSchema) -> str:
    example = "1, 2, 3, …" if not is_textual(column.dtype) else "'id_000001', 'id_000002', …"
    return (
        f"Column '{column.name}' is an identifier: it is not modelled, and synthetic rows get fresh unique "
        f"values ({example}) that match no real row."
    )
