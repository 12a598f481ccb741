"""Sample encoded rows from a trained model, decode them into the real schema, and spell them as the parties do."""

from __future__ import annotations

import pandas as pd

from fedtab.connectors.declared import INTEGER_FROM_DATA
from fedtab.errors import ConfigError
from fedtab.model_state import ModelState
from fedtab.models.registry import create_model
from fedtab.rng import numpy_rng
from fedtab.schema import ColumnKind, TableSchema
from fedtab.threads import single_torch_thread


def sample_table(state: ModelState, num_rows: int, *, seed: int) -> pd.DataFrame:
    """``num_rows`` synthetic rows in the schema's dtypes; the same state and seed give the same rows."""
    if isinstance(num_rows, bool) or not isinstance(num_rows, int) or num_rows < 1:
        raise ConfigError(f"num_rows must be an int >= 1; got {num_rows!r}.")
    model = create_model(state.config.model, state.plan, state.config.model_options, seed=state.config.seed,
                         private=state.config.private)
    with single_torch_thread():
        encoded = model.sample(state.weights, num_rows, seed=seed)
    return state.plan.decode(encoded, numpy_rng(seed, "decode"))


def spell(frame: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    """The decoded table written as the parties' files write it: boolean words ('Yes'/'No') and the
    missing marker ('?') of text columns, floats rounded to the files' decimal places, and integers
    where the metadata left integer-ness to the data.

    Numbers and dates keep their dtypes here (a Parquet number column cannot hold '?'); the CSV
    writer spells their missing cells and date formats (:func:`fedtab.export.export_table`).
    """
    out = frame.copy()
    for column in schema:
        if column.name not in out.columns:
            continue
        values = out[column.name]
        if column.kind is ColumnKind.BOOLEAN and column.tokens is not None:
            true, false = column.tokens
            words = pd.Series(pd.NA, index=values.index, dtype=object)
            words[values.fillna(False).astype(bool) & values.notna()] = true
            words[~values.fillna(True).astype(bool) & values.notna()] = false
            out[column.name] = words.where(values.notna(), column.missing_token)
        elif values.dtype == object and column.missing_token is not None:
            out[column.name] = values.where(values.notna(), column.missing_token)
        elif column.kind is ColumnKind.NUMERICAL and column.note == INTEGER_FROM_DATA and _whole(values):
            out[column.name] = values.astype("Int64")
        elif column.decimals is not None and pd.api.types.is_float_dtype(values.dtype):
            out[column.name] = values.round(column.decimals) + 0.0  # + 0.0 turns a rounded -0.0 into 0.0
    return out


def _whole(values: pd.Series) -> bool:
    present = values.dropna()
    return pd.api.types.is_float_dtype(values.dtype) and bool((present == present.round()).all())
