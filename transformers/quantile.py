"""Quantile maps of numerical columns, read off the histogram the encoder fit already released.

Every fit mode sums a fine histogram per numerical column over its bounds (``histogram`` stage;
under DP the noised, post-processed one), and the plan keeps it. A ``QuantileMap`` is arithmetic
on that histogram alone, so reading numericals as quantile-normal values or quantile bins is
post-processing: no new statistic leaves a party and nothing new is charged.

The distribution is piecewise: point masses (atoms) plus mass spread uniformly inside bins. On an
integer (or whole-day) grid whose range fits the bins, each bin is one value, so every bin is an
atom at its centre. Otherwise a mixture component narrower than a tenth of a bin (the exact fit's
point masses, the private fit's pinned edge spikes: capital gain's 92 % zeros) is an atom at its
mean, holding its weight's share of the rows (at most its bin's count); the rest of each bin is
uniform. A value at an atom maps to a uniform draw inside the atom's jump of the CDF when given a
generator (dequantisation: the quantile-normal values are then exactly normal), to its middle
otherwise; the inverse maps the whole jump back onto the atom, so zeros stay zeros.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import ndtr, ndtri

if TYPE_CHECKING:
    from fedtab.transformers.plan import ColumnPlan

ATOM_SHARE = 0.1
"""A mixture component whose std is under this share of a bin's width is read as a point mass."""
TAIL = 1e-5
"""Quantiles are kept inside [TAIL, 1 - TAIL], so quantile-normal values stay within ±4.3."""
FALLBACK_BINS = 256


