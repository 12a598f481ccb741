"""Federated evaluation on the live federation: the synthetic table travels, each party scores it
against its own training and held-out rows, and only scores come back to be aggregated.

A vertical run (``VerticalEvaluationReport``) is scored the same way within each party: every party
scores its own synthetic columns against its own aligned rows (column shapes, pairs of its own
columns) and only those scores come back; pairs across parties are reported as unavailable.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fedtab.config import FedtabConfig
from fedtab.errors import FederationError
from fedtab.evaluators.report import ColumnShape, PairTrend, json_ready, report_json, write_report
from fedtab.federation import keys
from fedtab.federation.coordinator import FederatedFit, Transport
from fedtab.federation.payload import Payload
from fedtab.model_state import ModelState
from fedtab.sampler import sample_table
from fedtab.schema import TableSchema

if TYPE_CHECKING:
    from fedtab.federation.vertical_coordinator import VerticalFit


@dataclass(frozen=True)
class EvaluationRequest:
    """What to evaluate after training: the target column for utility, and how many synthetic rows."""

    target: str | None = None
    rows: int | None = None


def evaluate_on_federation(transport: Transport, fit: FederatedFit, *, config: FedtabConfig, request: EvaluationRequest):  # noqa: ANN201 - EvaluationReport
    from fedtab.evaluators import aggregate, build_context

    state = ModelState(plan=fit.plan, weights=fit.weights, config=config.replace(model_options=fit.model_options), parties=fit.parties)
    synthetic = sample_table(state, request.rows or sum(fit.parties.values()), seed=config.seed)
    payload = evaluation_payload(synthetic, fit.plan.schema, target=request.target, seed=config.seed)
    names = sorted(fit.parties)
    replies = transport.exchange(keys.EVALUATE, {p: payload for p in names})
    context = build_context(synthetic, schema=fit.plan.schema, target=request.target, seed=config.seed)
    report = aggregate([replies[p].arrays for p in names if p in replies], context=context)
    return dataclasses.replace(report, ledger=fit.ledger)


def evaluation_payload(synthetic: pd.DataFrame, schema: TableSchema, *, target: str | None, seed: int) -> Payload:
    """The message that asks every party to score ``synthetic`` (which travels) against its own rows."""
    buffer = io.BytesIO()
    synthetic.to_parquet(buffer, index=False)
    return Payload(
        arrays={keys.SYNTHETIC: np.frombuffer(buffer.getvalue(), dtype=np.uint8).copy()},
        config={keys.SCHEMA: json.dumps(schema.to_dict()), keys.TARGET: target or "", keys.RUN + ".seed": seed},
    )


VERTICAL_UNAVAILABLE = {
    "cross-party pair trends": (
        "A pair of columns held by two parties could only be scored with both parties' real columns side by side, row by "
        "row; fedtab never moves rows, so these pairs are not scored here. Score them centrally (`fedtab evaluate`, "
        "where one examiner is allowed to join the parties' real columns)."),
    "utility (TSTR)": "Training on real rows needs whole rows (features and target), which no party holds in a vertical run.",
    "membership risk": "Distances from synthetic rows to real rows need whole real rows, which no party holds.",
}


@dataclass(frozen=True)
class PartyFidelity:
    """One party's scores of its own synthetic columns against its own aligned rows (only scores left it)."""

    party: str
    columns: tuple[ColumnShape, ...]
    pairs: tuple[PairTrend, ...]

    @property
    def column_shapes(self) -> float:
        return _mean(c.score for c in self.columns)

    @property
    def pair_trends(self) -> float:
        return _mean(p.score for p in self.pairs)


@dataclass(frozen=True)
class VerticalEvaluationReport:
    """fedtab's own evaluation of a vertical run: what it can compute without moving rows, and what it cannot."""

    parties: tuple[PartyFidelity, ...]
    cross_party_pairs: tuple[tuple[str, str], ...]
    synthetic_rows: int
    aligned_rows: int
    seed: int
    created: str = ""
    mode: str = "vertical-federated"

    @property
    def unavailable(self) -> dict[str, str]:
        return dict(VERTICAL_UNAVAILABLE)

    def party(self, name: str) -> PartyFidelity:
        return next(p for p in self.parties if p.party == name)

    def to_dict(self) -> dict:
        parties = [{"party": p.party, "column_shapes": p.column_shapes, "pair_trends": p.pair_trends,
                    "columns": [dataclasses.asdict(c) for c in p.columns], "pairs": [dataclasses.asdict(t) for t in p.pairs]}
                   for p in self.parties]
        return json_ready({"mode": self.mode, "synthetic_rows": self.synthetic_rows, "aligned_rows": self.aligned_rows,
                           "seed": self.seed, "created": self.created, "parties": parties,
                           "cross_party_pairs": {"available": False, "pairs": [list(p) for p in self.cross_party_pairs],
                                                 "why": VERTICAL_UNAVAILABLE["cross-party pair trends"]},
                           "unavailable": self.unavailable, "provenance": VERTICAL_PROVENANCE})

    def to_json(self, path: str | Path) -> Path:
        return write_report(report_json(self.to_dict()), path)

    def to_html(self, path: str | Path) -> Path:
        return write_report(vertical_html(self), path)


