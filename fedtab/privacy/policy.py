"""What one party allows, checked by the party itself: the server's privacy plan is only a proposal.

A ``PartyPolicy`` is the party's own (ε, δ), whether it answers at all without DP, and the
accountant settings it composes with. Before it releases anything the party recomputes the plan's
whole spend (encoder statistics and every DP-SGD step) with its own accountant and refuses a plan
that exceeds its budget, was built with other accountant settings, or was made for other rows;
before every release it checks that its history, with the release added, stays within what that
verified plan allows. ε only grows as releases are added, so a history within a plan whose total
fits the budget is within the budget.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from fedtab.config import FedtabConfig
from fedtab.errors import ConfigError, PrivacyBudgetError
from fedtab.privacy.accountant import (
    ACCOUNTANTS,
    DEFAULT_ACCOUNTANT,
    AccountantSettings,
    PartyAccountant,
    accountant_settings,
)
from fedtab.privacy.distributed import noise_problems
from fedtab.privacy.planning import PrivacyPlan, default_delta

REL_TOL = 1e-9


@dataclass(frozen=True)
class PartyPolicy:
    """One party's own privacy terms; the default (no budget, DP not required) answers as before.

    Parameters
    ----------
    epsilon, delta:
        The party's total budget for one run (encoder statistics, training and evaluation composed);
        ``delta`` None accepts a plan's δ up to ``default_delta`` of the party's own rows.
    require_dp:
        Refuse every request that comes without a privacy plan (exact statistics, plain training).
    accountant, eps_error:
        How the party composes ε; ``eps_error`` None takes ``accountant_settings(epsilon)``, the
        setting fedtab's planner uses for the same ε.
    """

    epsilon: float | None = None
    delta: float | None = None
    require_dp: bool = False
    accountant: str = DEFAULT_ACCOUNTANT
    eps_error: float | None = None

    def __post_init__(self) -> None:
        problems = []
        if not (self.epsilon is None or (_is_number(self.epsilon) and self.epsilon > 0)):
            problems.append(f"'epsilon' must be None or a number > 0; got {self.epsilon!r}")
        if not (self.delta is None or (_is_number(self.delta) and 0 < self.delta < 1)):
            problems.append(f"'delta' must be None or a number in (0, 1); got {self.delta!r}")
        if not isinstance(self.require_dp, bool):
            problems.append(f"'require_dp' must be true or false; got {self.require_dp!r}")
        if self.accountant not in ACCOUNTANTS:
            problems.append(f"'accountant' must be one of {sorted(ACCOUNTANTS)}; got {self.accountant!r}")
        if not (self.eps_error is None or (_is_number(self.eps_error) and 0 < self.eps_error <= 0.1)):
            problems.append(f"'eps_error' must be None or a number in (0, 0.1]; got {self.eps_error!r}")
        if self.require_dp is True and self.epsilon is None:
            problems.append("'require_dp' is on but no 'epsilon' is set, so no plan could ever be accepted; "
                            "give the party its budget (e.g. epsilon = 3)")
        if problems:
            raise ConfigError("Invalid party privacy policy:\n" + "\n".join(f"  - {p}. Fix it where the party is "
                                                                            "configured." for p in problems))

    @property
    def has_budget(self) -> bool:
        return self.epsilon is not None

    def settings(self) -> AccountantSettings | None:
        """The party's own accountant settings; None for a party without a budget (it takes the plan's)."""
        if self.epsilon is None:
            return None
        if self.eps_error is None:
            return accountant_settings(self.epsilon, self.accountant)
        return AccountantSettings(self.accountant, float(self.eps_error))

    def describe(self) -> str:
        if self.epsilon is None:
            return "no budget of its own" + (" (DP required)" if self.require_dp else "")
        delta = "the plan's δ up to min(1e-5, 0.1/rows)" if self.delta is None else f"δ ≤ {self.delta:.3g}"
        settings = self.settings()
        return (f"ε ≤ {self.epsilon:.3g} at {delta}, accountant {settings.kind} with eps_error {settings.eps_error:.3g}"
                + (", DP required" if self.require_dp else ""))


def policy_for(config: FedtabConfig, party: str) -> PartyPolicy:
    """The policy the SDK and CLI give ``party``: its own ε from ``party_budgets``, else the run's ``epsilon``.

    Its accountant settings are the run's (``accountant_settings(config.epsilon)``), so a party that
    allows more than the run asks still accepts the run's plan; DP is required wherever there is a budget
    unless ``require_dp`` says otherwise.
    """
    epsilon = config.party_budgets.get(party, config.epsilon)
    require = config.require_dp if config.require_dp is not None else epsilon is not None
    eps_error = None if config.epsilon is None else accountant_settings(config.epsilon, config.accountant).eps_error
    try:
        return PartyPolicy(epsilon, config.delta if epsilon is not None else None, require, config.accountant,
                           eps_error if epsilon is not None else None)
    except ConfigError as error:
        raise ConfigError(f"Party {party!r}: {error}") from error


def refuse_without_plan(policy: PartyPolicy, party: str, what: str) -> None:
    """A party that requires DP answers nothing computed from its rows without a plan."""
    if policy.require_dp:
        raise PrivacyBudgetError(
            f"Party {party!r} refuses the {what} request: it requires differential privacy and the request carries "
            f"no privacy plan (the server asked for exact values). The party allows {policy.describe()}. Run the "
            "server with --epsilon (at most the party's ε), or start the party without require-dp."
        )


def checked_plan(policy: PartyPolicy, plan: PrivacyPlan, *, party: str, rows: int) -> AccountantSettings:
    """Refuse ``plan`` unless the party's own accountant finds it within the party's budget; returns the
    settings the party keeps its accountant with (its own, or the plan's for a party without a budget)."""
    problems = _identity_problems(plan, party, rows) + [f"the plan's noise cannot be trusted: {p}" for p in noise_problems(plan)]
    settings = policy.settings()
    if settings is not None and not problems:
        problems += _budget_problems(policy, plan, settings, rows)
    if problems:
        raise PrivacyBudgetError(
            f"Party {party!r} refuses the server's privacy plan (it asks ε = {plan.budget.epsilon:.3g} at δ = "
            f"{plan.budget.delta:.3g}, accountant {plan.accountant} with eps_error {plan.eps_error:.3g}, "
            f"{plan.steps} DP-SGD steps at noise {plan.noise_multiplier:.4g}); the party allows "
            f"{policy.describe()}:\n" + "\n".join(f"  - {p}" for p in problems)
            + "\nRun the server with a budget this party allows (--epsilon, --delta, --accountant), or raise the "
            "party's own budget."
        )
    return settings or plan.settings


def release_problems(plan: PrivacyPlan, after: PartyAccountant) -> list[str]:
    """Where ``after`` (the party's history with the next release added) goes beyond the verified plan.

    Compared per (mechanism, noise, sample rate): steps and threshold δ may not exceed the plan's.
    """
    allowed = _totals(plan.planned_accountant(after.settings))
    problems = []
    for key, (steps, threshold) in _totals(after).items():
        mechanism, sigma, rate = key
        planned_steps, planned_threshold = allowed.get(key, (0, 0.0))
        if steps > planned_steps:
            problems.append(f"{mechanism} at noise {sigma:.4g}, sample rate {rate:.4g}: {steps} steps with this "
                            f"release; the plan allows {planned_steps}")
        elif threshold > planned_threshold * (1 + REL_TOL) + 1e-300:
            problems.append(f"{mechanism}: threshold δ {threshold:.3g} with this release; the plan allows "
                            f"{planned_threshold:.3g}")
    return problems


def check_release(plan: PrivacyPlan, after: PartyAccountant, what: str) -> None:
    """Raise before a release that the verified plan does not cover (more steps, other noise or rate)."""
    problems = release_problems(plan, after)
    if problems:
        raise PrivacyBudgetError(
            f"Party {after.party!r} refuses the {what}: it would release beyond its accepted privacy plan:\n"
            + "\n".join(f"  - {p}" for p in problems)
            + "\nNothing was released. The server must send the noise, sample rate and step counts of the plan it "
            "proposed; a run continued twice from one checkpoint also ends here."
        )


def _identity_problems(plan: PrivacyPlan, party: str, rows: int) -> list[str]:
    problems = []
    if plan.party != party:
        problems.append(f"the plan was made for party {plan.party!r}, not this one")
    if plan.party_rows != rows:
        problems.append(f"the plan assumes {plan.party_rows} training rows (sample rate {plan.sample_rate:.4g}); "
                        f"this party trains on {rows}")
    return problems


def _budget_problems(policy: PartyPolicy, plan: PrivacyPlan, settings: AccountantSettings, rows: int) -> list[str]:
    problems = []
    if plan.accountant != settings.kind:
        problems.append(f"the plan composes with the {plan.accountant} accountant; this party uses {settings.kind}")
    if not math.isclose(plan.eps_error, settings.eps_error, rel_tol=REL_TOL):
        problems.append(f"the plan was built with eps_error {plan.eps_error:.3g}; this party's accountant uses "
                        f"{settings.eps_error:.3g}")
    max_delta = policy.delta if policy.delta is not None else default_delta(rows)
    if plan.budget.delta > max_delta * (1 + REL_TOL):
        problems.append(f"the plan's δ {plan.budget.delta:.3g} is above the party's δ {max_delta:.3g}")
    if problems:
        return problems
    total = plan.planned_accountant(settings).epsilon(plan.budget.delta)
    if total > policy.epsilon:
        problems.append(f"its releases compose, by this party's own accountant, to ε = {total:.4g} (the plan claims "
                        f"{plan.epsilon:.4g}); the party allows ε = {policy.epsilon:.4g}")
    return problems


def _totals(accountant: PartyAccountant) -> dict[tuple[str, float, float], tuple[int, float]]:
    totals: dict[tuple[str, float, float], list[Any]] = defaultdict(lambda: [0, 0.0])
    for release in accountant.history:
        entry = totals[(release.mechanism, release.noise_multiplier, release.sample_rate)]
        entry[0] += release.steps
        entry[1] += release.threshold_delta
    return {key: (int(steps), float(threshold)) for key, (steps, threshold) in totals.items()}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
