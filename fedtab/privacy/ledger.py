"""The privacy ledger: what each party spent, per mechanism and in total, as a frozen value.

It travels in the saved model, the CLI summary and the evaluator's report, so it holds plain
numbers only (``to_dict`` is JSON-able) and is built once from the parties' accountants.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from fedtab.errors import ConfigError, PartyError
from fedtab.privacy.accountant import PartyAccountant
from fedtab.privacy.planning import ENCODER_DISTRIBUTED, PrivacyBudget

LEDGER_FORMAT = 1


@dataclass(frozen=True)
class MechanismSpend:
    """One mechanism's releases at one party and their ε taken alone."""

    mechanism: str
    epsilon: float
    steps: int
    noise_multipliers: tuple[float, ...]
    sample_rates: tuple[float, ...]
    threshold_delta: float = 0.0


@dataclass(frozen=True)
class PartySpend:
    """One party's spend: ε of everything composed, at δ, by the named accountant."""

    party: str
    epsilon: float
    delta: float
    accountant: str
    mechanisms: tuple[MechanismSpend, ...]
    budget_epsilon: float | None = None

    @classmethod
    def from_accountant(cls, accountant: PartyAccountant, *, delta: float,
                        budget_epsilon: float | None = None) -> PartySpend:
        mechanisms = tuple(
            MechanismSpend(
                mechanism=name,
                epsilon=accountant.epsilon(delta, mechanism=name),
                steps=accountant.steps(name),
                noise_multipliers=tuple(dict.fromkeys(r.noise_multiplier for r in accountant.releases(name))),
                sample_rates=tuple(dict.fromkeys(r.sample_rate for r in accountant.releases(name))),
                threshold_delta=accountant.threshold_delta(name),
            )
            for name in accountant.mechanisms
        )
        return cls(accountant.party, accountant.epsilon(delta), float(delta), accountant.accountant, mechanisms,
                   None if budget_epsilon is None else float(budget_epsilon))

    def mechanism(self, name: str) -> MechanismSpend:
        for spend in self.mechanisms:
            if spend.mechanism == name:
                return spend
        raise ConfigError(
            f"Party {self.party!r} made no release under mechanism {name!r}; it released under "
            f"{[m.mechanism for m in self.mechanisms]}. Ask for one of those."
        )


@dataclass(frozen=True)
class PartyLevelSpend:
    """Party-level DP (one whole party's model updates): what Flower's accountant composed over the rounds."""

    epsilon: float
    delta: float
    noise_multiplier: float
    clip_norm: float
    rounds: int
    parties: int
    accountant: str
    budget_epsilon: float | None = None

    def summary_line(self) -> str:
        of_budget = "" if self.budget_epsilon is None else f" of {self.budget_epsilon:.3g}"
        return (f"Party-level DP (one whole party's model updates): ε = {self.epsilon:.3g}{of_budget} at "
                f"δ = {self.delta:.3g} over {self.rounds} rounds (noise multiplier {self.noise_multiplier:.3g}, "
                f"update clip {self.clip_norm:.3g}, {self.parties} parties; {self.accountant})")


