"""Fixed, data-independent grids on which parties release a noisy histogram to estimate a column's range.

Under differential privacy a party may not send its minimum and maximum (one row decides them).
Instead every party counts its values on a grid fixed in advance — so the bins say nothing about
the data — and releases the counts noised; the server keeps the bins that rise clearly above the
noise and takes their outer edges as the bounds (``private_server.bounds_from_grid``).

- Numbers: sign × powers of two, one bin per octave, magnitudes from 2**-20 to 2**64 (wide
  enough for any int64), plus one bin for |x| < 2**-20 that the server reads as exactly 0. A
  bound is at most a factor 2 beyond the data, whatever its scale. Finer bins would split the
  same rows over more bins and sink more of them under the noise.
- Datetimes (epoch seconds): powers of two would give one bin per decades near 2020, so dates
  get one bin per calendar year from 1678 to 2261 (pandas' nanosecond range) instead.

Values outside a grid fall into its outermost bins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

LOWEST_OCTAVE = -20
HIGHEST_OCTAVE = 64
FIRST_YEAR, LAST_YEAR = 1678, 2262


@dataclass(frozen=True)
class BoundGrid:
    """Bin ``i`` is ``[edges[i], edges[i + 1])``; ``zero_bin`` (or −1) is read as the point 0."""

    edges: np.ndarray
    zero_bin: int

    @property
    def bins(self) -> int:
        return len(self.edges) - 1

    def index(self, values: np.ndarray) -> np.ndarray:
        """The bin of every (finite) value; values beyond the outer edges land in the outer bins."""
        return np.clip(np.searchsorted(self.edges, values, side="right") - 1, 0, self.bins - 1).astype(np.int64)

    def low_edge(self, bin_index: int) -> float:
        return 0.0 if bin_index == self.zero_bin else float(self.edges[bin_index])

    def high_edge(self, bin_index: int) -> float:
        return 0.0 if bin_index == self.zero_bin else float(self.edges[bin_index + 1])


def _number_grid() -> BoundGrid:
    magnitudes = np.exp2(np.arange(LOWEST_OCTAVE, HIGHEST_OCTAVE + 1, dtype=np.float64))
    edges = np.concatenate([-magnitudes[::-1], magnitudes])
    return BoundGrid(edges, zero_bin=len(magnitudes) - 1)


def _date_grid() -> BoundGrid:
    starts = pd.date_range(f"{FIRST_YEAR}-01-01", f"{LAST_YEAR}-01-01", freq="YS")
    return BoundGrid(((starts - pd.Timestamp(0)) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64), zero_bin=-1)


NUMBER_GRID = _number_grid()
DATE_GRID = _date_grid()
GRID_WIDTH = max(NUMBER_GRID.bins, DATE_GRID.bins)
"""Width of the released array; a grid with fewer bins leaves its tail at exactly 0 (never noised)."""


def grid_for(is_datetime: bool) -> BoundGrid:
    return DATE_GRID if is_datetime else NUMBER_GRID
