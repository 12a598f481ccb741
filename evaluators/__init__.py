"""Fidelity, utility and membership risk of a synthetic table, and the report people read.

``evaluate`` compares a synthetic table with the real rows in one place; ``build_context``,
``party_scores`` and ``aggregate`` do the same across parties whose rows never leave them.
Metrics are also available one by one in :mod:`fedtab.evaluators.metrics`.
"""

from fedtab.evaluators.central import evaluate
from fedtab.evaluators.context import EvaluationContext, build_context
from fedtab.evaluators.federated import aggregate, party_scores
from fedtab.evaluators.report import EvaluationReport, Verdict

__all__ = [
    "EvaluationContext",
    "EvaluationReport",
    "Verdict",
    "aggregate",
    "build_context",
    "evaluate",
    "party_scores",
]