@dataclass(frozen=True)
class PrivacyLedger:
    """Every party's spend. ``unit`` says what is protected: one row ("record") or one party.

    ``resumed_at`` lists the rounds a run was resumed at from a checkpoint; the spend still counts
    every release since the start, because the accountants were restored, not restarted.
    ``party_level`` is the separate party-level guarantee on the model updates, when the run has one.
    ``missing`` lists, per party, the training rounds it was charged for without answering: it may
    have trained (and released) before it failed, so its spend counts them (charged but missing).
    """

    parties: tuple[PartySpend, ...]
    unit: str = "record"
    resumed_at: tuple[int, ...] = ()
    party_level: PartyLevelSpend | None = None
    missing: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    @classmethod
    def from_accountants(cls, accountants: Iterable[PartyAccountant], *, delta: float | Mapping[str, float],
                         budget: PrivacyBudget | Mapping[str, PrivacyBudget] | None = None) -> PrivacyLedger:
        """Read each accountant at its party's δ (one δ for all, or one per party)."""
        spends = []
        for accountant in accountants:
            party_delta = _per_party(delta, accountant.party, "delta")
            party_budget = _per_party(budget, accountant.party, "budget") if budget is not None else None
            spends.append(PartySpend.from_accountant(
                accountant, delta=party_delta,
                budget_epsilon=None if party_budget is None else party_budget.epsilon))
        return cls(tuple(spends))

    def party(self, name: str) -> PartySpend:
        for spend in self.parties:
            if spend.party == name:
                return spend
        raise PartyError(f"The privacy ledger holds no party {name!r}; it holds {[p.party for p in self.parties]}.")

    @property
    def max_epsilon(self) -> float:
        """The worst party's total ε: the guarantee the synthetic table carries for every row."""
        return max((p.epsilon for p in self.parties), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        out = {"format": LEDGER_FORMAT, "unit": self.unit, "parties": [asdict(p) for p in self.parties]}
        if self.resumed_at:
            out["resumed_at"] = list(self.resumed_at)
        if self.party_level is not None:
            out["party_level"] = asdict(self.party_level)
        if self.missing:
            out["missing"] = {party: list(rounds) for party, rounds in self.missing.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PrivacyLedger:
        if not isinstance(data, Mapping) or data.get("format") != LEDGER_FORMAT or "parties" not in data:
            raise ConfigError(
                f"A privacy ledger must be a mapping with format {LEDGER_FORMAT} and 'parties'; got "
                f"{_describe(data)}. Load what PrivacyLedger.to_dict() wrote."
            )
        try:
            parties = tuple(
                PartySpend(**{**p, "mechanisms": tuple(
                    MechanismSpend(**{**m, "noise_multipliers": tuple(m["noise_multipliers"]),
                                      "sample_rates": tuple(m["sample_rates"])})
                    for m in p["mechanisms"])})
                for p in data["parties"]
            )
        except (TypeError, KeyError) as exc:
            raise ConfigError(f"A privacy ledger entry is malformed ({exc}). The file is damaged; "
                              "re-save the model from a complete run.") from exc
        missing = {str(p): tuple(int(r) for r in rounds) for p, rounds in dict(data.get("missing") or {}).items()}
        return cls(parties, str(data.get("unit", "record")), tuple(int(r) for r in data.get("resumed_at", ())),
                   _party_level(data.get("party_level")), missing)

    def summary_lines(self) -> list[str]:
        """Lines the CLI prints: per party the total, then each mechanism alone; then the party-level line."""
        party_level = [] if self.party_level is None else [self.party_level.summary_line()]
        if not self.parties:
            if party_level:
                return ["Record-level differential privacy: off (no party released under DP; --epsilon adds it).",
                        *party_level]
            return ["Differential privacy: off (no party released under DP)."]
        accountants = sorted({p.accountant.upper() for p in self.parties})
        lines = [f"Differential privacy: {self.unit}-level, accountant {'/'.join(accountants)}; "
                 f"worst party ε = {self.max_epsilon:.3g}"]
        for party in self.parties:
            of_budget = "" if party.budget_epsilon is None else f" of {party.budget_epsilon:.3g}"
            lines.append(f"  {party.party}: ε = {party.epsilon:.3g}{of_budget} at δ = {party.delta:.3g}")
            lines.extend(f"    {_mechanism_line(m)}" for m in party.mechanisms)
        if any(len(p.mechanisms) > 1 for p in self.parties):
            lines.append("  (each mechanism's ε is its releases alone; composed they cost less than the sum)")
        if any(m.mechanism == ENCODER_DISTRIBUTED for p in self.parties for m in p.mechanisms):
            lines.append(f"  ({ENCODER_DISTRIBUTED}: secure aggregation; the server saw only sums of the encoder statistics, "
                         "each party adding a share of the noise so the sum carries it once)")
        for party, missed in sorted(self.missing.items()):
            lines.append(f"  {party}: charged for training round{'s' if len(missed) > 1 else ''} "
                         f"{', '.join(str(r) for r in missed)} it did not answer (it may have trained before failing)")
        if self.resumed_at:
            rounds = ", ".join(str(r) for r in self.resumed_at)
            lines.append(f"  (resumed from a checkpoint after round {rounds}; ε counts every release since the run began)")
        return lines + party_level


def _mechanism_line(spend: MechanismSpend) -> str:
    sigmas = ", ".join(f"{s:.3g}" for s in spend.noise_multipliers)
    full_data = all(q == 1.0 for q in spend.sample_rates)
    what = f"{spend.steps} releases" if full_data else (
        f"{spend.steps} steps at sample rate {', '.join(f'{q:.3g}' for q in spend.sample_rates)}")
    extra = f", threshold δ {spend.threshold_delta:.2g}" if spend.threshold_delta else ""
    return f"{spend.mechanism}: ε = {spend.epsilon:.3g} ({what}, noise multiplier {sigmas}{extra})"


def _per_party(value: Any, party: str, name: str) -> Any:
    if isinstance(value, Mapping):
        if party not in value:
            raise PartyError(f"No {name} given for party {party!r}; got {name}s for {sorted(value)}. "
                             f"Give one {name} for every party, or one for all.")
        return value[party]
    return value


def _describe(data: Any) -> str:
    if isinstance(data, Mapping):
        return f"keys {sorted(data)} with format {data.get('format')!r}"
    return type(data).__name__


def _party_level(data: Any) -> PartyLevelSpend | None:
    if data is None:
        return None
    try:
        return PartyLevelSpend(**data)
    except TypeError as exc:
        raise ConfigError(f"The ledger's party-level entry is malformed ({exc}). The file is damaged; "
                          "re-save the model from a complete run.") from exc

