"""Fixtures for the encoder tests; the table builders live in ``transformer_tables``."""

from __future__ import annotations

import pandas as pd
import pytest
from transformer_tables import mixed_frame


@pytest.fixture(scope="module")
def mixed() -> pd.DataFrame:
    return mixed_frame(5000, seed=7)
