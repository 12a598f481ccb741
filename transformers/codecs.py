"""Vectorised encode/decode of one column to and from its CTGAN-style block of the encoded row.

Numerical (and datetime) block: ``[alpha | one-hot mode (K) | present/missing (2, if missing)]``.
Categorical/boolean block: one-hot over the vocabulary (missing and rare are vocabulary tokens).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from fedtab.errors import SchemaError, private
from fedtab.schema import ColumnKind
from fedtab.transformers.values import MISSING_TOKEN, RARE_TOKEN, category_labels, numeric_values

if TYPE_CHECKING:
    from fedtab.transformers.plan import ColumnPlan

ALPHA_LIMIT = 0.99
_LOG_2PI = float(np.log(2 * np.pi))


def mode_log_posterior(x: np.ndarray, weights: np.ndarray, means: np.ndarray, stds: np.ndarray) -> np.ndarray:
    """log P(mode k | x) for every value, shape (n, K)."""
    diff = (x[:, None] - means[None, :]) / stds[None, :]
    log_joint = np.log(weights)[None, :] - np.log(stds)[None, :] - 0.5 * (_LOG_2PI + diff * diff)
    return log_joint - logsumexp(log_joint, axis=1, keepdims=True)


def encode_numerical(plan: ColumnPlan, series: pd.Series, rng: np.random.Generator, block: np.ndarray) -> None:
    """Write (alpha, sampled mode, missing flag) rows into ``block`` (n, width), zero on entry."""
    x = numeric_values(
        series, column=plan.name, is_datetime=plan.kind is ColumnKind.DATETIME, datetime_format=plan.datetime_format
    )
    encode_values(plan, x, rng, block)


def encode_values(plan: ColumnPlan, x: np.ndarray, rng: np.random.Generator, block: np.ndarray) -> None:
    """``encode_numerical`` on values already in data units (epoch seconds for dates; NaN = missing)."""
    missing = np.isnan(x)
    if missing.any() and not plan.has_missing:
        raise SchemaError(
            f"Column '{plan.name}' has {private(int(missing.sum()))} missing values, but the plan was fitted on data "
            "without any, so it has no place for them. Refit the plan on data that includes these rows."
        )
    means, stds, weights = plan.mixture_arrays()
    filled = np.where(missing, plan.missing_fill, x)
    cumulative = np.cumsum(np.exp(mode_log_posterior(filled, weights, means, stds)), axis=1)
    draws = rng.random(len(x))[:, None] * cumulative[:, -1:]
    modes = np.minimum((cumulative < draws).sum(axis=1), len(means) - 1)
    modes = np.where(missing, plan.missing_mode, modes)
    alpha = np.clip((filled - means[modes]) / (4 * stds[modes]), -ALPHA_LIMIT, ALPHA_LIMIT)
    rows = np.arange(len(x))
    block[:, 0] = np.where(missing, 0.0, alpha)
    block[rows, 1 + modes] = 1.0
    if plan.has_missing:
        block[rows, 1 + len(means) + missing.astype(np.int64)] = 1.0


def decode_numerical(plan: ColumnPlan, block: np.ndarray) -> pd.Series:
    """Invert ``encode_numerical``: argmax mode, alpha·4σ+μ, round to the column's grid, clip to bounds."""
    values = numerical_values(plan, block)
    missing = np.isnan(values)
    if plan.step > 0:
        values = np.round(values / plan.step) * plan.step
    low, high = plan.bounds if plan.bounds is not None else (-np.inf, np.inf)
    values = np.clip(values, low, high)
    values[missing] = np.nan
    if plan.kind is ColumnKind.DATETIME:
        return _as_datetimes(values, plan)
    return pd.Series(values).astype(plan.dtype)


def numerical_values(plan: ColumnPlan, block: np.ndarray) -> np.ndarray:
    """Each row's value in data units (alpha·4σ+μ of its argmax mode, unrounded, unclipped); NaN where missing."""
    means, stds, _ = plan.mixture_arrays()
    k = len(means)
    modes = block[:, 1 : 1 + k].argmax(axis=1)
    alpha = np.clip(block[:, 0].astype(np.float64), -1.0, 1.0)
    values = alpha * 4 * stds[modes] + means[modes]
    if plan.has_missing:
        values[block[:, 1 + k : 3 + k].argmax(axis=1) == 1] = np.nan
    return values


def _as_datetimes(seconds: np.ndarray, plan: ColumnPlan) -> pd.Series:
    stamps = pd.Series(pd.to_datetime(seconds, unit="s"))
    dtype = pd.api.types.pandas_dtype(plan.dtype)
    if isinstance(dtype, pd.DatetimeTZDtype):
        return stamps.dt.tz_localize("UTC").astype(dtype)
    if pd.api.types.is_datetime64_dtype(dtype):
        return stamps.astype(dtype)
    text = stamps.dt.strftime(plan.datetime_format) if plan.datetime_format else stamps.astype(str)
    return text.where(stamps.notna()).astype(dtype)


