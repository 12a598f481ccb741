"""Smaller model updates on the wire: a party sends its update as a delta from the round's global
weights, in float16 or in 8 bits per value (per-tensor affine quantisation); the server rebuilds
the weights before it checks and aggregates them.

Under DP this is post-processing of the party's released update: it costs no privacy budget.
Integer buffers (BatchNorm's batch counters) always travel as they are.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fedtab.errors import ConfigError
from fedtab.federation import keys

Weights = dict[str, np.ndarray]
UPDATE_BITS = (32, 16, 8)
_LEVELS = 255


def compress_update(global_weights: Mapping[str, np.ndarray], update: Mapping[str, np.ndarray], bits: int) -> Weights:
    """The party's side: ``update`` as ``bits``-bit deltas from ``global_weights`` (32: the weights unchanged)."""
    if bits not in UPDATE_BITS:
        raise ConfigError(f"update_bits must be one of {UPDATE_BITS}; got {bits!r}. Set --update-bits 32, 16 or 8.")
    if bits == 32:
        return dict(update)
    out: Weights = {}
    for key, value in update.items():
        if not _is_float(value):
            out[key] = value
            continue
        delta = value.astype(np.float64) - np.asarray(global_weights[key], dtype=np.float64)
        if bits == 16:
            out[key] = delta.astype(np.float16)
            continue
        low, high = (float(delta.min()), float(delta.max())) if delta.size else (0.0, 0.0)
        scale = (high - low) / _LEVELS if high > low else 1.0
        out[key] = np.rint((delta - low) / scale).clip(0, _LEVELS).astype(np.uint8) if np.isfinite(scale) else delta
        out[keys.QUANTISED + key] = np.array([low, scale], dtype=np.float64)
    return out


def decompress_update(global_weights: Mapping[str, np.ndarray], sent: Mapping[str, np.ndarray], bits: int) -> Weights:
    """The server's side: the party's weights rebuilt from its deltas; ValueError (with what is wrong) if malformed."""
    if bits == 32:
        return dict(sent)
    out: Weights = {}
    for key, value in global_weights.items():
        if key not in sent:
            raise ValueError(f"the update lacks '{key}'")
        if not _is_float(value):
            out[key] = sent[key]
            continue
        delta = np.asarray(sent[key], dtype=np.float64)
        if bits == 8:
            low, scale = _quantiser(sent, key)
            delta = low + scale * delta
        out[key] = (value.astype(np.float64) + fitted(delta, value, key)).astype(value.dtype)
    return out


def fitted(array: np.ndarray, like: np.ndarray, key: str) -> np.ndarray:
    """``array`` in ``like``'s shape when both hold as many values (a saved scalar may come back as shape (1,))."""
    array = np.asarray(array)
    if array.size != np.size(like):
        raise ValueError(f"'{key}' holds {array.size} values; the model's has {np.size(like)}")
    return array.reshape(np.shape(like))


def _quantiser(sent: Mapping[str, np.ndarray], key: str) -> tuple[float, float]:
    pair = np.asarray(sent.get(keys.QUANTISED + key, ()), dtype=np.float64).ravel()
    if pair.size != 2:
        raise ValueError(f"'{key}' comes without its 8-bit range (offset, scale)")
    return float(pair[0]), float(pair[1])


def _is_float(array: np.ndarray) -> bool:
    return np.issubdtype(np.asarray(array).dtype, np.floating)
