"""A density-ratio membership attack in the DOMIAS manner (van Breugel et al., 2023).

A generator that overfits puts extra density on its training rows, more than the population
has there. DOMIAS scores a candidate row x by ``p_synthetic(x) / p_reference(x)``: high where
the synthetic table is denser than real rows from the same population. Both densities are
Gaussian kernel density estimates in a small encoded space: the distance space of
``encoding.py`` projected on the synthetic table's first principal axes and whitened (so one
isotropic bandwidth fits every axis), with Scott's bandwidth ``n^(−1/(d+4))`` times 0.25. On
Adult, factors 0.5 / 0.25 / 0.1 caught a copied table at AUC 0.68 / 0.71 / 0.71 and left fresh
rows at 0.50. The synthetic density sums over up to 20,000 synthetic rows, the reference density
over up to 10,000 holdout rows; up to 5,000 members and 5,000 non-members are scored.

The reference rows are the holdout. A holdout row that is itself a candidate is left out of
its own reference density (leave-one-out), so members and non-members see references of the
same size. In a federation each party uses its own holdout as the reference; the log densities
carry their normalising constants, so scores from parties of different sizes can be pooled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fedtab.evaluators.threads import one_thread

DIMENSIONS = 10
SYNTHETIC_POINTS = 20_000
REFERENCE_POINTS = 10_000
MAX_CANDIDATES = 5_000
BANDWIDTH_FACTOR = 0.25


@dataclass(frozen=True)
class DensitySpace:
    """Projection fitted on the synthetic table, and the synthetic rows the synthetic density sums over."""

    mean: np.ndarray
    axes: np.ndarray
    points: np.ndarray
    bandwidth_factor: float = BANDWIDTH_FACTOR

    @classmethod
    def fit(
        cls,
        synthetic: np.ndarray,
        rng: np.random.Generator,
        *,
        dimensions: int = DIMENSIONS,
        max_points: int = SYNTHETIC_POINTS,
        bandwidth_factor: float = BANDWIDTH_FACTOR,
    ) -> DensitySpace:
        sample = synthetic[_subsample(len(synthetic), 4 * max_points, rng)].astype(np.float64)
        mean = sample.mean(0)
        variance, vectors = np.linalg.eigh(np.cov(sample - mean, rowvar=False).reshape(sample.shape[1], -1))
        variance, vectors = variance[::-1], vectors[:, ::-1]
        keep = min(dimensions, int(np.sum(variance > 1e-12 * max(variance[0], 1e-12))) or 1)
        axes = vectors[:, :keep].T / np.sqrt(variance[:keep])[:, None]
        space = cls(mean, axes, np.empty((0, keep)), bandwidth_factor)
        points = space.project(synthetic[_subsample(len(synthetic), max_points, rng)])
        return cls(mean, axes, points, bandwidth_factor)

    @property
    def dimensions(self) -> int:
        return self.axes.shape[0]

    def project(self, encoded: np.ndarray) -> np.ndarray:
        return ((encoded.astype(np.float64) - self.mean) @ self.axes.T).astype(np.float32)

    def bandwidth(self, n: int) -> float:
        return self.bandwidth_factor * max(n, 1) ** (-1.0 / (self.dimensions + 4))


def density_ratio_scores(
    space: DensitySpace,
    members: np.ndarray,
    nonmembers: np.ndarray,
    reference: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """log p_syn − log p_ref for members and non-members; non-member i is reference row i (left out)."""
    syn_h = space.bandwidth(len(space.points))
    ref_h = space.bandwidth(len(reference) - 1)
    ref = space.project(reference)
    out = []
    for rows, leave_out in ((members, None), (nonmembers, np.arange(len(nonmembers)))):
        x = space.project(rows)
        if leave_out is not None:
            leave_out = np.where(leave_out < len(ref), leave_out, -1)
        log_syn = log_kde(x, space.points, syn_h)
        log_ref = log_kde(x, ref, ref_h, leave_out=leave_out)
        out.append(log_syn - log_ref)
    return out[0], out[1]


@one_thread()
def log_kde(
    query: np.ndarray,
    points: np.ndarray,
    bandwidth: float,
    *,
    leave_out: np.ndarray | None = None,
    chunk_rows: int = 1024,
) -> np.ndarray:
    """Log of a Gaussian KDE with an isotropic bandwidth; ``leave_out[i]`` drops one point for query i."""
    q = torch.from_numpy(np.ascontiguousarray(query, dtype=np.float32))
    p = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))
    p_t, p_norm = p.T.contiguous(), (p * p).sum(1)
    dims = p.shape[1]
    out = np.empty(len(q), dtype=np.float64)
    for start in range(0, len(q), chunk_rows):
        block = q[start : start + chunk_rows]
        logits = torch.mm(block, p_t).mul_(2).sub_(p_norm[None, :]).sub_((block * block).sum(1)[:, None])
        logits.clamp_(max=0).mul_(1 / (2 * bandwidth * bandwidth))
        count = len(p)
        if leave_out is not None:
            drop = leave_out[start : start + len(block)]
            rows = np.nonzero(drop >= 0)[0]
            logits[torch.from_numpy(rows), torch.from_numpy(drop[rows])] = -float("inf")
            count = np.where(drop >= 0, len(p) - 1, len(p))
        out[start : start + len(block)] = torch.logsumexp(logits, 1).double().numpy() - np.log(count)
    return out - dims * np.log(bandwidth * np.sqrt(2 * np.pi))


def _subsample(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, cap, replace=False)) if n > cap else np.arange(n)
