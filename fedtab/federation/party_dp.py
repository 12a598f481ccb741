"""Party-level DP (one whole party): clip each party's update, average them equally, noise the mean.

This is Flower's central DP with server-side fixed clipping (McMahan et al. 2018; Flower's
``DifferentialPrivacyServerSideFixedClipping``), built from the pieces that strategy uses —
``get_norm``/``clip_inputs_inplace``/``compute_stdv`` and the ``RdpAccountant`` with
``NO_AMPLIFICATION`` — rather than from the strategy object. The strategy is a ``Strategy`` over
Flower ``Message``s: driving it needs a ``Grid`` for ``configure_train``, replies rebuilt as
Messages with one MetricRecord each, and it skips aggregation outright when a party is missing;
our coordinator is transport-free (the in-process transport has no Messages) and must behave the
same on every engine. Its noise helper, ``add_gaussian_noise_inplace``, also draws from numpy's
global generator, which fedtab never touches; the noise here comes from a generator seeded with a
secret drawn per run (``secrets``), not ``config.seed``: that seed is saved with the model, and
anyone holding it could replay the noise and subtract it.

Neighbouring federations differ in one party's data (its update may be anything, e.g. zero); that
a party took part is public (the model file names the parties). One round is one Gaussian release
of the sum of clipped updates with noise ``z * clip``, divided by the number of parties that
replied — so the noise std on the mean uses that number, never the planned one.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from flwr.supercore.differential_privacy import clip_inputs_inplace, compute_stdv, get_norm
from flwr.supercore.privacy_accounting import GaussianPrivacyEvent, NeighboringRelation, PrivacyConfig, SamplingMethod
from flwr.supercore.privacy_accounting.rdp_accountant import RdpAccountant

from fedtab.config import FedtabConfig
from fedtab.errors import ConfigError, FederationError, PrivacyBudgetError
from fedtab.privacy.ledger import PartyLevelSpend
from fedtab.privacy.planning import default_delta

Weights = dict[str, np.ndarray]

ACCOUNTANT = "flower-rdp, no amplification, equal weights"
MAX_PARTY_NOISE_MULTIPLIER = 50.0
"""Beyond this the noise on every coordinate of the mean update is 50 / parties times the whole update's clip: nothing trains."""
MIN_PARTY_NOISE_MULTIPLIER = 1e-3
MIN_PARTIES = 2
_SEARCH_STEPS = 60


@dataclass(frozen=True)
class PartyDPPlan:
    """The party-level noise, fixed before round one from (ε, δ, rounds)."""

    epsilon: float
    delta: float
    noise_multiplier: float
    clip: float
    rounds: int
    parties: int


def party_accountant(*, delta: float, parties: int) -> RdpAccountant:
    """Flower's RDP accountant as its fixed-clipping strategy requires it: no amplification, add/remove one."""
    config = PrivacyConfig(target_delta=delta, population_size=parties,
                           neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
                           sampling_method=SamplingMethod.NO_AMPLIFICATION)
    return RdpAccountant(config)


def party_epsilon(noise_multiplier: float, *, rounds: int, delta: float, parties: int) -> float:
    """ε after ``rounds`` releases at ``noise_multiplier``, read from a fresh Flower accountant."""
    accountant = party_accountant(delta=delta, parties=parties)
    accountant.compose(GaussianPrivacyEvent(noise_multiplier, parties, parties), count=rounds)
    return accountant.get_epsilon(delta)


def plan_party_noise(*, epsilon: float, delta: float, rounds: int, parties: int) -> float:
    """The smallest noise multiplier (to 1e-4 relative) whose ``rounds`` releases stay within ε; refuses if none can."""
    def spent(z: float) -> float:
        return party_epsilon(z, rounds=rounds, delta=delta, parties=parties)

    if spent(MAX_PARTY_NOISE_MULTIPLIER) > epsilon:
        raise _refusal(epsilon=epsilon, delta=delta, rounds=rounds, parties=parties)
    low, high = MIN_PARTY_NOISE_MULTIPLIER, MAX_PARTY_NOISE_MULTIPLIER
    if spent(low) <= epsilon:
        return low
    for _ in range(_SEARCH_STEPS):
        middle = math.sqrt(low * high)
        low, high = (low, middle) if spent(middle) <= epsilon else (middle, high)
        if high / low < 1 + 1e-5:
            break
    return high


def _refusal(*, epsilon: float, delta: float, rounds: int, parties: int) -> PrivacyBudgetError:
    at_cap = party_epsilon(MAX_PARTY_NOISE_MULTIPLIER, rounds=rounds, delta=delta, parties=parties)
    fits = [f"party_epsilon >= {at_cap * 1.001:.3g} (--party-epsilon)"]
    max_rounds = _max_rounds(epsilon=epsilon, delta=delta, rounds=rounds, parties=parties)
    if max_rounds:
        fits.append(f"rounds <= {max_rounds} (--rounds; raise --local-epochs to keep the training)")
    return PrivacyBudgetError(
        f"Party-level DP cannot keep within ε = {epsilon:.3g} at δ = {delta:.3g} over {rounds} rounds: even "
        f"noise multiplier {MAX_PARTY_NOISE_MULTIPLIER:g} (the most that leaves any signal in the mean of "
        f"{parties} updates) composes to ε = {at_cap:.3g} with Flower's accountant (no amplification). "
        f"Any one of these would fit: {'; '.join(fits)}."
    )


