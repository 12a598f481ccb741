"""Server-side arithmetic for numerical columns: merged moments, histogram layout, priors, final mixture.

Mixtures are fitted in standardised units z = (x − loc)/scale so that datetimes in epoch seconds
and counts in the millions are as well conditioned as ages; parameters go back to data units only
when the plan is built.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from fedtab.transformers import mixture
from fedtab.transformers.protocol import GRID_STEPS

WEIGHT_THRESHOLD = 0.005


@dataclass(frozen=True)
class Moments:
    """Global count, mean and sum of squared deviations per column (Chan's parallel merge)."""

    count: np.ndarray
    mean: np.ndarray
    m2: np.ndarray


def merge_moments(counts: list[np.ndarray], sums: list[np.ndarray], m2s: list[np.ndarray]) -> Moments:
    """Combine per-party (n, Σx, Σ(x − x̄_party)²) without the cancellation of raw Σx²."""
    n = np.clip(np.stack(counts), 0.0, None)
    total = n.sum(axis=0)
    mean = np.stack(sums).sum(axis=0) / np.maximum(total, 1.0)
    party_mean = np.stack(sums) / np.maximum(n, 1.0)
    m2 = (np.clip(np.stack(m2s), 0.0, None) + n * (party_mean - mean) ** 2).sum(axis=0)
    return Moments(total, mean, m2)


@dataclass(frozen=True)
class HistogramLayout:
    """Per column: left edge and bin width of ``bins`` equal bins, and the within-bin variance.

    Columns on a grid (integers, whole days) whose range fits get one bin per grid point
    (``unit``): their bin centres are the exact values, so the histogram is a lossless summary of
    the column and a fit on it is the fit on every row.
    """

    low: np.ndarray
    width: np.ndarray
    extra_variance: np.ndarray
    unit: np.ndarray
    bins: int

    def centres(self) -> np.ndarray:
        return self.low[:, None] + self.width[:, None] * (np.arange(self.bins) + 0.5)


def histogram_layout(low: np.ndarray, high: np.ndarray, step: np.ndarray, bins: int) -> HistogramLayout:
    """``step`` is each column's observed grid (0 when its values are on none)."""
    unit = ((step > 0) & ((high - low) / np.where(step > 0, step, 1.0) + 1 <= bins)) | (high <= low)
    grid = np.where(step > 0, step, 1.0)
    width = np.where(unit, grid, (high - low) / bins)
    left = np.where(unit, low - grid / 2, low)
    extra = np.where(unit, 0.0, width**2 / 12.0)
    return HistogramLayout(left, width, extra, unit, bins)


def observed_steps(off_grid: np.ndarray, count: np.ndarray, is_datetime: np.ndarray) -> np.ndarray:
    """The coarsest grid every value sits on: 1 for integers; for dates up to whole days; else 0."""
    steps = np.asarray(GRID_STEPS)
    on_grid = (off_grid <= 0) & (count[:, None] > 0)
    on_grid[~is_datetime, 1:] = False
    coarsest = np.where(on_grid, steps, 0.0).max(axis=1)
    return np.where(on_grid[:, 0], coarsest, 0.0)


@dataclass(frozen=True)
class Standardisation:
    """Where the mixtures live: z = (x − loc)/scale, with the prior expressed in z units."""

    loc: np.ndarray
    scale: np.ndarray
    prior: mixture.MixturePrior

    def take(self, index: np.ndarray) -> Standardisation:
        prior = self.prior
        taken = mixture.MixturePrior(
            mean=prior.mean[index], covariance=prior.covariance[index], mean_precision=prior.mean_precision,
            dof=prior.dof, weight_concentration=prior.weight_concentration, reg_covar=prior.reg_covar,
        )
        return Standardisation(self.loc[index], self.scale[index], taken)


def standardise(moments: Moments) -> Standardisation:
    """scikit-learn's default priors: mean prior = data mean, covariance prior = data variance (ddof 1)."""
    variance = moments.m2 / np.maximum(moments.count, 1.0)
    scale = np.where(variance > 0, np.sqrt(np.maximum(variance, 0.0)), 1.0)
    unbiased = np.where(moments.count > 1, moments.m2 / np.maximum(moments.count - 1, 1.0), 1.0)
    prior = mixture.MixturePrior(mean=np.zeros_like(scale), covariance=unbiased / scale**2)
    return Standardisation(moments.mean, scale, prior)


def histogram_moments(layout: HistogramLayout, counts: np.ndarray) -> Moments:
    """Moments of the binned data (bin centres plus within-bin spread) for the histogram-only path."""
    total = counts.sum(axis=1)
    centres = layout.centres()
    mean = (counts * centres).sum(axis=1) / np.maximum(total, 1.0)
    m2 = (counts * (centres - mean[:, None]) ** 2).sum(axis=1) + total * layout.extra_variance
    return Moments(total, mean, m2)


def fit_histograms(
    layout: HistogramLayout, counts: np.ndarray, space: Standardisation, n_components: int
) -> mixture.MixtureState:
    """Every column's mixture fitted on its summed histogram in one batched call (server only)."""
    z = (layout.centres() - space.loc[:, None]) / space.scale[:, None]
    extra = layout.extra_variance / space.scale**2
    state, _ = mixture.fit_weighted(z, counts, space.prior, n_components, max_iter=300, tol=1e-6, extra_variance=extra)
    return state


EDGE_SPIKE_STD_SHARE = 1e4
"""A pinned edge spike keeps a std of 1/10,000 of its bin width, so decode lands it on the bound (within 4σ)."""


def pin_edge_spikes(state: mixture.MixtureState, layout: HistogramLayout, space: Standardisation,
                    low: np.ndarray, high: np.ndarray) -> mixture.MixtureState:
    """A component fitted to the first or last bin alone becomes a point mass at that bound.

    A histogram cannot tell a spike at the bound (capital gain's 92 % zeros; values clipped to a
    declared bound) from values spread over the bin, and the fit spreads them over its width,
    which decode turns into a smear of 0…390 for a true 0. Under DP there is no finer release to
    ask, so an edge bin a component holds by itself (std under the bin width) is read as the bound;
    a column whose mass really spreads over that bin fits a wider component and is left alone.
    Unit-bin (integer grid) layouts already resolve every value and are skipped.
    """
    mean, cov = state.mean.copy(), state.cov.copy()
    scale = space.scale[:, None]
    data_mean = space.loc[:, None] + scale * mean
    data_std = scale * np.sqrt(cov)
    width = layout.width[:, None]
    binned = ~layout.unit[:, None]
    narrow = data_std < width
    for edge, centre in ((low, layout.low + layout.width / 2), (high, layout.low + layout.width * (layout.bins - 0.5))):
        at_edge = binned & narrow & (np.abs(data_mean - centre[:, None]) < width / 2)
        pinned = (edge[:, None] - space.loc[:, None]) / scale
        mean = np.where(at_edge, pinned, mean)
        cov = np.where(at_edge, (width / (EDGE_SPIKE_STD_SHARE * scale)) ** 2, cov)
    return dataclasses.replace(state, mean=mean, cov=cov)


@dataclass(frozen=True)
class FinalMixture:
    """One column's kept components in data units."""

    means: tuple[float, ...]
    stds: tuple[float, ...]
    weights: tuple[float, ...]


def final_mixture(state: mixture.MixtureState, loc: float, scale: float) -> FinalMixture:
    """Drop components under the weight threshold, renormalise, and return to data units."""
    weights = mixture.point_weights(state)
    keep = weights > WEIGHT_THRESHOLD
    if not keep.any():
        keep = weights == weights.max()
    kept = weights[keep] / weights[keep].sum()
    means = loc + scale * state.mean[keep]
    stds = scale * np.sqrt(state.cov[keep])
    return FinalMixture(tuple(means.tolist()), tuple(stds.tolist()), tuple(kept.tolist()))
