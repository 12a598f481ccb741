"""Releases for the private-mode tests: real Gaussian ones per party, and a sentinel one that records calls."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fedtab.privacy.accountant import PartyAccountant
from fedtab.privacy.mechanisms import GaussianRelease
from fedtab.schema import PartyTable

SENTINEL = np.pi / 7
"""What the sentinel release returns for every count: no whole number of rows is a multiple of it."""


def gaussian_releases(tables: Sequence[PartyTable], sigma: float, seed: int = 0) -> list[GaussianRelease]:
    return [
        GaussianRelease(noise_multiplier=sigma, accountant=PartyAccountant(t.name), rng=np.random.default_rng(seed + i))
        for i, t in enumerate(tables)
    ]


@dataclass(frozen=True)
class Selection:
    categories: tuple[Hashable, ...]
    noisy_counts: np.ndarray


@dataclass
class SentinelRelease:
    """Returns SENTINEL for every count and names every present category, recording each call."""

    noise_multiplier: float = 1.0
    calls: list[tuple[str, str, int]] = field(default_factory=list)

    def histogram(self, bin_index: np.ndarray, n_bins: int, *, column: str = "?") -> np.ndarray:
        assert np.asarray(bin_index).ndim == 1 and ((0 <= bin_index) & (bin_index < n_bins)).all()
        self.calls.append(("histogram", column, n_bins))
        return np.full(n_bins, SENTINEL)

    def select_categories(self, values: Any, *, threshold_delta: float, column: str = "?") -> Selection:
        self.calls.append(("select", column, 0))
        present = sorted(pd.Series(np.asarray(values, dtype=object)).dropna().unique().tolist())
        return Selection(tuple(present), np.full(len(present), SENTINEL))


def multiples_of_sentinel(values: np.ndarray) -> bool:
    """True when every entry is 0 or a whole multiple of SENTINEL (a sum of released counts)."""
    ratio = np.asarray(values, dtype=float).ravel() / SENTINEL
    return bool(np.all(np.isclose(ratio, np.round(ratio), rtol=0, atol=1e-6) & (np.round(ratio) >= 0)))
