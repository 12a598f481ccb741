"""Distributed Gaussian noise: under secure aggregation each party adds a share of the noise, so the sum
carries it once.

Without secure aggregation the server reads every party's release alone, so every party must add the
whole noise N(0, σ²) and a sum over P parties carries σ·√P. With a secure sum the server reads only the
sum; each party adds N(0, σ²/(P − T)) and the sum of any P − T parties' shares already carries σ.

Trust assumption (stated wherever the option is offered): the server is honest but curious (it follows
the protocol and reads everything it receives), and at most T parties drop out or collude with it.
Colluders know their own shares and a dropped party's share is missing from the sum, so the noise that
protects a row is that of the other P − T parties: σ, the σ the party's accountant charges. SecAgg+'s
reconstruction threshold is P − T for the same reason: the server can only ever unmask a sum of at
least P − T parties (fewer, and the run stops naming who was lost). T < P/2, so the colluders cannot
reconstruct an honest party's masks on their own.

The accountant records these releases under ``ENCODER_DISTRIBUTED`` (not ``ENCODER``), so the ledger
says which mechanism was used; the ε per release is the same, the noise on what the server uses is
√(P/(P − T)) instead of √P times σ.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from fedtab.errors import ConfigError, PrivacyBudgetError
from fedtab.privacy.mechanisms import CategorySelection, GaussianRelease
from fedtab.privacy.planning import PrivacyPlan

LOCAL = "local"
DISTRIBUTED = "distributed"
NOISE_MODES = (LOCAL, DISTRIBUTED)


def default_tolerance(parties: int) -> int:
    """T when the user sets none: one party may drop or collude once there are three or more."""
    return min(1, (parties - 1) // 2)


def tolerance_problems(parties: int, tolerated: int) -> list[str]:
    """Why (P, T) cannot carry distributed noise (empty: it can)."""
    problems = []
    if not (isinstance(parties, int) and parties >= 2):
        problems.append(f"secure aggregation needs at least 2 parties; got {parties!r}")
    elif not (isinstance(tolerated, int) and 0 <= tolerated and 2 * tolerated < parties):
        problems.append(f"the parties that may drop or collude (T = {tolerated!r}) must be an int in [0, P/2) "
                        f"for P = {parties}, so that colluders cannot unmask an honest party")
    return problems


def share_factor(parties: int, tolerated: int) -> float:
    """Each party's noise as a share of σ: 1/√(P − T)."""
    problems = tolerance_problems(parties, tolerated)
    if problems:
        raise ConfigError("Cannot split the noise: " + "; ".join(problems) + ". Lower secure_dropouts.")
    return 1.0 / math.sqrt(parties - tolerated)


def summed_noise(sigma: float, parties: int, tolerated: int) -> float:
    """Standard deviation (per unit of sensitivity) of the noise on the sum of all P parties' shares."""
    return sigma * math.sqrt(parties) * share_factor(parties, tolerated)


class DistributedRelease(GaussianRelease):
    """A ``GaussianRelease`` that adds σ/√(P − T) noise and charges σ: valid only inside a secure sum.

    Partition selection is refused: it thresholds one party's own noisy count, which would then carry
    only a share of the noise the threshold was set for.
    """

    def __init__(self, *, share: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not (0 < share <= 1):
            raise ConfigError(f"A noise share must be in (0, 1]; got {share!r}. Use share_factor(P, T).")
        self.share = float(share)

    def _noise(self, shape: tuple[int, ...], sensitivity: float) -> Any:
        noise = self.rng.normal(0.0, self.noise_multiplier * self.share * sensitivity, size=shape)
        return float(noise) if shape == () else noise

    def select_categories(self, values: Any, *, threshold_delta: float, column: str = "?") -> CategorySelection:
        raise PrivacyBudgetError(
            f"Party {self.accountant.party!r} cannot select the categories of column {column!r} with a share of the "
            "noise: partition selection thresholds the party's own count, which only a whole σ protects. Declare the "
            "column's categories (the public domain's code book) to use secure aggregation."
        )


def with_distributed_noise(plan: PrivacyPlan, parties: int, tolerated: int) -> PrivacyPlan:
    """``plan`` with its encoder noise added in shares by ``parties`` parties, ``tolerated`` of which may drop
    or collude: the same σ and ε per release, charged under ``ENCODER_DISTRIBUTED``."""
    share_factor(parties, tolerated)
    return dataclasses.replace(plan, encoder_noise=DISTRIBUTED, noise_parties=parties, noise_tolerance=tolerated)


def noise_problems(plan: PrivacyPlan) -> list[str]:
    """What a party finds wrong with a plan's noise mode (empty: nothing)."""
    if plan.encoder_noise not in NOISE_MODES:
        return [f"its encoder noise mode {plan.encoder_noise!r} is not one of {NOISE_MODES}"]
    if plan.encoder_noise == LOCAL:
        return []
    return tolerance_problems(plan.noise_parties, plan.noise_tolerance)


def check_share_noise(plan: PrivacyPlan, *, secure: bool, party: str, what: str) -> None:
    """Refuse a release with a share of the noise unless it goes into a secure sum (see the module docstring)."""
    if plan.encoder_noise == DISTRIBUTED and not secure:
        raise PrivacyBudgetError(
            f"Party {party!r} refuses the {what} request: the plan asks for a share of the noise (σ/√(P − T) with P = "
            f"{plan.noise_parties}, T = {plan.noise_tolerance}), which is private only inside a secure sum, but the "
            "request asks for the statistics in the clear, where the server would read this party's release alone. "
            "Run the server with secure aggregation (--secure-aggregation), or plan local noise."
        )


def check_sum_covers(plan: PrivacyPlan, *, parties: int, threshold: int, party: str) -> None:
    """Refuse a secure sum too small for the plan's noise shares: the sum must hold at least P − T shares."""
    if plan.encoder_noise != DISTRIBUTED:
        return
    if parties != plan.noise_parties or threshold < plan.noise_parties - plan.noise_tolerance:
        raise PrivacyBudgetError(
            f"Party {party!r} refuses to add its noise share: the plan splits σ over P = {plan.noise_parties} parties "
            f"with at most T = {plan.noise_tolerance} lost, but the secure sum is set up over {parties} parties with "
            f"threshold {threshold}, so the server could unmask a sum carrying less than σ. Run the server with "
            "matching settings (the threshold must be at least P − T)."
        )