def _max_rounds(*, epsilon: float, delta: float, rounds: int, parties: int) -> int:
    """The most rounds that fit at the largest noise; 0 if not even one does."""
    low, high = 0, rounds
    while high - low > 1:
        middle = (low + high) // 2
        fits = party_epsilon(MAX_PARTY_NOISE_MULTIPLIER, rounds=middle, delta=delta, parties=parties) <= epsilon
        low, high = (middle, high) if fits else (low, middle)
    return low


def plan_party_dp(config: FedtabConfig, parties: Mapping[str, int], *, noise_seed: int | None = None) -> PartyDP | None:
    """The run's party-level mechanism, or None when ``party_epsilon`` is unset; refuses before anything is released."""
    if config.party_epsilon is None:
        return None
    if len(parties) < MIN_PARTIES:
        raise ConfigError(
            f"Party-level DP (party_epsilon) needs at least {MIN_PARTIES} parties to hide one among them; got "
            f"{len(parties)} ({sorted(parties)}). Add parties, or drop party_epsilon and use --epsilon (per record)."
        )
    delta = config.party_delta if config.party_delta is not None else default_delta(len(parties))
    z = plan_party_noise(epsilon=config.party_epsilon, delta=delta, rounds=config.rounds, parties=len(parties))
    plan = PartyDPPlan(config.party_epsilon, delta, z, float(config.party_clip), config.rounds, len(parties))
    return PartyDP(plan, noise_seed=noise_seed)


class PartyDP:
    """One run's party-level mechanism: clip, average with equal weights, add noise, compose one event a round."""

    def __init__(self, plan: PartyDPPlan, *, noise_seed: int | None = None) -> None:
        self.plan = plan
        self.accountant = party_accountant(delta=plan.delta, parties=plan.parties)
        self._rng = np.random.default_rng(secrets.randbits(63) if noise_seed is None else noise_seed)
        self.warnings: list[str] = []

    def check_round(self, round_index: int) -> None:
        """Before a round is sent: stop if its release would overspend (the plan says it will not)."""
        if self.accountant.would_exceed(self._event(self.plan.parties), max_epsilon=self.plan.epsilon):
            raise PrivacyBudgetError(
                f"Party-level round {round_index + 1} would take ε past {self.plan.epsilon:.3g} (spent "
                f"{self.accountant.get_epsilon(self.plan.delta):.3g} in {self.accountant.num_releases} rounds). "
                "This is a fedtab bug: the plan should have prevented it; report it with the config."
            )

    def aggregate(self, global_weights: Weights, updates: Mapping[str, Weights], round_index: int) -> Weights:
        """New global weights from the replies of the parties that answered; composes the round's event.

        Every float array is part of the clipped update; integer arrays (BatchNorm's batch counters)
        keep the global value, so nothing unnoised leaves a party's update.
        """
        if not updates:
            raise FederationError(f"Party-level aggregation of round {round_index + 1} got no replies; the coordinator "
                              "must stop before aggregating nothing.")
        keys = [k for k, v in global_weights.items() if np.issubdtype(v.dtype, np.floating)]
        clipped = [self._clipped_update(global_weights, updates[p], keys, p, round_index) for p in sorted(updates)]
        std = compute_stdv(self.plan.noise_multiplier, self.plan.clip, len(clipped))
        out = dict(global_weights)
        for i, key in enumerate(keys):
            mean = np.mean([u[i] for u in clipped], axis=0)
            noise = self._rng.normal(0.0, std, size=mean.shape)
            out[key] = (global_weights[key].astype(np.float64) + mean + noise).astype(global_weights[key].dtype)
        self.accountant.compose(self._event(len(clipped)))
        return out

    def _clipped_update(self, global_weights: Weights, reply: Weights, keys: list[str], party: str,
                        round_index: int) -> list[np.ndarray]:
        # asarray: a 0-d difference is a numpy scalar, which Flower's in-place clip would skip
        update = [np.asarray(reply[k].astype(np.float64) - global_weights[k].astype(np.float64)) for k in keys]
        norm = get_norm(update)
        if not math.isfinite(norm):
            self.warnings.append(f"Round {round_index + 1}: party '{party}' sent non-finite weights; its update "
                                 "counted as zero (party-level DP bounds it either way).")
            return [np.zeros_like(u) for u in update]
        if norm > 0:
            clip_inputs_inplace(update, self.plan.clip)
        return update

    def _event(self, answered: int) -> GaussianPrivacyEvent:
        return GaussianPrivacyEvent(self.plan.noise_multiplier, answered, self.plan.parties)

    def spend(self) -> PartyLevelSpend:
        """The ledger's party-level entry: what Flower's accountant composed so far."""
        return PartyLevelSpend(
            epsilon=self.accountant.get_epsilon(self.plan.delta) if self.accountant.num_releases else 0.0,
            delta=self.plan.delta, noise_multiplier=self.plan.noise_multiplier, clip_norm=self.plan.clip,
            rounds=self.accountant.num_releases, parties=self.plan.parties, accountant=ACCOUNTANT,
            budget_epsilon=self.plan.epsilon,
        )
