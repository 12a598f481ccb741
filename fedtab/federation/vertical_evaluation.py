"""A vertical party's half of fedtab's federated evaluation: score its own columns, release scores only.

In a vertical run no party holds a whole row, so the figures a federation can compute without
moving rows are the ones that live inside one party: each of its column shapes and each pair trend
between two of its own columns. The server sends a party the synthetic table's columns of that
party (synthetic, so they may travel); the party bins them and its own aligned rows on edges fitted
on the synthetic columns (SDMetrics' definitions, ``fedtab.evaluators.statistics``) and replies
with the scores alone: no counts, no correlations of its real rows, no row. Pairs across parties
would need both parties' real columns side by side, which fedtab never assembles: the server
reports them as unavailable.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import pandas as pd

from fedtab.federation import keys
from fedtab.federation.payload import Payload
from fedtab.schema import TableSchema

SHAPES = "vertical.shapes"
PAIRS = "vertical.pairs"


def evaluation_request(synthetic: pd.DataFrame, *, seed: int) -> Payload:
    """The message that asks a party to score its synthetic columns (``synthetic`` holds only those)."""
    from fedtab.federation.vertical_party import frame_bytes

    return Payload(arrays={keys.SYNTHETIC: frame_bytes(synthetic)}, config={keys.RUN + ".seed": seed})


def score_own_columns(party: str, aligned: pd.DataFrame, schema: TableSchema, payload: Payload) -> Payload:
    """Column shapes and within-party pair trends of the synthetic columns against the party's aligned rows."""
    from fedtab.errors import SchemaError
    from fedtab.evaluators.fidelity import fidelity_from_statistics
    from fedtab.evaluators.inputs import check_columns, prepare, resolve_layout
    from fedtab.evaluators.statistics import FidelityBins, local_fidelity
    from fedtab.federation.vertical_party import frame_from_bytes

    synthetic = frame_from_bytes(payload.arrays[keys.SYNTHETIC])
    unknown = sorted(set(synthetic.columns) - set(schema.names))
    if unknown:
        raise SchemaError(f"Party {party!r} was asked to score columns {unknown}, which it does not hold (its columns: "
                          f"{schema.names}). A vertical party scores only its own columns; run every party on one fedtab version.")
    layout = resolve_layout(synthetic, TableSchema(tuple(c for c in schema if c.name in synthetic.columns)))
    check_columns(synthetic, layout, f"party '{party}' synthetic")
    check_columns(aligned, layout, f"party '{party}' real")
    fake, real = prepare(synthetic, layout, f"party '{party}' synthetic"), prepare(aligned, layout, f"party '{party}' real")
    bins = FidelityBins.fit(fake, layout)
    fidelity = fidelity_from_statistics(local_fidelity(real, bins), local_fidelity(fake, bins), bins)
    shapes = [{"column": c.column, "kind": c.kind, "metric": c.metric, "score": c.score} for c in fidelity.columns]
    pairs = [{k: v for k, v in asdict(p).items() if k not in ("real_correlation", "synthetic_correlation")}
             for p in fidelity.pairs]
    return Payload(config={keys.PARTY: party, SHAPES: json.dumps(shapes, allow_nan=True), PAIRS: json.dumps(pairs, allow_nan=True)})
