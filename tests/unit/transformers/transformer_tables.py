"""Small seeded tables for the encoder tests, built in code with hand-written schemas."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from fedtab.schema import ColumnKind, ColumnSchema, PartyTable, TableSchema

ADULT_NUMERICAL = ("age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week")

MIXED_SCHEMA = TableSchema(
    (
        ColumnSchema("rid", ColumnKind.IDENTIFIER, "object"),
        ColumnSchema("bimodal", ColumnKind.NUMERICAL, "float64"),
        ColumnSchema("trimodal", ColumnKind.NUMERICAL, "float64"),
        ColumnSchema("visits", ColumnKind.NUMERICAL, "int64", is_integer=True, has_missing=True),
        ColumnSchema("colour", ColumnKind.CATEGORICAL, "object", has_missing=True),
        ColumnSchema("grade", ColumnKind.CATEGORICAL, "int64"),
        ColumnSchema("member", ColumnKind.BOOLEAN, "bool"),
        ColumnSchema("joined", ColumnKind.DATETIME, "datetime64[ns]"),
    )
)


def mixed_frame(num_rows: int, seed: int = 0) -> pd.DataFrame:
    """Bimodal and trimodal numericals, a gappy integer, categoricals, a boolean and a date."""
    rng = np.random.default_rng(seed)
    left = rng.random(num_rows) < 0.4
    bimodal = np.where(left, rng.normal(-5.0, 1.0, num_rows), rng.normal(5.0, 1.5, num_rows))
    mode = rng.choice(3, size=num_rows, p=[0.5, 0.3, 0.2])
    trimodal = rng.normal(np.array([0.0, 10.0, 20.0])[mode], np.array([1.0, 0.5, 2.0])[mode])
    visits = pd.array(rng.poisson(4.0, num_rows), dtype="Int64")
    visits[rng.random(num_rows) < 0.05] = pd.NA
    colour = rng.choice(np.array(["red", "green", "blue", "teal", "plum"], dtype=object), num_rows,
                        p=[0.4, 0.3, 0.15, 0.1, 0.05])
    colour[rng.random(num_rows) < 0.03] = None
    days = rng.integers(0, 3 * 365, num_rows)
    return pd.DataFrame(
        {
            "rid": [f"r{i}" for i in range(num_rows)],
            "bimodal": bimodal,
            "trimodal": trimodal,
            "visits": visits,
            "colour": colour,
            "grade": rng.choice([1, 2, 3], num_rows, p=[0.2, 0.5, 0.3]),
            "member": rng.random(num_rows) < 0.3,
            "joined": pd.Timestamp("2020-01-01") + pd.to_timedelta(days, unit="D"),
        }
    )


def split_parties(frame: pd.DataFrame, schema: TableSchema, parts: int, prefix: str = "party") -> list[PartyTable]:
    """Contiguous, unequal slices so parties differ in size."""
    cuts = np.linspace(0, len(frame), parts + 1).astype(int)
    cuts[1:-1] += np.arange(1, parts) * 7
    return [
        PartyTable(f"{prefix}{i}", frame.iloc[a:b].reset_index(drop=True), schema)
        for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:]))
    ]


def one_party(frame: pd.DataFrame, schema: TableSchema) -> Sequence[PartyTable]:
    return [PartyTable("pooled", frame, schema)]
