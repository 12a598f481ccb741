"""Federated encoders: the TransformPlan every model reads, fitted from party statistics.

Parties answer ``StatsRequest``s with ``local_statistics`` (aggregates only); the server's
``PlanFitter`` merges them and ``finalize``s an immutable ``TransformPlan`` that encodes rows the
CTGAN way and decodes model output back to the exact real schema. ``PlanFitter(mode="private")``
fits under differential privacy: parties answer through a Gaussian release, the server post-processes.
"""

from fedtab.transformers.fitter import MODES, PlanFitter, fit_plan
from fedtab.transformers.mixture import mixture_log_likelihood
from fedtab.transformers.plan import ColumnPlan, DiscreteSpan, SpanInfo, TransformPlan
from fedtab.transformers.private_party import EncoderReleases, StatisticsRelease, private_reply_problems
from fedtab.transformers.protocol import STAGES, StatsRequest, local_statistics
from fedtab.transformers.values import MISSING_TOKEN, RARE_TOKEN

__all__ = [
    "MISSING_TOKEN",
    "MODES",
    "RARE_TOKEN",
    "STAGES",
    "ColumnPlan",
    "DiscreteSpan",
    "EncoderReleases",
    "PlanFitter",
    "SpanInfo",
    "StatisticsRelease",
    "StatsRequest",
    "TransformPlan",
    "fit_plan",
    "local_statistics",
    "mixture_log_likelihood",
    "private_reply_problems",
]
