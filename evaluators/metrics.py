"""The evaluation's figures one by one, as small stateless classes in the SDMetrics manner.

Each metric declares its ``name``, ``goal`` (maximize, minimize, or an ``ideal`` value), its range,
and a ``compute`` classmethod over plain DataFrames; ``normalize`` maps a raw value to [0, 1]
with 1 best. They run the same code as :func:`fedtab.evaluators.evaluate` — use that to get
every figure at once, these to get one.
"""

from __future__ import annotations

import enum
import math
from typing import ClassVar

import pandas as pd

from fedtab.evaluators.context import build_context
from fedtab.evaluators.federated import merge_scores, party_scores, party_utility
from fedtab.evaluators.fidelity import paper_wasserstein, fidelity_from_statistics
from fedtab.evaluators.inputs import check_tables, prepare, resolve_layout
from fedtab.evaluators.privacy import finalize_privacy
from fedtab.evaluators.report import FidelityResult, PrivacyResult
from fedtab.evaluators.utility import finalize_utility
from fedtab.schema import TableSchema


class Goal(str, enum.Enum):
    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"
    IDEAL = "ideal"


class Metric:
    """Base: a name, a goal and a range; ``compute`` returns the raw value."""

    name: ClassVar[str]
    goal: ClassVar[Goal]
    min_value: ClassVar[float]
    max_value: ClassVar[float]
    ideal: ClassVar[float | None] = None

    @classmethod
    def normalize(cls, raw: float) -> float:
        """Map a raw value to [0, 1], 1 being best."""
        lo, hi = cls.min_value, cls.max_value
        if cls.goal is Goal.IDEAL:
            reach = max(cls.ideal - lo, hi - cls.ideal)
            return float(1 - abs(raw - cls.ideal) / reach)
        if math.isinf(hi):
            value = 1 / (1 + max(raw - lo, 0.0))
            return float(value if cls.goal is Goal.MINIMIZE else 1 - value)
        share = (raw - lo) / (hi - lo)
        return float(share if cls.goal is Goal.MAXIMIZE else 1 - share)


class ColumnShapes(Metric):
    """Mean KS complement (numbers) / TV complement (categories) per column."""

    name, goal, min_value, max_value = "Column shapes", Goal.MAXIMIZE, 0.0, 1.0

    @classmethod
    def compute(cls, real: pd.DataFrame, synthetic: pd.DataFrame, *, schema: TableSchema | None = None) -> float:
        return _fidelity(real, synthetic, schema).column_shapes


class ColumnPairTrends(Metric):
    """Mean correlation similarity (two numbers) / contingency similarity (other pairs) per pair."""

    name, goal, min_value, max_value = "Column pair trends", Goal.MAXIMIZE, 0.0, 1.0

    @classmethod
    def compute(cls, real: pd.DataFrame, synthetic: pd.DataFrame, *, schema: TableSchema | None = None) -> float:
        return _fidelity(real, synthetic, schema).column_pair_trends


class JSDistance(Metric):
    """Fed-TGAN's average Jensen–Shannon distance (base 2) over categorical columns."""

    name, goal, min_value, max_value = "Average Jensen-Shannon distance", Goal.MINIMIZE, 0.0, 1.0

    @classmethod
    def compute(cls, real: pd.DataFrame, synthetic: pd.DataFrame, *, schema: TableSchema | None = None) -> float:
        return _fidelity(real, synthetic, schema).js_distance


class WassersteinDistance(Metric):
    """Fed-TGAN's average Wasserstein distance over numerical columns min-max scaled by the real range."""

    name, goal, min_value, max_value = "Average Wasserstein distance", Goal.MINIMIZE, 0.0, math.inf

    @classmethod
    def compute(cls, real: pd.DataFrame, synthetic: pd.DataFrame, *, schema: TableSchema | None = None) -> float:
        check_tables(real, synthetic, None, None)
        layout = resolve_layout(synthetic, schema)
        r, s = prepare(real, layout, "real"), prepare(synthetic, layout, "synthetic")
        values = [paper_wasserstein(r[name], s[name]) for name in layout.numerical]
        finite = [v for v in values if math.isfinite(v)]
        return sum(finite) / len(finite) if finite else math.nan


