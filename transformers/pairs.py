"""2-way marginals of a declared target with every other column: the last statistics stage (PrivSyn/AIM-style).

Under DP a model fitted by noisy gradients keeps the relations with the target worse than its column
shapes; one cross table per column, released once with the encoder statistics, pins them down
cheaply. The server sends the plan it has fitted so far (released values only); each party counts,
per non-target column, target class × the column's encoded class — a categorical column's vocabulary
index (rare and missing buckets included), a numerical column's mixture mode as a soft share
(the mode posterior the encoder samples a row's mode from; a missing value is its missing mode). So
the coarse bins of a numerical column are its mixture modes (at most ``num_components``, 10): the very
classes a model's mode head predicts, each holding a sizeable share of the rows, so the noise per cell
stays small next to its count.

Sensitivity: a row adds a vector of L2 norm ≤ 1 (one 1, or a share vector summing to 1) to one target
row of each column's table, so each column's table is one Gaussian release at the encoder σ
(``pair_releases``). The server sums, clips at zero and rakes each table to the released 1-way counts
(``consistent_table``): post-processing only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fedtab.errors import ConfigError, SchemaError
from fedtab.schema import ColumnKind, PartyTable, TableSchema
from fedtab.transformers import protocol as p
from fedtab.transformers.codecs import encode_categorical, mode_log_posterior
from fedtab.transformers.values import numeric_values

if TYPE_CHECKING:
    from fedtab.transformers.plan import ColumnPlan, TransformPlan

RAKE_ITERATIONS = 20


def pair_columns(schema: TableSchema, target: str) -> list[str]:
    """The columns a party releases a cross table of with ``target``: every modelled column but the target."""
    from fedtab.transformers.plan import DISCRETE_KINDS, NUMERIC_KINDS

    return [c.name for c in schema if c.kind in (*NUMERIC_KINDS, *DISCRETE_KINDS) and c.name != target]


def pair_releases(schema: TableSchema, target: str | None) -> int:
    """One Gaussian release per cross table (0 without a target): fixed by the schema, so it can be planned."""
    return 0 if target is None else len(pair_columns(schema, target))


def pair_request(plan: TransformPlan, target: str, private: bool) -> p.StatsRequest:
    """The stage's request: the plan so far (released values only), the target and the columns to cross it with."""
    from fedtab.transformers.plan import DISCRETE_KINDS

    if target not in plan.schema.names or plan.column(target).kind not in DISCRETE_KINDS:
        raise ConfigError(f"The target of the 2-way marginals must be a categorical column of the plan; got {target!r} "
                          f"(columns {plan.schema.names}). Declare a categorical target.")
    columns = [c for c in pair_columns(plan.schema, target) if plan.column(c).spans]
    config: dict[str, p.ConfigValue] = {
        p.CFG_TARGET: target, p.CFG_PAIR_COLUMNS: columns, p.CFG_PAIR_PLAN: json.dumps(plan.to_dict()),
        p.CFG_NUMERICAL: [], p.CFG_DISCRETE: [],
    }
    if private:
        config[p.CFG_PRIVATE] = True
    return p.StatsRequest(p.STAGE_PAIRS, {}, config)


def pair_shape(request: p.StatsRequest) -> dict[str, tuple[int, ...]]:
    """The reply's one array: (columns, target classes, widest column's classes), fixed by the request."""
    plan = _request_plan(request)
    widths = [pair_width(plan.column(c)) for c in request.config[p.CFG_PAIR_COLUMNS]]
    return {p.PAIR_COUNTS: (len(widths), pair_width(plan.column(str(request.config[p.CFG_TARGET]))), max(widths, default=0))}


def pair_width(column: ColumnPlan) -> int:
    """A column's classes in its cross table: its vocabulary, or its mixture modes."""
    return len(column.vocabulary) if column.vocabulary else len(column.means)


def padding_problems(request: p.StatsRequest, counts: np.ndarray) -> list[str]:
    """Cells past a column's own width must be exactly 0 (they cannot come out of a release)."""
    plan = _request_plan(request)
    for j, name in enumerate(request.config[p.CFG_PAIR_COLUMNS]):
        if np.any(counts[j, :, pair_width(plan.column(name)):] != 0):
            return [f"the cross table of column '{name}' carries counts past its {pair_width(plan.column(name))} classes"]
    return []


