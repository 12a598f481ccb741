"""Sample encoded rows from a trained model, decode them into the real schema, and spell them as the parties do."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from fedtab.connectors.declared import INTEGER_FROM_DATA
from fedtab.errors import ConfigError, SchemaError
from fedtab.model_state import ModelState
from fedtab.models.base import on_device
from fedtab.models.registry import create_model
from fedtab.rng import numpy_rng
from fedtab.schema import ColumnKind, TableSchema
from fedtab.threads import single_torch_thread
from fedtab.transformers import TransformPlan
from fedtab.transformers.codecs import encode_categorical, encode_numerical
from fedtab.transformers.plan import NUMERIC_KINDS, ColumnPlan
from fedtab.transformers.values import RESERVED_TOKENS, category_labels, numeric_values


def sample_table(state: ModelState, num_rows: int, *, seed: int, conditions: Mapping[str, Any] | None = None,
                 device: str | None = None) -> pd.DataFrame:
    """``num_rows`` synthetic rows in the schema's dtypes; the same state and seed give the same rows.

    ``conditions`` (column -> value) fixes those columns in every row and generates the rest given
    them, for models that can condition (argn); ``device`` overrides the saved config's.
    """
    if isinstance(num_rows, bool) or not isinstance(num_rows, int) or num_rows < 1:
        raise ConfigError(f"num_rows must be an int >= 1; got {num_rows!r}.")
    model = create_model(state.config.model, state.plan, state.config.model_options, seed=state.config.seed,
                         private=state.config.private, device=device or state.config.device)
    with single_torch_thread(), on_device(model.device):
        if conditions:
            fixed = condition_blocks(state.plan, conditions, numpy_rng(seed, "conditions"))
            encoded = model.sample_given(state.weights, num_rows, seed=seed, fixed=fixed)
        else:
            encoded = model.sample(state.weights, num_rows, seed=seed)
    return state.plan.decode(encoded, numpy_rng(seed, "decode"))


def condition_blocks(plan: TransformPlan, conditions: Mapping[str, Any], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Each fixed column's encoded block (one row), after checking the value lies in the column's domain."""
    if not isinstance(conditions, Mapping):
        raise ConfigError(f"conditions must map column names to values (e.g. {{'sex': 'Female'}}); got {conditions!r}.")
    by_name = {c.name: c for c in plan.encoded_columns}
    unknown = [name for name in conditions if name not in by_name]
    if unknown:
        raise ConfigError(f"Cannot fix columns {unknown}: the model generates {list(by_name)}. "
                          "Name columns of the synthetic table (identifiers are not modelled).")
    return {name: _condition_block(by_name[name], value, rng) for name, value in conditions.items()}


def _condition_block(column: ColumnPlan, value: Any, rng: np.random.Generator) -> np.ndarray:
    block = np.zeros((1, column.width))
    series = pd.Series([value])
    if column.kind in NUMERIC_KINDS:
        try:
            x = numeric_values(series, column=column.name, is_datetime=column.kind is ColumnKind.DATETIME,
                               datetime_format=column.datetime_format)
        except SchemaError as error:
            raise ConfigError(f"Cannot fix column '{column.name}' to {value!r}: it is a number or date column. "
                              "Give a number (or a date) within its range.") from error
        low, high = column.bounds if column.bounds is not None else (-np.inf, np.inf)
        if np.isnan(x[0]) or not low <= x[0] <= high:
            raise ConfigError(f"Cannot fix column '{column.name}' to {value!r}: its values lie in [{low:g}, {high:g}] "
                              "(the plan's released bounds). Give a value within them.")
        encode_numerical(column, series, rng, block)
        return block
    _, labels = category_labels(series.dropna(), column=column.name, boolean=column.kind is ColumnKind.BOOLEAN) \
        if series.notna().all() else (None, np.array([], dtype=object))
    known = [v for v in column.vocabulary if v not in RESERVED_TOKENS]
    if len(labels) != 1 or labels[0] not in known:
        shown = ", ".join(repr(v) for v in known[:20]) + (", ..." if len(known) > 20 else "")
        raise ConfigError(f"Cannot fix column '{column.name}' to {value!r}: not one of its categories ({shown}). "
                          "Pick one of them.")
    encode_categorical(column, series, block)
    return block


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
