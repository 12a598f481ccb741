"""Server-side post-processing of noisy histograms: the noise floor, and spikes pinned to a bound."""

from __future__ import annotations

import numpy as np

from fedtab.transformers.numeric_server import (
    fit_histograms,
    final_mixture,
    histogram_layout,
    histogram_moments,
    pin_edge_spikes,
    standardise,
)
from fedtab.transformers.private_server import NOISE_FLOOR, denoise_histograms

BINS = 256


def _layout(low: float, high: float):
    return histogram_layout(np.array([low]), np.array([high]), np.array([1.0]), BINS)


def _spike_and_spread(rng: np.random.Generator, spike_share: float) -> np.ndarray:
    """Capital gain's shape on [0, 99999]: a spike at 0 and a spread of values in the middle of the range."""
    values = np.where(rng.random(20_000) < spike_share, 0.0, rng.normal(15_000, 3_000, 20_000).clip(1, 99_999))
    return np.histogram(values, bins=BINS, range=(0, 99_999))[0][None, :].astype(float)


def test_bins_only_noise_could_fill_are_emptied_and_real_ones_kept():
    rng = np.random.default_rng(0)
    layout = _layout(0, 99_999)
    truth = _spike_and_spread(rng, 0.9)
    noise_std = 30.0
    noisy = truth + rng.normal(0, noise_std, truth.shape)
    cleaned = denoise_histograms(noisy, layout, np.array([0.0]), np.array([99_999.0]), noise_std=noise_std)
    clipped_only = denoise_histograms(noisy, layout, np.array([0.0]), np.array([99_999.0]))
    spurious = lambda h: h[truth == 0].sum()  # noqa: E731
    assert spurious(clipped_only) > 40 * noise_std  # the positive half of the noise over ~230 empty bins
    assert spurious(cleaned) < 0.1 * spurious(clipped_only)
    assert cleaned[0, 0] == noisy[0, 0]  # the 18k spike is untouched
    assert np.all(cleaned[truth > 10 * NOISE_FLOOR * noise_std] > 0)


def test_a_spike_at_the_bound_becomes_a_point_mass_there():
    rng = np.random.default_rng(1)
    layout = _layout(0, 99_999)
    counts = _spike_and_spread(rng, 0.9)
    space = standardise(histogram_moments(layout, counts))
    state = fit_histograms(layout, counts, space, 10)
    before = final_mixture(state.take(np.array([0])), float(space.loc[0]), float(space.scale[0]))
    after = final_mixture(pin_edge_spikes(state, layout, space, np.array([0.0]), np.array([99_999.0])).take(np.array([0])),
                          float(space.loc[0]), float(space.scale[0]))
    spike_before = int(np.argmax(before.weights))
    assert 100 < before.means[spike_before] < 300  # the histogram alone puts the zeros mid-bin
    spike = int(np.argmax(after.weights))
    assert after.weights[spike] > 0.85
    assert abs(after.means[spike]) < 1e-6 and after.stds[spike] < 0.1
    others = [m for k, m in enumerate(after.means) if k != spike]
    assert all(m > 1_000 for m in others)  # the spread's components are not touched


def test_mass_spread_over_the_edge_bins_is_left_alone():
    rng = np.random.default_rng(2)
    layout = _layout(0, 99_999)
    counts = np.histogram(rng.uniform(0, 99_999, 20_000), bins=BINS, range=(0, 99_999))[0][None, :].astype(float)
    space = standardise(histogram_moments(layout, counts))
    state = fit_histograms(layout, counts, space, 10)
    pinned = pin_edge_spikes(state, layout, space, np.array([0.0]), np.array([99_999.0]))
    np.testing.assert_array_equal(pinned.mean, state.mean)
    np.testing.assert_array_equal(pinned.cov, state.cov)
