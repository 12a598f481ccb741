"""Nearest neighbours in both directions from one chunked pass over the distance matrix.

Membership risk needs, for every synthetic row, its closest train and holdout rows (DCR, NNDR),
and for every train or holdout row, its closest synthetic row (the distance attack). Both come
from the same matrix, so we walk it once: squared distances as ``|a|² + |b|² − 2 a·b`` through a
float32 BLAS product per chunk of rows, top-k per row and a running minimum per column. Float32
cancellation can blur distances below ~1e-3, so the winners are re-measured exactly in float64,
and exact copies (equal row hashes) are pinned to distance 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fedtab.evaluators.threads import one_thread

ChunkDone = Callable[[int, int], None]


@dataclass(frozen=True)
class CrossNearest:
    """``row_distances[g]``: (rows, k) ascending distances to column group g; ``column_distances``: per column."""

    row_distances: tuple[np.ndarray, ...]
    column_distances: np.ndarray


@one_thread()
def cross_nearest(
    rows: np.ndarray,
    columns: np.ndarray,
    *,
    groups: Sequence[int],
    k: int = 2,
    chunk_rows: int = 512,
    row_hashes: np.ndarray | None = None,
    column_hashes: np.ndarray | None = None,
    on_chunk: ChunkDone | None = None,
) -> CrossNearest:
    """Exact Euclidean top-k per row within each consecutive column group, and each column's nearest row."""
    bounds = np.concatenate([[0], np.cumsum(groups)]).astype(int)
    if bounds[-1] != len(columns):
        raise ValueError(f"groups {list(groups)} must add up to the {len(columns)} columns")
    r = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))
    c = torch.from_numpy(np.ascontiguousarray(columns, dtype=np.float32))
    c_t, c_norm = c.T.contiguous(), (c * c).sum(1)
    top_idx = [np.zeros((len(rows), min(k, b - a)), dtype=np.int64) for a, b in zip(bounds[:-1], bounds[1:])]
    col_best = torch.full((len(columns),), float("inf"))
    col_arg = torch.zeros(len(columns), dtype=torch.long)
    buffer = torch.empty((min(chunk_rows, len(rows)), len(columns)))
    chunks = range(0, len(rows), chunk_rows)
    for done, start in enumerate(chunks, 1):
        block = r[start : start + chunk_rows]
        sq = buffer[: len(block)]
        torch.mm(block, c_t, out=sq)
        sq.mul_(-2).add_(c_norm[None, :]).add_((block * block).sum(1)[:, None])
        for g, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
            if b > a:
                top_idx[g][start : start + len(block)] = sq[:, a:b].topk(top_idx[g].shape[1], dim=1, largest=False).indices.numpy() + a
        best, arg = sq.min(0)
        better = best < col_best
        col_best = torch.where(better, best, col_best)
        col_arg = torch.where(better, arg + start, col_arg)
        if on_chunk is not None:
            on_chunk(done, len(chunks))
    row_distances = tuple(_exact_rows(rows, columns, idx) for idx in top_idx)
    column_distances = _exact_pairs(columns, rows, col_arg.numpy())
    if row_hashes is not None and column_hashes is not None:
        row_distances, column_distances = _pin_copies(row_distances, column_distances, bounds, row_hashes, column_hashes)
    return CrossNearest(row_distances, column_distances)


def nearest(query: np.ndarray, reference: np.ndarray, *, k: int = 1, chunk_rows: int = 512) -> np.ndarray:
    """Exact distances (rows of ``query``, k) to the k nearest rows of ``reference``, ascending."""
    return cross_nearest(query, reference, groups=[len(reference)], k=k, chunk_rows=chunk_rows).row_distances[0]


def _exact_rows(rows: np.ndarray, columns: np.ndarray, idx: np.ndarray, chunk: int = 4096) -> np.ndarray:
    out = np.empty(idx.shape, dtype=np.float64)
    for start in range(0, len(rows), chunk):
        a = rows[start : start + chunk, None, :].astype(np.float64)
        b = columns[idx[start : start + chunk]].astype(np.float64)
        out[start : start + chunk] = np.sqrt(((a - b) ** 2).sum(-1))
    return np.sort(out, axis=1)


def _exact_pairs(a: np.ndarray, b: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return _exact_rows(a, b, idx[:, None])[:, 0]


def _pin_copies(
    row_distances: tuple[np.ndarray, ...],
    column_distances: np.ndarray,
    bounds: np.ndarray,
    row_hashes: np.ndarray,
    column_hashes: np.ndarray,
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    pinned = []
    for g, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        distances = row_distances[g].copy()
        missed = np.isin(row_hashes, column_hashes[a:b]) & (distances[:, 0] > 0)
        distances[missed] = np.concatenate([np.zeros((int(missed.sum()), 1)), distances[missed, :-1]], axis=1)
        pinned.append(distances)
    columns = np.where(np.isin(column_hashes, row_hashes), 0.0, column_distances)
    return tuple(pinned), columns
