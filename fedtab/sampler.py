"""Sample encoded rows from a trained model and decode them into the real schema."""

from __future__ import annotations

import pandas as pd

from fedtab.errors import ConfigError
from fedtab.model_state import ModelState
from fedtab.models.registry import create_model
from fedtab.rng import numpy_rng
from fedtab.threads import single_torch_thread


def sample_table(state: ModelState, num_rows: int, *, seed: int) -> pd.DataFrame:
    """``num_rows`` synthetic rows; the same state and seed give the same rows."""
    if isinstance(num_rows, bool) or not isinstance(num_rows, int) or num_rows < 1:
        raise ConfigError(f"num_rows must be an int >= 1; got {num_rows!r}.")
    model = create_model(state.config.model, state.plan, state.config.model_options, seed=state.config.seed,
                         private=state.config.private)
    with single_torch_thread():
        encoded = model.sample(state.weights, num_rows, seed=seed)
    return state.plan.decode(encoded, numpy_rng(seed, "decode"))