class RelativeUtility(Metric):
    """(TSTR − chance) / (TRTR − chance) on ROC-AUC or R², mean over three model families."""

    name, goal, min_value, max_value, ideal = "Relative utility", Goal.IDEAL, -1.0, 2.0, 1.0

    @classmethod
    def compute(cls, real: pd.DataFrame, synthetic: pd.DataFrame, *, holdout: pd.DataFrame, target: str, seed: int = 0) -> float:
        check_tables(real, synthetic, holdout, target)
        context = build_context(synthetic, target=target, seed=seed)
        scores = party_utility(prepare(real, context.layout, "real"), prepare(holdout, context.layout, "holdout"), context, None)
        return finalize_utility(scores, context.task).relative_utility


class DCRShare(Metric):
    """Share of synthetic rows closer to train than to an equal-size holdout; 0.5 is ideal."""

    name, goal, min_value, max_value, ideal = "DCR share closer to train", Goal.IDEAL, 0.0, 1.0, 0.5

    @classmethod
    def compute(cls, real: pd.DataFrame, synthetic: pd.DataFrame, *, holdout: pd.DataFrame, seed: int = 0) -> float:
        return _privacy(real, synthetic, holdout, seed).dcr_share


class NNDRatio(Metric):
    """Mean closest / second-closest train distance of synthetic rows; near 0 singles out real rows."""

    name, goal, min_value, max_value = "Nearest-neighbour distance ratio", Goal.MAXIMIZE, 0.0, 1.0

    @classmethod
    def compute(cls, real: pd.DataFrame, synthetic: pd.DataFrame, *, holdout: pd.DataFrame, seed: int = 0) -> float:
        return _privacy(real, synthetic, holdout, seed).nndr_train


class ExactCopies(Metric):
    """Share of synthetic rows identical to some train row."""

    name, goal, min_value, max_value = "Exact copies of train rows", Goal.MINIMIZE, 0.0, 1.0

    @classmethod
    def compute(cls, real: pd.DataFrame, synthetic: pd.DataFrame, *, holdout: pd.DataFrame, seed: int = 0) -> float:
        return _privacy(real, synthetic, holdout, seed).exact_copies


class DistanceAttackAUC(Metric):
    """AUC of telling train from holdout rows by their distance to the closest synthetic row."""

    name, goal, min_value, max_value, ideal = "Distance attack AUC", Goal.IDEAL, 0.0, 1.0, 0.5

    @classmethod
    def compute(cls, real: pd.DataFrame, synthetic: pd.DataFrame, *, holdout: pd.DataFrame, seed: int = 0) -> float:
        return _privacy(real, synthetic, holdout, seed).attacks[0].auc


class DensityAttackAUC(Metric):
    """AUC of the DOMIAS density-ratio attack."""

    name, goal, min_value, max_value, ideal = "Density-ratio attack AUC", Goal.IDEAL, 0.0, 1.0, 0.5

    @classmethod
    def compute(cls, real: pd.DataFrame, synthetic: pd.DataFrame, *, holdout: pd.DataFrame, seed: int = 0) -> float:
        return _privacy(real, synthetic, holdout, seed).attacks[1].auc


def _fidelity(real: pd.DataFrame, synthetic: pd.DataFrame, schema: TableSchema | None) -> FidelityResult:
    check_tables(real, synthetic, None, None)
    context = build_context(synthetic, schema=schema)
    merged = merge_scores([party_scores(real, synthetic, context=context)])
    return fidelity_from_statistics(merged, context.synthetic_statistics, context.bins)


def _privacy(real: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame, seed: int) -> PrivacyResult:
    check_tables(real, synthetic, holdout, None)
    context = build_context(synthetic, seed=seed)
    return finalize_privacy(merge_scores([party_scores(real, synthetic, context=context, holdout_rows=holdout)]))
