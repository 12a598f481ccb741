"""Membership risk: how much the synthetic table gives away about who was in the training rows.

Written here rather than taken from SDMetrics (its DCR metrics are quadratic Python and mark a
perfect generator 0.17) or synthcity (too heavy to install). Distances live in the space of
``encoding.py``; neighbours come from one chunked pass of ``neighbours.py``.

- **DCR share**: each synthetic row's distance to its closest train row and closest holdout row,
  with train subsampled to the holdout's size (so a copied table scores 0.5 + 0.5 × holdout/train,
  0.75 on Adult); the share of synthetic rows closer to train (ties
  count one half). 0.5 is ideal: the synthetic rows sit no closer to the rows the generator saw
  than to rows it never saw.
- **NNDR**: closest over second-closest train distance per synthetic row (mean); beside the
  same ratio against the holdout. Near 0 means a synthetic row singles out one real row.
- **Exact copies**: synthetic rows identical to a train row (by row hash).
- **Distance attack**: an attacker who holds the synthetic table scores a candidate row by
  minus its distance to the closest synthetic row; members (train rows) against non-members
  (holdout rows), equal numbers. AUC, and TPR at 1 % and 0.1 % FPR.
- **Density-ratio attack**: DOMIAS, see ``density.py``.

A party runs :func:`local_privacy` on its own rows. What it returns is per synthetic row (the
closest distances, which a server takes the minimum of) or binned attack scores (which add up);
nothing grows with the party's rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from fedtab.evaluators.density import MAX_CANDIDATES, REFERENCE_POINTS, DensitySpace, density_ratio_scores
from fedtab.evaluators.encoding import MixedEncoder, row_hashes
from fedtab.evaluators.neighbours import cross_nearest
from fedtab.evaluators.report import AttackResult, PrivacyResult
from fedtab.evaluators.roc import auc_from_counts, bin_counts, roc_from_counts, thin_curve, tpr_at_fpr

DISTANCE_EDGES = np.linspace(-4.0, 9.5, 2701)
DENSITY_EDGES = np.linspace(-40.0, 40.0, 4001)
DCR_PLOT_BINS = 40
Payload = dict[str, np.ndarray]


@dataclass(frozen=True)
class PrivacySpace:
    """What every party needs to score membership risk, all of it fitted on the synthetic table."""

    encoder: MixedEncoder
    synthetic: np.ndarray
    synthetic_hashes: np.ndarray
    density: DensitySpace
    max_attack_rows: int | None = None

    @classmethod
    def fit(cls, encoder: MixedEncoder, synthetic_encoded: np.ndarray, rng: np.random.Generator, *, max_attack_rows: int | None = None) -> PrivacySpace:
        density = DensitySpace.fit(synthetic_encoded, rng)
        return cls(encoder, synthetic_encoded, row_hashes(synthetic_encoded), density, max_attack_rows)


def local_privacy(
    train: np.ndarray,
    holdout: np.ndarray,
    space: PrivacySpace,
    rng: np.random.Generator,
    on_chunk: Callable[[int, int], None] | None = None,
) -> Payload:
    """One party's membership-risk scores from its encoded train and holdout rows."""
    clock = time.perf_counter()
    train_hashes = row_hashes(train)
    m = min(len(train), len(holdout), space.max_attack_rows or len(holdout))
    members = train[rng.choice(len(train), m, replace=False)]
    holdout = holdout[rng.permutation(len(holdout))]
    candidates = np.concatenate([members, holdout[:m]])
    cross = cross_nearest(
        space.synthetic, candidates, groups=[m, m], k=2,
        row_hashes=space.synthetic_hashes, column_hashes=row_hashes(candidates), on_chunk=on_chunk,
    )
    neighbours_done = time.perf_counter()
    c = min(m, MAX_CANDIDATES)
    member_scores, nonmember_scores = density_ratio_scores(space.density, members[:c], holdout[:c], holdout[:REFERENCE_POINTS])
    return {
        "sum:timing/privacy: nearest neighbours": np.array([neighbours_done - clock]),
        "sum:timing/privacy: density attack": np.array([time.perf_counter() - neighbours_done]),
        "smallest:privacy/train_top2": _two_columns(cross.row_distances[0]),
        "smallest:privacy/holdout_top2": _two_columns(cross.row_distances[1]),
        "max:privacy/copy_of_train": np.isin(space.synthetic_hashes, train_hashes).astype(np.float64),
        "sum:privacy/attack_rows": np.array([float(m)]),
        "sum:privacy/distance/members": bin_counts(_closeness(cross.column_distances[:m]), DISTANCE_EDGES),
        "sum:privacy/distance/nonmembers": bin_counts(_closeness(cross.column_distances[m:]), DISTANCE_EDGES),
        "sum:privacy/density/members": bin_counts(member_scores, DENSITY_EDGES),
        "sum:privacy/density/nonmembers": bin_counts(nonmember_scores, DENSITY_EDGES),
    }