VERTICAL_PROVENANCE = (
    "Exact, not differentially private: each party computed its scores on its own aligned rows and released the scores "
    "only (no counts, no correlations of its real rows, no row); share them only with those allowed to see the real data. "
    "A party refuses this evaluation once it has made differential-privacy releases."
)


def evaluate_vertical_on_federation(transport: Transport, fit: VerticalFit, *, config: FedtabConfig) -> VerticalEvaluationReport:
    """Sample through the parties (the table the run writes: same rows, same seed), then let each party score it."""
    from fedtab.federation.vertical_coordinator import sample_through_parties

    synthetic = sample_through_parties(transport, fit, config.rows or fit.rows, seed=config.seed)
    return score_vertical(transport, fit, synthetic, seed=config.seed)


def score_vertical(transport: Transport, fit: VerticalFit, synthetic: pd.DataFrame, *, seed: int) -> VerticalEvaluationReport:
    """Each party scores its own columns of ``synthetic``; cross-party pairs are listed as unavailable, never computed."""
    from fedtab.federation.payload import require_every
    from fedtab.federation.vertical_evaluation import evaluation_request

    names = list(fit.parties)
    replies = transport.exchange(keys.EVALUATE, {p: evaluation_request(synthetic[list(fit.parties[p].columns)], seed=seed)
                                                 for p in names})
    require_every(replies, names, "the vertical evaluation", "every party scores its own columns.")
    parties = tuple(_party_fidelity(p, replies[p], fit.parties[p].columns) for p in names)
    cross = tuple((a, b) for i, p in enumerate(names) for q in names[i + 1:]
                  for a in fit.parties[p].columns for b in fit.parties[q].columns)
    return VerticalEvaluationReport(parties, cross, len(synthetic), fit.rows, seed,
                                    created=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def _party_fidelity(party: str, reply: Payload, columns: tuple[str, ...]) -> PartyFidelity:
    from fedtab.federation.vertical_evaluation import PAIRS, SHAPES

    shapes = tuple(ColumnShape(**c) for c in json.loads(str(reply.config[SHAPES])))
    pairs = tuple(PairTrend(**p) for p in json.loads(str(reply.config[PAIRS])))
    foreign = sorted(({c.column for c in shapes} | {n for p in pairs for n in (p.column_1, p.column_2)}) - set(columns))
    if foreign:
        raise FederationError(f"Party {party!r} sent scores for columns {foreign}, which are not its own ({list(columns)}). "
                              "Run every party on one fedtab version.")
    return PartyFidelity(party, shapes, pairs)


def _mean(values: Iterable[float]) -> float:
    finite = [float(v) for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def vertical_html(report: VerticalEvaluationReport) -> str:
    """One self-contained page: a section per party, then what could not be computed and why."""
    from html import escape

    def table(header: list[str], rows: list[list[object]]) -> str:
        head = "".join(f"<th>{escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
        return f"<table><tr>{head}</tr>{body}</table>"

    parts = [f"<h1>Vertical federated evaluation</h1><p>{report.synthetic_rows} synthetic rows; each party scored its own "
             f"columns against its {report.aligned_rows} aligned rows. Seed {report.seed}. {escape(report.created)}</p>"]
    for p in report.parties:
        parts.append(f"<h2>Party {escape(p.party)}</h2><p>Column shapes {_cell(p.column_shapes)}; "
                     f"within-party pair trends {_cell(p.pair_trends)}</p>")
        parts.append("<h3>Column shapes</h3>" + table(["column", "kind", "metric", "score"],
                                                       [[c.column, c.kind, c.metric, c.score] for c in p.columns]))
        parts.append("<h3>Within-party pair trends</h3>" + table(
            ["column 1", "column 2", "metric", "score"], [[t.column_1, t.column_2, t.metric, t.score] for t in p.pairs]))
    parts.append(f"<h2>Cross-party pairs: unavailable</h2><p>{escape(VERTICAL_UNAVAILABLE['cross-party pair trends'])}</p>"
                 f"<p>{len(report.cross_party_pairs)} pairs not scored: "
                 f"{escape(', '.join(f'{a} × {b}' for a, b in report.cross_party_pairs))}</p>")
    parts.append("<h2>Not computed in a vertical federation</h2>" + table(
        ["figure", "why"], [[k, v] for k, v in report.unavailable.items() if k != "cross-party pair trends"]))
    parts.append(f"<h2>Provenance</h2><p>{escape(VERTICAL_PROVENANCE)}</p>")
    style = "body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}"
    return f"<!doctype html><html><head><meta charset='utf-8'><title>fedtab vertical evaluation</title><style>{style}</style></head><body>{''.join(parts)}</body></html>"


def _cell(value: object) -> str:
    from html import escape

    if isinstance(value, float):
        return "n/a" if not np.isfinite(value) else f"{value:.3f}"
    return escape(str(value))