@dataclass(frozen=True)
class QuantileMap:
    """A column's CDF as knots: ``positions`` non-decreasing (an atom appears twice), ``cdf`` non-decreasing in [0, 1].

    ``atoms`` and ``atom_tolerance``: where the point masses sit and how far a value may be from one
    (half a grid step; a spike's 4σ) and still be read as that atom.
    """

    positions: np.ndarray
    cdf: np.ndarray
    atoms: np.ndarray
    atom_low: np.ndarray
    atom_high: np.ndarray
    atom_tolerance: np.ndarray

    def uniform(self, values: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Each value's quantile in (0, 1); NaN stays NaN. An atom's value gets a draw inside its jump (``rng``) or its middle."""
        x = np.asarray(values, dtype=np.float64)
        u = np.interp(x, self.positions, self.cdf)
        if len(self.atoms):
            nearest = np.clip(np.searchsorted(self.atoms, x), 1, len(self.atoms)) - 1
            right = np.minimum(nearest + 1, len(self.atoms) - 1)
            nearest = np.where(np.abs(self.atoms[right] - x) < np.abs(self.atoms[nearest] - x), right, nearest)
            hit = np.abs(self.atoms[nearest] - x) <= self.atom_tolerance[nearest]
            share = rng.random(len(x)) if rng is not None else np.full(len(x), 0.5)
            low, high = self.atom_low[nearest], self.atom_high[nearest]
            u = np.where(hit, low + share * (high - low), u)
        return np.where(np.isnan(x), np.nan, np.clip(u, TAIL, 1 - TAIL))

    def values(self, quantiles: np.ndarray) -> np.ndarray:
        """The inverse: quantiles in [0, 1] back to data units (a quantile inside an atom's jump is the atom)."""
        return np.interp(np.clip(quantiles, TAIL, 1 - TAIL), self.cdf, self.positions)

    def normal(self, values: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Quantile-normal values: Φ⁻¹ of each value's quantile."""
        return ndtri(self.uniform(values, rng))

    def from_normal(self, z: np.ndarray) -> np.ndarray:
        """The inverse of ``normal``."""
        return self.values(ndtr(np.asarray(z, dtype=np.float64)))

    def bin_edges(self, k: int) -> np.ndarray:
        """Edges of ``k`` equal-mass bins in data units (the outer ones at the TAIL quantiles); fewer (merged)
        where an atom holds more than 1/k of the rows."""
        return np.unique(self.values(np.linspace(0.0, 1.0, k + 1)))


def quantile_map(column: ColumnPlan) -> QuantileMap:
    """The column's map from its kept histogram, or (a plan saved before histograms were kept) from its mixture."""
    counts = np.clip(np.asarray(column.histogram, dtype=np.float64), 0.0, None)
    if counts.sum() <= 0:
        return _from_mixture(column)
    edges = column.histogram_low + column.histogram_width * np.arange(len(counts) + 1)
    if column.step > 0 and np.isclose(column.histogram_width, column.step):
        centres = (edges[:-1] + edges[1:]) / 2
        return _build(edges, np.zeros_like(counts), centres, counts, np.full(len(counts), column.histogram_width / 2))
    atoms, masses, tolerance = _spikes(column, edges, counts)
    continuous = counts.copy()
    np.subtract.at(continuous, _bin_of(atoms, edges), masses)
    return _build(edges, np.clip(continuous, 0.0, None), atoms, masses, tolerance)


def _spikes(column: ColumnPlan, edges: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Narrow mixture components as (atoms, masses, tolerances), each mass at most its bin's count."""
    means, stds, weights = column.mixture_arrays()
    narrow = stds < ATOM_SHARE * column.histogram_width
    atoms, stds, weights = means[narrow], stds[narrow], weights[narrow]
    order = np.argsort(atoms)
    atoms, stds, weights = atoms[order], stds[order], weights[order]
    masses = np.minimum(weights * counts.sum(), counts[_bin_of(atoms, edges)])
    return atoms, masses, np.maximum(4 * stds, 1e-9 * max(1.0, float(np.abs(atoms).max(initial=0.0))))


def _bin_of(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)


def _build(edges: np.ndarray, continuous: np.ndarray, atoms: np.ndarray, masses: np.ndarray,
           tolerance: np.ndarray) -> QuantileMap:
    """Knots of the CDF: every edge and every atom (twice: before and after its jump), normalised to 1."""
    total = continuous.sum() + masses.sum()
    continuous_cdf = np.concatenate([[0.0], np.cumsum(continuous)])
    points = np.union1d(edges, atoms)
    below_atoms = np.concatenate([[0.0], np.cumsum(masses)])
    at_left = np.interp(points, edges, continuous_cdf) + below_atoms[np.searchsorted(atoms, points, side="left")]
    at_right = np.interp(points, edges, continuous_cdf) + below_atoms[np.searchsorted(atoms, points, side="right")]
    positions = np.repeat(points, 2)
    cdf = np.stack([at_left, at_right], axis=1).ravel() / total
    flat = np.concatenate([[False], (cdf[1:-1] == cdf[:-2]) & (cdf[1:-1] == cdf[2:]), [False]])
    positions, cdf = positions[~flat], cdf[~flat]  # a flat run keeps its ends: an empty stretch maps to no quantile
    low = np.interp(atoms, edges, continuous_cdf) + below_atoms[:-1]
    return QuantileMap(positions, cdf, atoms, low / total, (low + masses) / total, tolerance)


def _from_mixture(column: ColumnPlan) -> QuantileMap:
    """The mixture's CDF on a grid over the bounds (or ±4σ of its components): no histogram to read."""
    means, stds, weights = column.mixture_arrays()
    if column.bounds is not None and column.bounds[1] > column.bounds[0]:
        low, high = column.bounds
    else:
        low, high = float((means - 4 * stds).min()), float((means + 4 * stds).max())
    edges = np.linspace(low, high, FALLBACK_BINS + 1)
    cdf = (weights[None, :] * ndtr((edges[:, None] - means[None, :]) / stds[None, :])).sum(axis=1)
    mass = np.diff(cdf) + 1e-12
    return _build(edges, mass, np.zeros(0), np.zeros(0), np.zeros(0))