def encode_categorical(plan: ColumnPlan, series: pd.Series, block: np.ndarray) -> None:
    """Write the one-hot of each row's vocabulary index into ``block``; only the index is dense."""
    codes, labels = category_labels(series, column=plan.name, boolean=plan.kind is ColumnKind.BOOLEAN)
    vocabulary = pd.Index(plan.vocabulary)
    index_of_label = vocabulary.get_indexer(pd.Index(labels, dtype=object))
    unknown = index_of_label < 0
    if unknown.any():
        if RARE_TOKEN not in plan.vocabulary:
            shown = ", ".join(repr(v) for v in labels[unknown][:3])
            raise SchemaError(
                f"Column '{plan.name}' holds values the plan has never seen ({private(shown)}) and the plan has no "
                f"'{RARE_TOKEN}' bucket for them. Refit the plan on data that includes these rows."
            )
        index_of_label[unknown] = vocabulary.get_loc(RARE_TOKEN)
    missing = codes < 0
    missing_index = _missing_index(plan, vocabulary) if missing.any() else 0
    index = np.append(index_of_label, missing_index)[codes]  # code −1 (missing) picks the appended index
    block[np.arange(len(index)), index] = 1.0


def _missing_index(plan: ColumnPlan, vocabulary: pd.Index) -> int:
    """Where a missing value goes: the missing bucket; under DP, when the noisy missing count was too
    small to keep one, the rare bucket or else the most frequent category (a per-row imputation)."""
    if MISSING_TOKEN in plan.vocabulary:
        return int(vocabulary.get_loc(MISSING_TOKEN))
    if RARE_TOKEN in plan.vocabulary:
        return int(vocabulary.get_loc(RARE_TOKEN))
    if plan.counts:
        return int(np.argmax(plan.counts))
    raise SchemaError(
        f"Column '{plan.name}' has missing values, but the plan was fitted on data without any. "
        "Refit the plan on data that includes these rows."
    )


def decode_categorical(plan: ColumnPlan, block: np.ndarray) -> pd.Series:
    """Argmax label per row, cast back to the column's dtype; tokens become missing where needed.

    Every per-value step (token test, label, number parsing) runs once per vocabulary entry and is
    then taken by index: on Adult this decodes 4× faster than the same steps done per row.
    """
    index = block.argmax(axis=1)
    vocabulary = np.asarray(plan.vocabulary, dtype=object)
    missing = (vocabulary == MISSING_TOKEN) | ((vocabulary == RARE_TOKEN) & (not plan.textual))
    dtype = pd.api.types.pandas_dtype(plan.dtype)
    if plan.kind is ColumnKind.BOOLEAN:
        return _take(np.where(missing, None, vocabulary == "True"), index, dtype)
    if isinstance(dtype, pd.CategoricalDtype):
        categories = [v for v in plan.vocabulary if v != MISSING_TOKEN]
        position = {v: i for i, v in enumerate(categories)}
        codes = np.array([-1 if gone else position[v] for v, gone in zip(plan.vocabulary, missing)], dtype=np.int64)
        return pd.Series(pd.Categorical.from_codes(codes[index], categories=categories))
    if plan.textual:
        return _take(np.where(missing, None, vocabulary), index, dtype)
    numbers = pd.to_numeric(pd.Series(vocabulary[~missing], dtype=object)).to_numpy()
    position = np.cumsum(~missing) - 1  # each vocabulary entry's place among the numbers
    gaps = missing[index]
    if not gaps.any():
        return pd.Series(numbers[position[index]]).astype(dtype)
    values = np.full(len(index), np.nan)
    values[~gaps] = numbers[position[index[~gaps]]]
    return pd.Series(values).astype(dtype)


def _take(values: np.ndarray, index: np.ndarray, dtype: np.dtype | pd.api.extensions.ExtensionDtype) -> pd.Series:
    """One value per row from a per-vocabulary table, in ``dtype`` (no second copy when it is already object)."""
    series = pd.Series(values.astype(object)[index], dtype=object)
    return series if dtype == np.dtype(object) else series.astype(dtype)


def fresh_identifiers(plan: ColumnPlan, num_rows: int) -> pd.Series:
    """Unique values of the identifier's dtype: 1..n for numbers, 'id_000001'… for text."""
    dtype = pd.api.types.pandas_dtype(plan.dtype)
    counter = pd.Series(np.arange(1, num_rows + 1, dtype=np.int64))
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        return counter.astype(dtype)
    width = max(6, len(str(num_rows)))
    return ("id_" + counter.astype(str).str.zfill(width)).astype(dtype if plan.textual else object)
