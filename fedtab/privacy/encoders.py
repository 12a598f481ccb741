"""A party's private encoder statistics: its planned noise, charged to its own accountant.

The party worker calls ``private_statistics`` for every statistics request of a run under
differential privacy. It builds the party's ``GaussianRelease`` at the plan's encoder noise
multiplier, refuses a request that would take the party past the releases its plan counted
(``PlanFitter.release_plan``), answers through the release only, and checks the reply holds
nothing but private statistics before it goes.

The noise must be unknown to the server: draw it from a seed the party keeps to itself
(``new_noise_seed``), never from the run's seed, which the server knows and could replay.
"""

from __future__ import annotations

import secrets

import numpy as np

from fedtab.errors import PrivacyBudgetError
from fedtab.privacy.accountant import PartyAccountant
from fedtab.privacy.distributed import DISTRIBUTED, DistributedRelease, check_share_noise, share_factor
from fedtab.privacy.mechanisms import GaussianRelease
from fedtab.privacy.planning import PrivacyPlan
from fedtab.rng import numpy_rng
from fedtab.schema import PartyTable
from fedtab.transformers import StatsRequest, local_statistics
from fedtab.transformers.private_party import private_reply_problems, request_releases


def new_noise_seed() -> int:
    """A fresh secret seed for a party's noise (from the OS's entropy; keep it with the party's state)."""
    return secrets.randbits(63)


def encoder_release(plan: PrivacyPlan, accountant: PartyAccountant, *, noise_seed: int,
                    stage: str) -> GaussianRelease:
    """The party's release for one statistics stage: the plan's encoder σ, its own noise stream (a share of it
    under distributed noise, charged as σ all the same)."""
    if plan.encoder_noise_multiplier is None:
        raise PrivacyBudgetError(
            f"Party {accountant.party!r} has a privacy plan with no encoder releases, so it cannot release "
            "encoder statistics. Plan the noise with encoder_releases and partition_selections from "
            "PlanFitter.release_plan(schema)."
        )
    rng = numpy_rng(noise_seed, "encoder-noise", accountant.party, stage)
    if plan.encoder_noise == DISTRIBUTED:
        return DistributedRelease(share=share_factor(plan.noise_parties, plan.noise_tolerance),
                                  noise_multiplier=plan.encoder_noise_multiplier, accountant=accountant, rng=rng,
                                  mechanism=plan.encoder_mechanism)
    return GaussianRelease(noise_multiplier=plan.encoder_noise_multiplier, accountant=accountant, rng=rng,
                           mechanism=plan.encoder_mechanism)


def private_statistics(table: PartyTable, request: StatsRequest, *, plan: PrivacyPlan,
                       accountant: PartyAccountant, noise_seed: int, seed: int = 0,
                       secure: bool = False) -> dict[str, np.ndarray]:
    """Answer one encoder statistics request under the party's plan (see the module docstring).

    ``secure``: the reply goes into a secure sum, never to the server alone; a plan with a share of the
    noise (distributed) is refused without it.
    """
    check_share_noise(plan, secure=secure, party=accountant.party, what=f"'{request.stage}' statistics")
    _check_within_plan(request, plan, accountant)
    release = encoder_release(plan, accountant, noise_seed=noise_seed, stage=request.stage)
    threshold_delta = plan.threshold_delta if plan.partition_selections else None
    reply = local_statistics(table, request, seed=seed, release=release, threshold_delta=threshold_delta)
    assert_private_statistics(request, reply)
    return reply


def assert_private_statistics(request: StatsRequest, reply: dict[str, np.ndarray]) -> None:
    """Raise unless ``reply`` holds only private statistics of ``request``'s stage (for tests and parties)."""
    problems = private_reply_problems(request, reply)
    if problems:
        raise PrivacyBudgetError(
            f"A reply to the private '{request.stage}' request holds more than private statistics; expected only "
            "noised counts and histograms with fixed shapes:\n" + "\n".join(f"  - {p}" for p in problems)
            + "\nDo not send it; run every party with the same fedtab version."
        )


def _check_within_plan(request: StatsRequest, plan: PrivacyPlan, accountant: PartyAccountant) -> None:
    """Refuse before any release when the request would exceed the releases the noise was planned for."""
    needed = request_releases(request)
    spent = accountant.steps(plan.encoder_mechanism)
    selected = round(accountant.threshold_delta(plan.encoder_mechanism) / plan.threshold_delta) if plan.threshold_delta else 0
    if spent + needed.encoder_releases > plan.encoder_releases or \
            selected + needed.partition_selections > plan.partition_selections:
        raise PrivacyBudgetError(
            f"Party {accountant.party!r}: the '{request.stage}' request needs {needed.encoder_releases} encoder "
            f"releases ({needed.partition_selections} partition selections); {spent} ({selected}) are spent and the "
            f"plan allows {plan.encoder_releases} ({plan.partition_selections}). Plan the noise with "
            "PlanFitter.release_plan(schema) for the schema the server fits, and fit the encoders once per run."
        )
