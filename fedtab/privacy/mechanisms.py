"""The Gaussian mechanism for statistics a party releases, charged to its accountant as it releases.

Neighbouring tables differ by adding or removing one row (Opacus's convention, so one
accountant covers statistics and DP-SGD alike). Each method bounds one row's contribution —
its L2 sensitivity Δ — adds N(0, (σ·Δ)²) noise, and records one Gaussian release of noise
multiplier σ before it returns, so a statistic cannot leave uncounted.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from fedtab.errors import ConfigError
from fedtab.privacy.accountant import PartyAccountant


@dataclass(frozen=True)
class CategorySelection:
    """Categories released by partition selection, with their noisy counts.

    Categories that fell under ``threshold`` are not named anywhere: they belong to the column's
    rare bucket. Their count is *not* released here (summing the dropped noisy counts would leak
    how many distinct rare values there are); estimate the bucket from a separate noisy total.
    """

    categories: tuple[Hashable, ...]
    noisy_counts: np.ndarray
    threshold: float


def partition_threshold(*, noise_multiplier: float, threshold_delta: float) -> float:
    """Smallest noisy count at which a category may be released: τ = 1 + σ·Φ⁻¹(1 − δ_τ).

    Each row holds one value of the column, so it adds 1 to exactly one category count
    (L0 = L∞ = 1). A category only one row supports exists in one neighbour and not the other;
    it is released with probability P(1 + N(0, σ²) ≥ τ) = δ_τ, which therefore adds δ_τ to the
    Gaussian's δ. This is Gaussian thresholding as in Google's differential-privacy library
    (``GaussianPartitionSelection::CalculateThresholdFromStddev`` in
    cc/algorithms/partition-selection.h; derivation in common_docs/Delta_For_Thresholding.pdf)
    and in Desfontaines, Voss, Gipson & Mandayam, "Differentially private partition selection",
    PoPETs 2022, specialised to one partition per row.
    """
    if not (0 < threshold_delta < 1):
        raise ConfigError(
            f"threshold_delta must be in (0, 1); got {threshold_delta!r}. Use the plan's threshold_delta."
        )
    return 1.0 + noise_multiplier * float(norm.isf(threshold_delta))


class GaussianRelease:
    """Noised statistics of one party, each call one Gaussian release charged to ``accountant``.

    Parameters
    ----------
    noise_multiplier:
        σ: the noise's standard deviation over the statistic's L2 sensitivity (the plan's
        ``encoder_noise_multiplier``).
    accountant:
        The party's accountant; every release is recorded in it before the result is returned.
    rng:
        A seeded generator (``fedtab.rng.numpy_rng``); the same seed gives the same noise.
    mechanism:
        The name the releases are recorded under in the ledger.
    """

    def __init__(self, *, noise_multiplier: float, accountant: PartyAccountant, rng: np.random.Generator,
                 mechanism: str = "encoder") -> None:
        if not (isinstance(noise_multiplier, (int, float)) and np.isfinite(noise_multiplier)
                and noise_multiplier > 0):
            raise ConfigError(
                f"The noise multiplier of mechanism {mechanism!r} for party {accountant.party!r} must be a finite "
                f"number > 0; got {noise_multiplier!r}. Take it from the privacy plan."
            )
        self.noise_multiplier = float(noise_multiplier)
        self.accountant = accountant
        self.rng = rng
        self.mechanism = mechanism

    def count(self, rows: int) -> float:
        """A noisy row count (Δ = 1)."""
        self._charge()
        return float(rows) + self._noise((), 1.0)

    def histogram(self, bin_index: np.ndarray, n_bins: int, *, column: str = "?") -> np.ndarray:
        """Noisy counts per bin; each row adds 1 to one bin, so Δ = 1 for the whole histogram."""
        index = self._checked_index(bin_index, n_bins, column)
        self._charge()
        return np.bincount(index, minlength=n_bins).astype(float) + self._noise((n_bins,), 1.0)

    def clipped_sum(self, values: np.ndarray, *, bound: float, column: str = "?") -> np.ndarray | float:
        """Noisy sum of rows clipped to L2 norm ``bound`` (scalars clipped to [−bound, bound]); Δ = bound."""
        data = self._checked_values(values, bound, column)
        self._charge()
        if data.ndim == 1:
            return float(np.clip(data, -bound, bound).sum()) + self._noise((), bound)
        norms = np.linalg.norm(data, axis=1)
        scale = np.minimum(1.0, bound / np.maximum(norms, np.finfo(float).tiny))
        return (data * scale[:, None]).sum(axis=0) + self._noise((data.shape[1],), bound)

    def select_categories(self, values: Any, *, threshold_delta: float, column: str = "?") -> CategorySelection:
        """Release the categories whose noisy count reaches ``partition_threshold``; the rest are rare.

        Missing values are not candidates. Categories are noised in sorted order, so the result
        does not depend on the order of the rows.
        """
        threshold = partition_threshold(noise_multiplier=self.noise_multiplier, threshold_delta=threshold_delta)
        counts = pd.Series(np.asarray(values, dtype=object)).value_counts(sort=False, dropna=True)
        counts = counts.sort_index(key=lambda index: index.map(lambda v: f"{type(v).__name__}:{v}"))
        self.accountant.record_gaussian(noise_multiplier=self.noise_multiplier, mechanism=self.mechanism,
                                        threshold_delta=threshold_delta)
        noisy = counts.to_numpy(dtype=float) + self._noise((len(counts),), 1.0)
        keep = noisy >= threshold
        return CategorySelection(tuple(counts.index[keep]), noisy[keep], threshold)

    def _charge(self) -> None:
        self.accountant.record_gaussian(noise_multiplier=self.noise_multiplier, mechanism=self.mechanism)

    def _noise(self, shape: tuple[int, ...], sensitivity: float) -> Any:
        noise = self.rng.normal(0.0, self.noise_multiplier * sensitivity, size=shape)
        return float(noise) if shape == () else noise

    def _checked_index(self, bin_index: np.ndarray, n_bins: int, column: str) -> np.ndarray:
        index = np.asarray(bin_index)
        where = f"column {column!r} of party {self.accountant.party!r}"
        if not (isinstance(n_bins, (int, np.integer)) and n_bins >= 1):
            raise ConfigError(f"A histogram of {where} needs n_bins >= 1; got {n_bins!r}. Pass the bin count.")
        if index.ndim != 1 or not np.issubdtype(index.dtype, np.integer):
            raise ConfigError(
                f"Histogram bin indices of {where} must be a 1-D integer array; got dtype {index.dtype}, "
                f"shape {index.shape}. Bin the values first (np.digitize) and drop missing ones."
            )
        outside = int(((index < 0) | (index >= n_bins)).sum())
        if outside:
            raise ConfigError(
                f"{outside} bin indices of {where} fall outside [0, {n_bins}). Clip values to the schema "
                "bounds before binning so every row lands in a bin."
            )
        return index

    def _checked_values(self, values: np.ndarray, bound: float, column: str) -> np.ndarray:
        data = np.asarray(values, dtype=float)
        where = f"column {column!r} of party {self.accountant.party!r}"
        if not (isinstance(bound, (int, float)) and np.isfinite(bound) and bound > 0):
            raise ConfigError(f"The clipping bound of {where} must be a finite number > 0; got {bound!r}.")
        if data.ndim not in (1, 2):
            raise ConfigError(f"Values of {where} must be 1-D or 2-D (rows × features); got shape {data.shape}.")
        missing = int((~np.isfinite(data)).sum())
        if missing:
            raise ConfigError(
                f"{missing} values of {where} are missing or infinite; a clipped sum needs finite values. "
                "Drop missing rows (release their count separately) before summing."
            )
        return data
