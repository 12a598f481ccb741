"""The server's side of record-level DP: plan every party's noise before round one, check what each
party reports it spent, and keep the ledger.

Each party holds its own accountant (it is the party's budget); the server keeps a mirror built
from the states parties report, refuses a reply whose accountant did not charge what was planned,
and writes the ledger from it. Row counts from the hello round are treated as public.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fedtab.config import FedtabConfig
from fedtab.errors import ConfigError, FederationError, PrivacyBudgetError
from fedtab.federation import keys
from fedtab.federation.payload import Payload, require_every
from fedtab.models.privacy import round_steps
from fedtab.privacy.accountant import PartyAccountant
from fedtab.privacy.distributed import default_tolerance, with_distributed_noise
from fedtab.privacy.ledger import PrivacyLedger
from fedtab.privacy.planning import TRAINING, PrivacyBudget, PrivacyPlan, default_delta, plan_noise


@dataclass
class PrivacyRun:
    """The run's plans and the server's mirror of every party's accountant.

    ``run_id`` names the run to the parties: each keeps its own record of the run under it, which is
    how a party tells a checkpoint's continuation from a replay (``party_guard``).
    """

    budget: PrivacyBudget
    plans: dict[str, PrivacyPlan]
    accountants: dict[str, PartyAccountant] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    missing: dict[str, list[int]] = field(default_factory=dict)
    """Per party, the training rounds (1-based) it was charged for without answering."""

    @property
    def delta(self) -> float:
        return self.budget.delta

    @property
    def encoder_noise_multiplier(self) -> float:
        """The σ the server assumes when telling signal from noise (root mean square over parties)."""
        sigmas = np.array([p.encoder_noise_multiplier or 0.0 for p in self.plans.values()])
        return float(np.sqrt(np.mean(sigmas**2)))

    def plan_json(self, party: str) -> str:
        return json.dumps(self.plans[party].to_dict())

    def stats_config(self, party: str) -> dict[str, str]:
        """What a statistics request carries under DP: the party's plan, for the party to accept or refuse."""
        return {keys.DP_PLAN: self.plan_json(party), keys.DP_RUN: self.run_id}

    def training_config(self, party: str, round_index: int, rounds: int, max_grad_norm: float) -> dict[str, float | int | str]:
        plan = self.plans[party]
        return {
            **self.stats_config(party),
            keys.DP_NOISE: float(plan.noise_multiplier),
            keys.DP_SAMPLE_RATE: float(plan.sample_rate),
            keys.DP_MAX_GRAD_NORM: float(max_grad_norm),
            keys.DP_STEPS: round_steps(plan.steps, rounds, round_index),
            keys.DP_ACCOUNTANT: plan.accountant,
        }

    def record_reply(self, party: str, state_json: str, *, mechanism: str, expected_steps: int | None = None) -> None:
        """Mirror the party's accountant; a party that charged less than the plan is refused."""
        reported = PartyAccountant.from_state_dict(json.loads(state_json))
        previous = self.accountants.get(party)
        if expected_steps is not None:
            before = previous.steps(mechanism) if previous and mechanism in previous.mechanisms else 0
            if reported.steps(mechanism) - before != expected_steps:
                raise FederationError(
                    f"Party '{party}' reported {reported.steps(mechanism) - before} DP-SGD steps for this round; "
                    f"the plan sent {expected_steps}. Its accountant cannot be trusted: rerun with matching fedtab versions."
                )
        self.accountants[party] = reported

    def charge_unreported(self, party: str, steps: int, round_number: int | None = None) -> None:
        """A party that did not reply may still have trained: count its planned steps anyway (and say which round)."""
        if round_number is not None:
            self.missing.setdefault(party, []).append(int(round_number))
        plan = self.plans[party]
        mirror = self.accountants.setdefault(party, plan.new_accountant(party))
        mirror.record_sgd(noise_multiplier=plan.noise_multiplier, sample_rate=plan.sample_rate, steps=steps, mechanism=TRAINING)

    def ledger(self) -> PrivacyLedger:
        """The ledger, refused if any party's spend exceeds the budget (the plans and parties should prevent it)."""
        ledger = dataclasses.replace(
            PrivacyLedger.from_accountants(list(self.accountants.values()), delta=self.delta, budget=self.budget),
            missing={p: tuple(rounds) for p, rounds in sorted(self.missing.items())})
        over = [f"{p.party}: ε = {p.epsilon:.4g}" for p in ledger.parties if p.epsilon > self.budget.epsilon]
        if over:
            raise PrivacyBudgetError(
                f"The privacy ledger exceeds the budget ε = {self.budget.epsilon:.4g} at δ = {self.delta:.3g} "
                f"({'; '.join(over)}). This is a fedtab bug: report it with the run's settings; do not publish the model."
            )
        return ledger

    def to_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps: the budget, every party's plan and the mirror of its accountant."""
        return {
            "budget": dataclasses.asdict(self.budget),
            "plans": {party: plan.to_dict() for party, plan in self.plans.items()},
            "accountants": {party: accountant.state_dict() for party, accountant in self.accountants.items()},
            "run_id": self.run_id,
            "missing": {party: list(rounds) for party, rounds in self.missing.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PrivacyRun:
        """The run a checkpoint saved, with the mirror restored (nothing is planned or charged again)."""
        try:
            return cls(
                PrivacyBudget(**data["budget"]),
                {str(party): PrivacyPlan.from_dict(dict(plan)) for party, plan in data["plans"].items()},
                {str(party): PartyAccountant.from_state_dict(state) for party, state in data["accountants"].items()},
                str(data.get("run_id", "")),
                {str(party): [int(r) for r in rounds] for party, rounds in dict(data.get("missing") or {}).items()},
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise ConfigError(
                f"The checkpoint's privacy state is malformed ({type(error).__name__}: {error}); it needs the budget, "
                "every party's plan and accountant. Resume from an intact checkpoint written by fedtab."
            ) from error


def confirm_plans(transport: Any, privacy: PrivacyRun, *, resume: bool = False) -> None:
    """Every party checks its plan against its own policy before any party releases anything.

    Parties answer in parallel on a real federation, so a refusal in the first statistics round would
    come after the other parties' first releases; this round releases nothing, and a refusal stops the run.
    On ``resume`` each party also checks the checkpoint's mirror of its accountant against its own record.
    """
    names = sorted(privacy.plans)
    payloads = {p: Payload(config={**privacy.stats_config(p), **(
        {keys.DP_RESTORE: json.dumps(privacy.accountants[p].state_dict())} if resume and p in privacy.accountants else {})})
        for p in names}
    replies = transport.exchange(keys.CONSENT, payloads)
    require_every(replies, names, "the privacy plan check",
                  "every party must accept its plan before any statistic is released.")


def plan_privacy(config: FedtabConfig, parties: dict[str, int], *, encoder_releases: int, partition_selections: int) -> PrivacyRun:
    """Noise for every party, before any statistic leaves it; refuses a plan that cannot meet the budget."""
    if config.epsilon is None:
        raise ConfigError("plan_privacy needs a budget: set epsilon (e.g. --epsilon 3).")
    # The largest party's default is the smallest δ: an order of magnitude below 1/n at every party, and within
    # every party's own default limit (PartyPolicy).
    delta = config.delta if config.delta is not None else default_delta(max(parties.values()))
    budget = PrivacyBudget(config.epsilon, delta, config.encoder_share)
    plans = {
        name: plan_noise(
            budget=budget,
            party_rows=rows,
            batch_size=min(config.batch_size, rows),
            epochs=config.rounds * config.local_epochs,
            encoder_releases=encoder_releases,
            partition_selections=partition_selections,
            accountant=config.accountant,
            party=name,
        )
        for name, rows in sorted(parties.items())
    }
    if config.secure_aggregation:
        tolerated = secure_tolerance(config, len(parties))
        plans = {name: with_distributed_noise(plan, len(parties), tolerated) for name, plan in plans.items()}
    return PrivacyRun(budget, plans)


def secure_tolerance(config: FedtabConfig, parties: int) -> int:
    """T: the parties a secure sum may lose (or that may collude) while its noise still carries σ."""
    return default_tolerance(parties) if config.secure_dropouts is None else int(config.secure_dropouts)