def party_pairs(table: PartyTable, request: p.StatsRequest, release: Any = None) -> dict[str, np.ndarray]:
    """The party's cross tables, exact (``release`` None) or each through one Gaussian release."""
    plan = _request_plan(request)
    target = str(request.config[p.CFG_TARGET])
    frame = plan.imputed(table.frame) if release is not None else table.frame
    classes = pair_width(plan.column(target))
    y = _category_index(plan.column(target), frame[target])
    names = list(request.config[p.CFG_PAIR_COLUMNS])
    out = np.zeros(pair_shape(request)[p.PAIR_COUNTS])
    for j, name in enumerate(names):
        column = plan.column(name)
        width = pair_width(column)
        if column.vocabulary:
            cell = y * width + _category_index(column, frame[name])
            counts = (np.bincount(cell, minlength=classes * width).astype(float) if release is None
                      else release.histogram(cell, classes * width, column=name))
        else:
            shares = _mode_shares(column, frame[name], table.name)
            rows = (np.eye(classes)[y][:, :, None] * shares[:, None, :]).reshape(len(y), classes * width)
            counts = rows.sum(axis=0) if release is None else release.clipped_sum(rows, bound=1.0, column=name)
        out[j, :, :width] = np.asarray(counts).reshape(classes, width)
    return {p.PAIR_COUNTS: out}


def _request_plan(request: p.StatsRequest) -> TransformPlan:
    from fedtab.transformers.plan import TransformPlan

    return TransformPlan.from_dict(json.loads(str(request.config[p.CFG_PAIR_PLAN])))


def _category_index(column: ColumnPlan, series: pd.Series) -> np.ndarray:
    block = np.zeros((len(series), len(column.vocabulary)))
    encode_categorical(column, series.reset_index(drop=True), block)
    return block.argmax(axis=1).astype(np.int64)


def _mode_shares(column: ColumnPlan, series: pd.Series, party: str) -> np.ndarray:
    """Each row's mode posterior (what the encoder samples its mode from); a missing value: its missing mode."""
    x = numeric_values(series, column=column.name, party=party, is_datetime=column.kind is ColumnKind.DATETIME,
                       datetime_format=column.datetime_format)
    missing = np.isnan(x)
    if missing.any() and not column.has_missing:
        raise SchemaError(f"Column '{column.name}' of party '{party}' has gaps the plan keeps no place for; expected "
                          "them filled (TransformPlan.imputed) before its cross table is counted. Update the party.")
    means, stds, weights = column.mixture_arrays()
    shares = np.exp(mode_log_posterior(np.where(missing, column.missing_fill, x), weights, means, stds))
    shares[missing] = np.eye(len(means))[column.missing_mode]
    return shares


def consistent_table(counts: np.ndarray, target_counts: Sequence[float], column_counts: Sequence[float] | None,
                     ) -> np.ndarray:
    """A summed noisy cross table made non-negative and raked (iterative proportional fitting) to the released
    1-way counts of the target (rows) and, where given, of the column: each of those is one noisy count per
    cell, so it is more accurate than the table's own sums. Post-processing only."""
    table = np.clip(np.asarray(counts, dtype=np.float64), 0.0, None) + 1e-3
    rows = np.clip(np.asarray(target_counts, dtype=np.float64), 1e-3, None)
    cols = None if column_counts is None else np.clip(np.asarray(column_counts, dtype=np.float64), 1e-3, None)
    if cols is not None:
        cols = cols * rows.sum() / cols.sum()
    for _ in range(RAKE_ITERATIONS if cols is not None else 0):
        table *= (rows / table.sum(axis=1))[:, None]
        table *= (cols / table.sum(axis=0))[None, :]
    return table * (rows / table.sum(axis=1))[:, None]  # the target's counts exactly, the column's nearly


def conditional_shares(plan: TransformPlan, column: str) -> np.ndarray | None:
    """P(column's class | target class), (target classes, column classes), from the plan's released cross table;
    None when the plan holds none for ``column``."""
    counts = np.asarray(plan.column(column).pair_counts, dtype=np.float64)
    if plan.target is None or counts.ndim != 2 or counts.size == 0:
        return None
    counts = np.clip(counts, 0.0, None) + 1e-6
    return counts / counts.sum(axis=1, keepdims=True)
