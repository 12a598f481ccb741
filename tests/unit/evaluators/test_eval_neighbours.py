"""Chunked nearest neighbours against a brute-force float64 reference, and the distance space itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fedtab.evaluators.encoding import MixedEncoder, row_hashes
from fedtab.evaluators.inputs import prepare, resolve_layout
from fedtab.evaluators.neighbours import cross_nearest, nearest


def brute(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(((a[:, None, :].astype(np.float64) - b[None, :, :].astype(np.float64)) ** 2).sum(-1))


def test_both_directions_match_brute_force_across_chunks():
    rng = np.random.default_rng(0)
    rows, columns = rng.normal(size=(300, 7)).astype(np.float32), rng.normal(size=(130, 7)).astype(np.float32)
    result = cross_nearest(rows, columns, groups=[50, 80], k=2, chunk_rows=64)
    full = brute(rows, columns)
    np.testing.assert_allclose(result.row_distances[0], np.sort(full[:, :50], axis=1)[:, :2], rtol=1e-9)
    np.testing.assert_allclose(result.row_distances[1], np.sort(full[:, 50:], axis=1)[:, :2], rtol=1e-9)
    np.testing.assert_allclose(result.column_distances, full.min(0), rtol=1e-9)


def test_near_duplicates_are_resolved_beyond_float32_cancellation():
    rng = np.random.default_rng(1)
    base = rng.normal(0, 30, size=(200, 5)).astype(np.float32)
    near = base + np.float32(1e-3) * rng.choice([-1, 1], size=base.shape).astype(np.float32)
    got = nearest(near, base, k=1)[:, 0]
    np.testing.assert_allclose(got, brute(near, base).min(1), rtol=1e-6)
    assert got.max() < 0.01


def test_exact_copies_are_pinned_at_zero():
    rng = np.random.default_rng(2)
    columns = rng.normal(0, 1000, size=(100, 4)).astype(np.float32)
    rows = np.concatenate([columns[:10], rng.normal(size=(20, 4)).astype(np.float32)])
    result = cross_nearest(rows, columns, groups=[100], k=2, row_hashes=row_hashes(rows), column_hashes=row_hashes(columns))
    assert (result.row_distances[0][:10, 0] == 0).all()
    assert (result.row_distances[0][10:, 0] > 0).all()
    assert (result.column_distances[:10] == 0).all()


def test_groups_must_cover_the_columns():
    with pytest.raises(ValueError, match="must add up"):
        cross_nearest(np.zeros((2, 2), np.float32), np.zeros((3, 2), np.float32), groups=[2])


def test_a_category_mismatch_weighs_as_much_as_one_standard_deviation():
    frame = pd.DataFrame({"x": [0.0, 2.0, 0.0, 2.0], "c": ["a", "a", "b", "b"]})
    layout = resolve_layout(frame)
    encoded = MixedEncoder.fit(prepare(frame, layout, "t"), layout).transform(prepare(frame, layout, "t"))
    distance = brute(encoded, encoded)
    assert distance[0, 1] == pytest.approx(2.0 / frame["x"].std(ddof=0))
    assert distance[0, 2] == pytest.approx(1.0)


def test_unseen_categories_and_missing_numbers_encode_without_error():
    synthetic = pd.DataFrame({"x": [1.0, np.nan, 3.0], "c": ["a", "b", None]})
    layout = resolve_layout(synthetic)
    encoder = MixedEncoder.fit(prepare(synthetic, layout, "s"), layout)
    real = pd.DataFrame({"x": [np.nan, 2.0], "c": ["zzz", None]})
    encoded = encoder.transform(prepare(real, layout, "r"))
    assert encoded.shape == (2, encoder.dim) and np.isfinite(encoded).all()
    assert encoded[0, 1] == 1.0  # the missing-indicator dimension
    assert encoded[0, 2:].sum() == 0  # 'zzz' was never seen: no category lit
