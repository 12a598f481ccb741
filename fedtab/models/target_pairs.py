"""The plan's released 2-way target marginals, used by a token model (argn) in its loss and at sampling.

Under DP the parties release, with the encoder statistics, the declared target's cross table with every
other column (``transformers.pairs``: a categorical column's vocabulary, a numerical column's mixture
modes — the classes of argn's category and mode tokens). Everything here is post-processing of those
released counts:

- ``pair_loss``: a per-row term DP-SGD can clip. For each column crossed with the target, the head that
  comes later in the row's order (the target's under a fixed order, which puts it last) is pulled towards
  the released conditional given the earlier one's value: P(target | column's class of this row), or
  P(column's class | this row's target). Over a batch, the gradient of the rows sharing a class is the
  mismatch between the head's mean and the released conditional, so the term matches the 2-way marginal
  without reading any other row.
- ``raked_target_logits``: at sampling, the target head's logits plus one shift per (column class, target
  class), fitted by iterative proportional fitting so that, in the sample, each column class's mean target
  share is the released one (and the target's overall share its released count): the 2-way analogue of
  matching the target's 1-way share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from fedtab.transformers.pairs import conditional_shares

RAKE_SWEEPS = 10
SHARE_TOLERANCE = 0.05
"""A released conditional share whose noise (standard error) is this large is trusted half: its group's step is
halved; at 0 noise the step is whole, and groups with a few rows' worth of signal are left to the model."""


def pair_tables(plan: Any, tokens: Sequence[Any], target: str | None) -> dict[int, torch.Tensor]:
    """Token index -> the released joint shares P(target class, token class), (target classes, token classes),
    for every category or mode token whose column the plan crosses with ``target`` (empty when it crosses none)."""
    if target is None or getattr(plan, "target", None) != target:
        return {}
    out = {}
    for i, token in enumerate(tokens):
        if token.column == target or token.kind not in ("category", "mode"):
            continue
        given = conditional_shares(plan, token.column)
        if given is None or given.shape[1] != token.cardinality:
            continue
        counts = np.clip(np.asarray(plan.column(target).counts, dtype=np.float64), 0.0, None) + 1e-6
        joint = given * (counts / counts.sum())[:, None]
        out[i] = torch.from_numpy(joint / joint.sum()).float()
    return out


def pair_trust(plan: Any, tables: Mapping[int, torch.Tensor]) -> dict[int, torch.Tensor]:
    """Token -> per token class, the weight of the released conditional at sampling: N²/(N² + K·s²/τ²) for a class
    released in N rows with cell noise s (``TransformPlan.pair_noise``) and K target classes: the conditional's
    standard error ≈ s·√K/N measured against τ = ``SHARE_TOLERANCE``. Exact tables are trusted whole."""
    noise = float(getattr(plan, "pair_noise", 0.0))
    rows = float(np.clip(plan.column(plan.target).counts, 0, None).sum()) if tables else 0.0
    out = {}
    for token, joint in tables.items():
        n = joint.sum(dim=0).double() * rows
        out[token] = (n**2 / (n**2 + joint.shape[0] * noise**2 / SHARE_TOLERANCE**2)).float()
    return out


def target_token(tokens: Sequence[Any], target: str | None) -> int | None:
    return next((i for i, t in enumerate(tokens) if t.column == target and t.kind == "category"), None)


def pair_loss(logits: Sequence[torch.Tensor], indices: Sequence[torch.Tensor], tables: Mapping[int, torch.Tensor],
              target: int, ranks: np.ndarray, trust: Mapping[int, torch.Tensor] | None = None) -> torch.Tensor:
    """Per row: the mean over crossed columns of the cross-entropy between the later head and the released
    conditional given the earlier token's class (see the module docstring); with ``trust`` (``pair_trust``) a
    row's term for a column is weighed by how far its class's released conditional can be trusted."""
    y = indices[target]
    log_target = F.log_softmax(logits[target], dim=1)
    terms = []
    for token, joint in tables.items():
        joint = joint.to(log_target.device)
        if ranks[token] < ranks[target]:
            given = joint / joint.sum(dim=0, keepdim=True).clamp_min(1e-12)  # P(target | token class)
            weight = 1.0 if trust is None else trust[token].to(log_target.device)[indices[token]]
            terms.append(-(given[:, indices[token]].T * log_target).sum(dim=1) * weight)
        else:
            given = joint / joint.sum(dim=1, keepdim=True).clamp_min(1e-12)  # P(token class | target)
            terms.append(-(given[y] * F.log_softmax(logits[token], dim=1)).sum(dim=1))
    return torch.stack(terms, dim=1).mean(dim=1)


def raked_target_logits(logits: torch.Tensor, indices: Mapping[int, torch.Tensor], tables: Mapping[int, torch.Tensor],
                        trust: Mapping[int, torch.Tensor] | None = None, sweeps: int = RAKE_SWEEPS) -> torch.Tensor:
    """The target's ``logits`` (rows, classes) shifted per (token class, target class) so that the rows drawn
    with each class of each crossed token carry the released P(target | that class) on average, and all rows
    the released target shares (each row's ranking within a class group kept). ``indices``: each crossed
    token's drawn class per row; ``trust`` (``pair_trust``): per token class, the weight of the released
    conditional against the head's own mean in the shares raked to (1 everywhere when None), so a noisy class
    moves only part of the way."""
    shift = torch.zeros_like(logits)
    goals = {t: _goal(logits, indices[t], joint, None if trust is None else trust[t]) for t, joint in tables.items()}
    shares = next(iter(tables.values())).sum(dim=1).to(logits.device) if tables else None
    for _ in range(sweeps):
        for token, goal in goals.items():
            index = indices[token]
            shift = shift + _step(logits + shift, index, goal)[index]
        if shares is not None:
            mean = torch.softmax(logits + shift, dim=1).mean(dim=0)
            shift = shift + torch.log(shares / mean.clamp_min(1e-12))
    return logits + shift


def _group_means(logits: torch.Tensor, index: torch.Tensor, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean softmax of the rows of each token class (classes, target classes), and whether any row has it."""
    probs = torch.softmax(logits, dim=1)
    sums = torch.zeros(classes, probs.shape[1], dtype=probs.dtype, device=probs.device).index_add_(0, index, probs)
    rows = torch.bincount(index, minlength=classes).to(probs.dtype)[:, None]
    return sums / rows.clamp_min(1.0), rows[:, 0] > 0


def _goal(logits: torch.Tensor, index: torch.Tensor, joint: torch.Tensor, trust: torch.Tensor | None) -> torch.Tensor:
    """Per token class, the target shares to rake to: the released conditional, or for a noisy class its geometric
    blend with the head's own mean (weight ``trust``)."""
    released = (joint / joint.sum(dim=0, keepdim=True).clamp_min(1e-12)).T.to(logits.device).clamp_min(1e-6)
    if trust is None:
        return released
    own, _ = _group_means(logits, index, len(released))
    w = trust.to(logits.device)[:, None]
    blend = torch.exp(w * released.log() + (1 - w) * own.clamp_min(1e-6).log())
    return blend / blend.sum(dim=1, keepdim=True)


def _step(logits: torch.Tensor, index: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """One proportional-fitting step: per token class, the log ratio of the goal to the rows' mean shares."""
    means, seen = _group_means(logits, index, len(goal))
    update = torch.zeros_like(goal)
    update[seen] = torch.log(goal[seen] / means[seen].clamp_min(1e-12))
    return update