def local_copies(train: np.ndarray, space: PrivacySpace) -> Payload:
    """Without a holdout only exact copies can be told: a flag per synthetic row."""
    return {"max:privacy/copy_of_train": np.isin(space.synthetic_hashes, row_hashes(train)).astype(np.float64)}


def finalize_privacy(payload: Mapping[str, np.ndarray]) -> PrivacyResult:
    """Membership-risk figures from the merged payload of one or several parties."""
    copies = float(np.mean(payload["max:privacy/copy_of_train"]))
    if "smallest:privacy/train_top2" not in payload:
        return PrivacyResult(exact_copies=copies, has_holdout=False)
    train, holdout = payload["smallest:privacy/train_top2"], payload["smallest:privacy/holdout_top2"]
    closer = np.mean((train[:, 0] < holdout[:, 0]) + 0.5 * (train[:, 0] == holdout[:, 0]))
    edges = _dcr_edges(train[:, 0], holdout[:, 0])
    return PrivacyResult(
        exact_copies=copies,
        has_holdout=True,
        dcr_share=float(closer),
        dcr_train_median=float(np.median(train[:, 0])),
        dcr_holdout_median=float(np.median(holdout[:, 0])),
        exact_train_share=float(np.mean(train[:, 0] == 0)),
        exact_holdout_share=float(np.mean(holdout[:, 0] == 0)),
        nndr_train=float(np.mean(_ratio(train))),
        nndr_holdout=float(np.mean(_ratio(holdout))),
        attack_rows=int(payload["sum:privacy/attack_rows"][0]),
        synthetic_rows=len(train),
        dcr_edges=edges.round(6).tolist(),
        dcr_train_counts=np.histogram(np.clip(train[:, 0], 0, edges[-1]), edges)[0].tolist(),
        dcr_holdout_counts=np.histogram(np.clip(holdout[:, 0], 0, edges[-1]), edges)[0].tolist(),
        attacks=(
            attack_result("distance to closest synthetic row", payload["sum:privacy/distance/members"], payload["sum:privacy/distance/nonmembers"]),
            attack_result("density ratio (DOMIAS)", payload["sum:privacy/density/members"], payload["sum:privacy/density/nonmembers"]),
        ),
    )


def attack_result(name: str, members: np.ndarray, nonmembers: np.ndarray) -> AttackResult:
    fpr, tpr = roc_from_counts(members, nonmembers)
    curve_fpr, curve_tpr = thin_curve(fpr, tpr)
    return AttackResult(
        name=name,
        auc=auc_from_counts(members, nonmembers),
        tpr_at_1pct_fpr=tpr_at_fpr(fpr, tpr, 0.01),
        tpr_at_01pct_fpr=tpr_at_fpr(fpr, tpr, 0.001),
        roc_fpr=curve_fpr,
        roc_tpr=curve_tpr,
    )


def _closeness(distances: np.ndarray) -> np.ndarray:
    """Attack score: larger when a candidate sits closer to a synthetic row; an exact copy scores 9."""
    return -np.log10(distances + 1e-9)


def _two_columns(distances: np.ndarray) -> np.ndarray:
    if distances.shape[1] == 2:
        return distances
    return np.concatenate([distances, np.full((len(distances), 1), np.inf)], axis=1)


def _ratio(top2: np.ndarray) -> np.ndarray:
    """Closest over second closest; a row matching two identical records singles out neither (ratio 1)."""
    first, second = top2[:, 0], top2[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(second) & (second > 0), np.minimum(first / second, 1.0), 1.0)


def _dcr_edges(train: np.ndarray, holdout: np.ndarray) -> np.ndarray:
    pooled = np.concatenate([train, holdout])
    top = float(np.quantile(pooled[np.isfinite(pooled)], 0.99)) if np.isfinite(pooled).any() else 1.0
    return np.linspace(0.0, top if top > 0 else 1.0, DCR_PLOT_BINS + 1)
