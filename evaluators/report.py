"""The evaluation's result: one frozen value with every figure, the verdicts, and two ways out.

``to_json`` writes every figure (NaN as null); ``from_json`` reads it back, so a report can be
rendered again or compared later without the data. ``to_html`` writes one self-contained page.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from fedtab.errors import ConfigError

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Verdict:
    """A headline a data steward reads: the level, a colour, one plain sentence, and the rule behind it."""

    area: str
    level: str
    headline: str
    colour: str
    explanation: str
    rule: str


@dataclass(frozen=True)
class ColumnShape:
    column: str
    kind: str
    metric: str
    score: float
    distance: float | None = None


@dataclass(frozen=True)
class PairTrend:
    column_1: str
    column_2: str
    metric: str
    score: float
    real_correlation: float | None = None
    synthetic_correlation: float | None = None


@dataclass(frozen=True)
class FidelityResult:
    column_shapes: float
    column_pair_trends: float
    quality_score: float
    source: str
    pair_trends_independent: float
    js_distance: float | None = None
    wasserstein_distance: float | None = None
    sdmetrics: Mapping[str, float] = field(default_factory=dict)
    columns: tuple[ColumnShape, ...] = ()
    pairs: tuple[PairTrend, ...] = ()
    marginals: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class ModelScores:
    model: str
    tstr: Mapping[str, float | None]
    trtr: Mapping[str, float | None]


@dataclass(frozen=True)
class UtilityResult:
    target: str
    task: str
    primary_metric: str
    relative_utility: float
    test_rows: int
    models: tuple[ModelScores, ...] = ()
    positive_class: str | None = None
    trtr_note: str = ""


@dataclass(frozen=True)
class AttackResult:
    name: str
    auc: float
    tpr_at_1pct_fpr: float
    tpr_at_01pct_fpr: float
    roc_fpr: list[float] = field(default_factory=list)
    roc_tpr: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class PrivacyResult:
    exact_copies: float
    has_holdout: bool
    dcr_share: float | None = None
    dcr_train_median: float | None = None
    dcr_holdout_median: float | None = None
    exact_train_share: float | None = None
    exact_holdout_share: float | None = None
    nndr_train: float | None = None
    nndr_holdout: float | None = None
    attack_rows: int = 0
    synthetic_rows: int = 0
    dcr_edges: list[float] = field(default_factory=list)
    dcr_train_counts: list[int] = field(default_factory=list)
    dcr_holdout_counts: list[int] = field(default_factory=list)
    attacks: tuple[AttackResult, ...] = ()

    @property
    def attack_auc(self) -> float | None:
        """The strongest attack's AUC: the risk is what the best attacker we tried achieves."""
        return max((a.auc for a in self.attacks), default=None)

    @property
    def attack_tpr_at_1pct_fpr(self) -> float | None:
        return max((a.tpr_at_1pct_fpr for a in self.attacks), default=None)


@dataclass(frozen=True)
class EvaluationReport:
    """Every figure of one evaluation, its verdicts, and how it was computed."""

    mode: str
    parties: int
    rows: Mapping[str, int]
    columns: Mapping[str, str]
    target: str | None
    seed: int
    distance: str
    fidelity: FidelityResult
    utility: UtilityResult | None
    privacy: PrivacyResult | None
    verdicts: tuple[Verdict, ...]
    timings: Mapping[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    created: str = ""
    ledger: Mapping[str, Any] | None = None

    def provenance(self) -> tuple[str, ...]:
        """Which figures are DP releases, which come from the synthetic table alone, which are exact.

        Federated evaluation is refused under DP (no party sends an exact score after a DP run), so
        every figure here that reads real rows is exact and covered by no privacy ledger.
        """
        who = ("each party on its own rows (only scores left the parties)" if self.mode == "federated"
               else "one examiner who holds the real and held-out rows")
        lines = [
            f"Exact, not differentially private: every fidelity, utility and membership figure, computed by {who}. "
            "No ledger covers them; share them only with those allowed to see the real data.",
            "From the synthetic table alone (free to share): the synthetic rows and columns counted here.",
        ]
        if self.ledger is not None:
            lines.append("DP releases: only the model itself (its training and encoder statistics, as the ledger below "
                         "records). None of the figures in this report is a DP release.")
        return tuple(lines)

    def verdict(self, area: str) -> Verdict:
        for verdict in self.verdicts:
            if verdict.area == area:
                return verdict
        raise KeyError(area)

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, **json_ready(asdict(self)), "provenance": list(self.provenance())}

    def to_json(self, path: str | Path) -> Path:
        return write_report(report_json(self.to_dict()), path)

    def to_html(self, path: str | Path) -> Path:
        from fedtab.evaluators.html import render_html

        return write_report(render_html(self), path)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationReport:
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ConfigError(
                f"This evaluation JSON has schema version {data.get('schema_version')!r}; this fedtab reads "
                f"version {SCHEMA_VERSION}. Re-run `fedtab evaluate` to write a current one."
            )
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        fidelity = dict(_nan(data["fidelity"]))
        fidelity["columns"] = tuple(ColumnShape(**c) for c in fidelity.get("columns", ()))
        fidelity["pairs"] = tuple(PairTrend(**p) for p in fidelity.get("pairs", ()))
        fidelity["marginals"] = tuple(fidelity.get("marginals", ()))
        values["fidelity"] = FidelityResult(**fidelity)
        if data.get("utility") is not None:
            utility = dict(_nan(data["utility"]))
            utility["models"] = tuple(ModelScores(**m) for m in utility.get("models", ()))
            values["utility"] = UtilityResult(**utility)
        if data.get("privacy") is not None:
            privacy = dict(_nan(data["privacy"]))
            privacy["attacks"] = tuple(AttackResult(**a) for a in privacy.get("attacks", ()))
            values["privacy"] = PrivacyResult(**privacy)
        values["verdicts"] = tuple(Verdict(**v) for v in data["verdicts"])
        values["notes"] = tuple(data.get("notes", ()))
        return cls(**values)

    @classmethod
    def from_json(cls, path: str | Path) -> EvaluationReport:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def report_json(data: Mapping[str, Any]) -> str:
    """A report's JSON text: strict (no NaN), indented for people who open the file."""
    return json.dumps(data, indent=2, allow_nan=False)


def write_report(text: str, path: str | Path) -> Path:
    """Write a report file (JSON or HTML) as UTF-8 and return its path."""
    path = Path(path)
    path.write_text(text, encoding="utf-8")
    return path


def json_ready(value: Any) -> Any:
    """JSON-ready: tuples as lists, numpy scalars as Python numbers, NaN and infinity as null."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _nan(data: Mapping[str, Any]) -> dict[str, Any]:
    """Headline floats written as null (NaN) come back as NaN, so arithmetic on them still works."""
    out = dict(data)
    for key in ("column_shapes", "column_pair_trends", "quality_score", "pair_trends_independent", "relative_utility"):
        if key in out and out[key] is None:
            out[key] = math.nan
    return out
