"""Gaussian releases: bounded row contributions, calibrated noise, every call charged; partition selection."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from fedtab.errors import ConfigError
from fedtab.privacy.accountant import PartyAccountant
from fedtab.privacy.mechanisms import GaussianRelease, partition_threshold


def _release(sigma: float, seed: int = 0, accountant: PartyAccountant | None = None) -> GaussianRelease:
    return GaussianRelease(noise_multiplier=sigma, accountant=accountant or PartyAccountant("clinic"),
                           rng=np.random.default_rng(seed))


def test_histogram_noise_has_the_promised_scale_and_every_call_is_charged() -> None:
    release = _release(3.0)
    bins = np.repeat(np.arange(4000), 5)
    noisy = release.histogram(bins, 4000, column="age")
    errors = noisy - 5
    assert abs(errors.mean()) < 4 * 3.0 / np.sqrt(4000)
    assert errors.std() == pytest.approx(3.0, rel=0.05)
    release.histogram(bins, 4000, column="age")
    assert [(r.mechanism, r.noise_multiplier, r.sample_rate, r.steps) for r in release.accountant.history] == [
        ("encoder", 3.0, 1.0, 2)]


def test_one_row_moves_a_histogram_by_at_most_one_and_a_clipped_sum_by_at_most_the_bound() -> None:
    rng = np.random.default_rng(5)
    bins = rng.integers(0, 10, 200)
    values = rng.normal(0, 50, size=(200, 3))
    tiny = 1e-12  # noise far below the quantities compared, so the differences are the sensitivities
    for drop in (0, 17, 199):
        keep = np.arange(200) != drop
        moved = _release(tiny).histogram(bins, 10) - _release(tiny).histogram(bins[keep], 10)
        assert np.linalg.norm(moved) == pytest.approx(1.0, abs=1e-6)
        shift = _release(tiny).clipped_sum(values, bound=2.0) - _release(tiny).clipped_sum(values[keep], bound=2.0)
        assert np.linalg.norm(shift) <= 2.0 + 1e-6
    scalar = _release(tiny).clipped_sum(np.array([1e6, -3.0, 0.5]), bound=2.0)
    assert scalar == pytest.approx(2.0 - 2.0 + 0.5, abs=1e-6)


def test_clipped_sum_noise_scales_with_the_bound() -> None:
    sums = np.array([_release(1.5, seed=s).clipped_sum(np.zeros(10), bound=4.0) for s in range(400)])
    assert sums.std() == pytest.approx(1.5 * 4.0, rel=0.12)


def test_same_seed_same_release() -> None:
    bins = np.arange(50) % 7
    assert np.array_equal(_release(2.0, seed=9).histogram(bins, 7), _release(2.0, seed=9).histogram(bins, 7))
    assert not np.array_equal(_release(2.0, seed=9).histogram(bins, 7), _release(2.0, seed=10).histogram(bins, 7))


def test_partition_threshold_follows_the_gaussian_tail_formula() -> None:
    assert partition_threshold(noise_multiplier=2.0, threshold_delta=1e-6) == pytest.approx(
        1 + 2.0 * norm.ppf(1 - 1e-6))
    # A category one row supports is released with probability δ_τ: measure it over many such categories.
    accountant = PartyAccountant("clinic")
    values = np.array([f"u{i}" for i in range(20_000)], dtype=object)
    chosen = _release(2.0, accountant=accountant).select_categories(values, threshold_delta=0.05)
    share = len(chosen.categories) / len(values)
    assert abs(share - 0.05) < 4 * np.sqrt(0.05 * 0.95 / len(values))
    assert accountant.threshold_delta() == pytest.approx(0.05)


def test_partition_selection_keeps_common_values_drops_rare_ones_and_ignores_row_order() -> None:
    rng = np.random.default_rng(3)
    common = ["Private"] * 400 + ["Self-emp"] * 150 + ["Gov"] * 90
    rare = ["Never-worked"] * 2 + ["Duke of Earl"]
    values = np.array(common + rare + [None, np.nan], dtype=object)
    first = _release(1.0, seed=4).select_categories(values, threshold_delta=1e-6, column="workclass")
    shuffled = _release(1.0, seed=4).select_categories(rng.permutation(values), threshold_delta=1e-6)
    assert set(first.categories) == {"Private", "Self-emp", "Gov"}
    assert first.categories == shuffled.categories
    assert np.array_equal(first.noisy_counts, shuffled.noisy_counts)
    assert first.threshold == pytest.approx(1 + norm.isf(1e-6))
    assert dict(zip(first.categories, first.noisy_counts.round())) == pytest.approx(
        {"Gov": 90, "Private": 400, "Self-emp": 150}, abs=5)


def test_bad_inputs_are_refused_before_anything_is_charged() -> None:
    release = _release(1.0)
    with pytest.raises(ConfigError, match="2 bin indices of column 'age' of party 'clinic' fall outside"):
        release.histogram(np.array([0, 5, -1]), 5, column="age")
    with pytest.raises(ConfigError, match="1-D integer array"):
        release.histogram(np.array([0.5, 1.0]), 5)
    with pytest.raises(ConfigError, match="1 values of column 'hours' .* missing"):
        release.clipped_sum(np.array([1.0, np.nan]), bound=1.0, column="hours")
    with pytest.raises(ConfigError, match="threshold_delta must be in"):
        release.select_categories(["a"], threshold_delta=0.0)
    assert release.accountant.history == ()
    with pytest.raises(ConfigError, match="finite number > 0"):
        _release(0.0)
