"""Fixtures for the encoder tests; the table builders live in ``transformer_tables``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from transformer_tables import ADULT_NUMERICAL, mixed_frame

from fedtab.schema import ColumnKind, ColumnSchema, TableSchema


@pytest.fixture(scope="module")
def mixed() -> pd.DataFrame:
    return mixed_frame(5000, seed=7)


@pytest.fixture(scope="module")
def adult(adult_train_path: Path) -> tuple[pd.DataFrame, TableSchema]:
    """Adult with a schema written by hand, so the encoder tests do not depend on inference."""
    frame = pd.read_csv(adult_train_path, na_values="?")
    schema = TableSchema(tuple(
        ColumnSchema(c, ColumnKind.NUMERICAL, "int64", is_integer=True) if c in ADULT_NUMERICAL
        else ColumnSchema(c, ColumnKind.CATEGORICAL, "object", has_missing=bool(frame[c].isna().any()))
        for c in frame.columns
    ))
    return frame, schema
