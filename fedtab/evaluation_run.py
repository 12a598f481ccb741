"""Federated evaluation on the live federation: the synthetic table travels, each party scores it
against its own training and held-out rows, and only scores come back to be aggregated."""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fedtab.config import FedtabConfig
from fedtab.federation import keys
from fedtab.federation.coordinator import FederatedFit, Transport
from fedtab.federation.payload import Payload
from fedtab.model_state import ModelState
from fedtab.sampler import sample_table
from fedtab.schema import TableSchema


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
