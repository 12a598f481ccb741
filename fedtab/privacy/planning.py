"""Turn a party's privacy budget into noise multipliers before anything is released.

The plan splits ε between the encoder statistics (``encoder_share`` of it, spread over the
Gaussian releases the encoders make) and DP-SGD, then picks the smallest DP-SGD noise for which
everything *composed* stays within ε. The figures come from the same accountant the run keeps,
and the plan is re-checked by recording it in a fresh ``PartyAccountant``; a budget no sane
noise can meet is refused up front, with what would fit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from fedtab.errors import ConfigError, PartyError, PrivacyBudgetError
from fedtab.privacy.accountant import (
    ACCOUNTANTS,
    DEFAULT_ACCOUNTANT,
    AccountantSettings,
    PartyAccountant,
    Release,
    accountant_settings,
    composed_epsilon,
    opacus_history,
)

ENCODER = "encoder"
ENCODER_DISTRIBUTED = "encoder-distributed"
"""Encoder releases whose noise the parties add in shares inside a secure sum (``fedtab.privacy.distributed``)."""
TRAINING = "training"

MAX_NOISE_MULTIPLIER = 50.0
"""Above this DP-SGD noise the gradient signal is gone: a plan that needs more is refused."""
MAX_ENCODER_NOISE_MULTIPLIER = 10_000.0
"""Encoder statistics are sums over a whole party and bear far more noise than a gradient step."""
MIN_NOISE_MULTIPLIER = 0.5
"""Smaller noise is never searched: ε is already in the tens there, and PRV slows to minutes."""
PARTITION_DELTA_SHARE = 0.1
"""Share of δ set aside for partition selection's thresholds when categories are selected."""
SAFETY = 1e-6
"""Plans aim this fraction under the budget so float noise in a different recording order cannot tip it over."""
REL_TOL = 0.01


@dataclass(frozen=True)
class PrivacyBudget:
    """What one party allows: (ε, δ) in total, and the share of ε the encoder statistics may use."""

    epsilon: float
    delta: float
    encoder_share: float = 0.3

    def __post_init__(self) -> None:
        problems = []
        if not (_is_number(self.epsilon) and 0 < self.epsilon < math.inf):
            problems.append(f"'epsilon' must be a number > 0; got {self.epsilon!r}")
        if not (_is_number(self.delta) and 0 < self.delta < 1):
            problems.append(f"'delta' must be a number in (0, 1), well below 1/rows; got {self.delta!r}")
        if not (_is_number(self.encoder_share) and 0 <= self.encoder_share < 1):
            problems.append(f"'encoder_share' must be a number in [0, 1); got {self.encoder_share!r}")
        if problems:
            raise ConfigError("Invalid privacy budget:\n" + "\n".join(f"  - {p}. Fix it in the config or flag."
                                                                      for p in problems))

    @property
    def encoder_epsilon(self) -> float:
        return self.epsilon * self.encoder_share


def default_delta(smallest_party_rows: int) -> float:
    """δ = min(1e-5, 0.1 / n): an order of magnitude below 1/n of the smallest party."""
    if not (isinstance(smallest_party_rows, int) and not isinstance(smallest_party_rows, bool)
            and smallest_party_rows >= 1):
        raise PartyError(
            f"The smallest party must hold at least one row to derive δ; got {smallest_party_rows!r} rows. "
            "Drop empty parties from the run."
        )
    return min(1e-5, 0.1 / smallest_party_rows)


@dataclass(frozen=True)
class PrivacyPlan:
    """Noise multipliers for one party, fixed before training, and what they will cost."""

    party: str
    budget: PrivacyBudget
    accountant: str
    eps_error: float
    party_rows: int
    batch_size: int
    epochs: float
    sample_rate: float
    steps: int
    noise_multiplier: float
    encoder_releases: int
    encoder_noise_multiplier: float | None
    partition_selections: int
    threshold_delta: float
    encoder_epsilon: float
    training_epsilon: float
    epsilon: float
    encoder_noise: str = "local"
    """"local": each party adds σ to every encoder release; "distributed": σ/√(P − T) inside a secure sum."""
    noise_parties: int = 0
    """P: the parties whose shares make up the noise (distributed noise only)."""
    noise_tolerance: int = 0
    """T: the parties that may drop out or collude while the sum still carries σ (distributed noise only)."""

    @property
    def encoder_mechanism(self) -> str:
        """The name the encoder releases are charged under: which mechanism the ledger shows."""
        return ENCODER_DISTRIBUTED if self.encoder_noise == "distributed" else ENCODER

    def new_accountant(self, party: str | None = None) -> PartyAccountant:
        """The accountant the run must keep: same method and error bound as the plan assumed."""
        return PartyAccountant.with_settings(party or self.party, self.settings)

    @property
    def settings(self) -> AccountantSettings:
        return AccountantSettings(self.accountant, self.eps_error)

    def planned_accountant(self, settings: AccountantSettings | None = None) -> PartyAccountant:
        """Every release the plan allows, recorded in an accountant (the plan's settings unless given)."""
        accountant = PartyAccountant.with_settings(self.party, settings or self.settings)
        _record(accountant, self.encoder_noise_multiplier, self.encoder_releases, self.partition_selections,
                self.threshold_delta, self.noise_multiplier, self.sample_rate, self.steps, self.encoder_mechanism)
        return accountant

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PrivacyPlan:
        return cls(**{**data, "budget": PrivacyBudget(**data["budget"])})


@dataclass(frozen=True)
class BudgetSuggestions:
    """What would fit when a plan is refused; ``None`` where no figure could be found."""

    max_epochs: float | None = None
    min_epsilon: float | None = None
    min_party_rows: int | None = None
    max_batch_size: int | None = None
    min_encoder_share: float | None = None


def plan_noise(*, budget: PrivacyBudget, party_rows: int, batch_size: int, epochs: float,
               encoder_releases: int, accountant: str = DEFAULT_ACCOUNTANT, partition_selections: int = 0,
               max_noise_multiplier: float = MAX_NOISE_MULTIPLIER, party: str = "party") -> PrivacyPlan:
    """Plan one party's noise so that every release composed stays within ``budget``.

    Parameters
    ----------
    budget:
        The party's (ε, δ) and encoder share.
    party_rows, batch_size:
        DP-SGD samples rows by Poisson sampling at rate ``batch_size / party_rows``.
    epochs:
        Total passes over the party's rows for the whole run (rounds × local epochs).
    encoder_releases:
        How many full-data Gaussian releases the encoders make (histograms, counts, sums).
    partition_selections:
        How many of those releases also select categories by threshold; they share
        ``PARTITION_DELTA_SHARE`` of δ, which the accountant then takes off δ.

    Raises
    ------
    PrivacyBudgetError
        When no noise multiplier up to ``max_noise_multiplier`` meets the budget; the message
        and ``error.suggestions`` say what would.
    """
    _check_args(budget, party_rows, batch_size, epochs, encoder_releases, partition_selections,
                accountant, max_noise_multiplier, party)
    run = _Run(budget, party_rows, batch_size, float(epochs), encoder_releases, partition_selections, accountant,
               party)
    setup = _setup(run)
    if setup.total(max_noise_multiplier) > setup.target:
        raise _refusal(run, setup, max_noise_multiplier)
    sigma = _solve_on_both(lambda s, on: setup.total(s, on=on), setup.comp, setup.target, max_noise_multiplier,
                           _rough_sigma(setup.target, setup.comp.delta, setup.sample_rate, setup.steps))
    return _verified(party=party, budget=budget, accountant=accountant, eps_error=setup.comp.eps_error,
                     party_rows=party_rows, batch_size=batch_size, epochs=float(epochs), sample_rate=setup.sample_rate,
                     steps=setup.steps, noise_multiplier=sigma, encoder_releases=encoder_releases,
                     encoder_noise_multiplier=setup.encoder_noise_multiplier,
                     partition_selections=partition_selections, threshold_delta=setup.threshold_delta)


@dataclass(frozen=True)
class _Run:
    """What a plan is asked for (the arguments of ``plan_noise``), varied when searching for what fits."""

    budget: PrivacyBudget
    rows: int
    batch: int
    epochs: float
    releases: int
    selections: int
    accountant: str
    party: str


@dataclass(frozen=True)
class _Composition:
    """How ε is computed in this plan: accountant, PRV error bound, and δ left for the Gaussians."""

    accountant: str
    eps_error: float
    delta: float

    def epsilon(self, releases: Sequence[Release]) -> float:
        return composed_epsilon(opacus_history(releases), delta=self.delta, accountant=self.accountant,
                                eps_error=self.eps_error)

    @property
    def rdp(self) -> _Composition:
        return _Composition("rdp", self.eps_error, self.delta)


@dataclass(frozen=True)
class _Setup:
    """A run's sampling, its δ split, and its encoder noise: all a DP-SGD noise candidate is judged against."""

    sample_rate: float
    steps: int
    threshold_delta: float
    comp: _Composition
    encoder: tuple[Release, ...]
    target: float

    @property
    def encoder_noise_multiplier(self) -> float | None:
        return self.encoder[0].noise_multiplier if self.encoder else None

    def total(self, sigma: float, *, on: _Composition | None = None, rate: float | None = None,
              steps: int | None = None) -> float:
        """ε of the encoder releases and DP-SGD at noise ``sigma`` composed."""
        training = Release(TRAINING, sigma, rate or self.sample_rate, steps or self.steps)
        return (on or self.comp).epsilon([*self.encoder, training])


def _setup(run: _Run) -> _Setup:
    """Sampling, δ split and encoder noise for ``run``; raises when the encoder share cannot be met."""
    budget = run.budget
    q = run.batch / run.rows
    threshold_delta = budget.delta * PARTITION_DELTA_SHARE / run.selections if run.selections else 0.0
    eps_error = accountant_settings(budget.epsilon, run.accountant).eps_error
    thresholds = PartyAccountant(run.party, accountant=run.accountant, eps_error=eps_error)
    _record(thresholds, None, run.releases, run.selections, threshold_delta, 1.0, q, 1)  # δ summed as a run sums it
    comp = _Composition(run.accountant, eps_error, budget.delta - thresholds.threshold_delta())
    encoder = (Release(ENCODER, _encoder_sigma(comp, budget, run.releases, run.party), 1.0, run.releases),) \
        if run.releases else ()
    return _Setup(q, math.ceil(run.epochs * run.rows / run.batch), threshold_delta, comp, encoder,
                  budget.epsilon * (1 - SAFETY))


def _encoder_sigma(comp: _Composition, budget: PrivacyBudget, releases: int, party: str) -> float:
    def eps(sigma: float, on: _Composition) -> float:
        return on.epsilon([Release(ENCODER, sigma, 1.0, releases)])

    target = budget.encoder_epsilon * (1 - SAFETY)
    if eps(MAX_ENCODER_NOISE_MULTIPLIER, comp) > target:
        needed = eps(MAX_ENCODER_NOISE_MULTIPLIER, comp) / budget.epsilon
        error = PrivacyBudgetError(
            f"Party {party!r} cannot release {releases} encoder statistics within its encoder share "
            f"ε = {budget.encoder_epsilon:.3g} ({budget.encoder_share:.0%} of ε = {budget.epsilon:.3g}, δ = "
            f"{budget.delta:.3g}): they would need a noise multiplier above {MAX_ENCODER_NOISE_MULTIPLIER:g}. "
            f"Raise encoder_share to at least {min(needed * 1.05, 0.99):.3g}, raise ε, or release fewer statistics."
        )
        error.suggestions = BudgetSuggestions(min_encoder_share=min(needed * 1.05, 0.99))
        raise error
    return _solve_on_both(eps, comp, target, MAX_ENCODER_NOISE_MULTIPLIER,
                          _rough_sigma(target, comp.delta, 1.0, releases))


def _solve_on_both(eps: Callable[[float, _Composition], float], comp: _Composition, target: float, cap: float,
                   guess: float) -> float:
    """Smallest σ meeting ``target``: RDP (fast) finds the neighbourhood, the plan's accountant finishes."""
    if comp.accountant != "rdp":
        guess = _smallest_noise(lambda s: eps(s, comp.rdp), target, guess=guess, cap=cap, step=1.5, rtol=0.05) or cap
    found = _smallest_noise(lambda s: eps(s, comp), target, guess=guess, cap=cap, step=1.15, rtol=REL_TOL)
    return cap if found is None else found  # callers have checked that the cap meets the target


def _rough_sigma(target: float, delta: float, sample_rate: float, steps: int) -> float:
    """A starting point only: the classical Gaussian mechanism bound with sensitivity q·√T."""
    return sample_rate * math.sqrt(steps) * math.sqrt(2 * math.log(1.25 / delta)) / target


def _smallest_noise(eps: Callable[[float], float], target: float, *, guess: float, cap: float, step: float,
                    rtol: float) -> float | None:
    """Smallest σ in [MIN_NOISE_MULTIPLIER, cap] with eps(σ) ≤ target, to ``rtol`` of target; ε falls as σ grows.

    Brackets from ``guess`` by factors of ``step`` (down) or 1.5 (up), then narrows by secant steps.
    """
    hi = min(max(guess, MIN_NOISE_MULTIPLIER), cap)
    e_hi = eps(hi)
    lo, e_lo = hi, e_hi
    while e_hi > target:
        if hi >= cap:
            return None
        lo, e_lo = hi, e_hi
        hi = min(hi * 1.5, cap)
        e_hi = eps(hi)
    while e_lo <= target:
        if lo <= MIN_NOISE_MULTIPLIER:
            return lo
        hi, e_hi = lo, e_lo
        lo = max(lo / step, MIN_NOISE_MULTIPLIER)
        e_lo = eps(lo)
    aim = target * (1 - rtol / 2)
    for _ in range(60):
        if e_hi >= target * (1 - rtol) or hi / lo - 1 < 1e-6:
            break
        mid = _interpolate(lo, e_lo, hi, e_hi, aim)
        e_mid = eps(mid)
        if e_mid <= target:
            hi, e_hi = mid, e_mid
        else:
            lo, e_lo = mid, e_mid
    return hi


def _interpolate(lo: float, e_lo: float, hi: float, e_hi: float, aim: float) -> float:
    """Secant step in log-log space, kept inside the bracket's middle 80 % so it always shrinks."""
    x_lo, x_hi = math.log(lo), math.log(hi)
    if e_hi > 0 and e_lo > e_hi:
        t = (math.log(e_lo) - math.log(aim)) / (math.log(e_lo) - math.log(e_hi))
    else:
        t = 0.5
    return math.exp(x_lo + min(max(t, 0.1), 0.9) * (x_hi - x_lo))


def _record(accountant: PartyAccountant, sigma_enc: float | None, releases: int, selections: int,
            threshold_delta: float, sigma: float, q: float, steps: int, mechanism: str = ENCODER) -> None:
    """Record a plan in the order a run makes it: encoder statistics, then training."""
    sigma_enc = sigma_enc or 1.0
    if releases > selections:
        accountant.record_gaussian(noise_multiplier=sigma_enc, mechanism=mechanism, releases=releases - selections)
    if selections:
        accountant.record_gaussian(noise_multiplier=sigma_enc, mechanism=mechanism, releases=selections,
                                   threshold_delta=threshold_delta)
    accountant.record_sgd(noise_multiplier=sigma, sample_rate=q, steps=steps, mechanism=TRAINING)


def _verified(**plan: Any) -> PrivacyPlan:
    """Record the plan in a fresh accountant; nudge the DP-SGD noise up until the composition fits."""
    budget: PrivacyBudget = plan["budget"]
    for _ in range(50):
        draft = PrivacyPlan(**plan, encoder_epsilon=0.0, training_epsilon=0.0, epsilon=0.0)
        accountant = draft.planned_accountant()
        total = accountant.epsilon(budget.delta)
        encoder = accountant.epsilon(budget.delta, mechanism=draft.encoder_mechanism)
        if total <= budget.epsilon and encoder <= budget.encoder_epsilon:
            return PrivacyPlan(**plan, encoder_epsilon=encoder, epsilon=total,
                               training_epsilon=accountant.epsilon(budget.delta, mechanism=TRAINING))
        plan["noise_multiplier"] *= 1.01
        if plan["encoder_noise_multiplier"] is not None and encoder > budget.encoder_epsilon:
            plan["encoder_noise_multiplier"] *= 1.01
    raise PrivacyBudgetError(
        f"Party {plan['party']!r}: the planned noise could not be confirmed within ε = {budget.epsilon:.3g}. "
        "This is a fedtab bug; report it with the budget and party size."
    )


def _refusal(run: _Run, setup: _Setup, cap: float) -> PrivacyBudgetError:
    """The refusal, with figures that would fit (searched with RDP, confirmed as ``plan_noise`` would compute)."""
    budget = run.budget
    suggestions = BudgetSuggestions(max_epochs=_max_epochs(run, setup, cap), min_epsilon=_min_epsilon(run, setup, cap),
                                    **_min_rows(run, setup, cap))
    fits = []
    if suggestions.max_epochs is not None:
        fits.append(f"at most {suggestions.max_epochs:.4g} epochs in all (rounds × local epochs)")
    if suggestions.min_epsilon is not None:
        fits.append(f"a budget of ε ≥ {suggestions.min_epsilon:.3g}")
    if suggestions.min_party_rows is not None:
        smaller = f" or a batch size of at most {suggestions.max_batch_size}" if suggestions.max_batch_size else ""
        fits.append(f"at least {suggestions.min_party_rows} rows in the party{smaller}")
    encoder_text = f" together with {run.releases} encoder releases" if run.releases else ""
    error = PrivacyBudgetError(
        f"Party {run.party!r} cannot keep within ε = {budget.epsilon:.3g} at δ = {budget.delta:.3g}: "
        f"{run.epochs:g} epochs of DP-SGD ({setup.steps} steps at sample rate {setup.sample_rate:.4g} = batch "
        f"{run.batch} / {run.rows} rows){encoder_text} compose to ε = {setup.total(cap):.3g} even at noise "
        f"multiplier {cap:g}, the most that still trains. "
        + ("Any one of these would fit: " + "; ".join(fits) + "." if fits else
           "Raise ε, train fewer epochs, or use larger parties.")
    )
    error.suggestions = suggestions
    return error


def _spent_at_cap(run: _Run, cap: float) -> float | None:
    """ε ``plan_noise`` would find for ``run`` at the largest noise; None when its encoder share cannot be met."""
    try:
        return _setup(run).total(cap)
    except PrivacyBudgetError:
        return None


def _fits_at_cap(run: _Run, cap: float) -> bool:
    spent = _spent_at_cap(run, cap)
    return spent is not None and spent <= run.budget.epsilon * (1 - SAFETY)


def _max_epochs(run: _Run, setup: _Setup, cap: float) -> float | None:
    lo, hi = 0, setup.steps
    while hi - lo > max(1, lo // 50):
        mid = (lo + hi) // 2
        fits = setup.total(cap, on=setup.comp.rdp, steps=mid) <= setup.target
        lo, hi = (mid, hi) if fits else (lo, mid)
    for _ in range(20):
        epochs = _round_down(lo * setup.sample_rate) if lo >= 1 else 0.0
        if epochs <= 0:
            return None
        if _fits_at_cap(replace(run, epochs=epochs), cap):
            return epochs
        lo = math.floor(lo * 0.95)
    return None


def _min_epsilon(run: _Run, setup: _Setup, cap: float) -> float | None:
    """Smallest round ε' that fits at the cap, with the encoder's share re-planned for ε'."""
    candidate = _round_up(setup.comp.epsilon([Release(TRAINING, cap, setup.sample_rate, setup.steps)]) * 1.02)
    for _ in range(10):
        spent = _spent_at_cap(replace(run, budget=replace(run.budget, epsilon=candidate)), cap)
        if spent is not None and spent <= candidate * (1 - SAFETY):
            return candidate
        candidate = _round_up(max(candidate, spent or 0.0) * 1.05)
    return None


def _min_rows(run: _Run, setup: _Setup, cap: float) -> dict[str, int | None]:
    """Largest sample rate that fits for the same epochs, as party rows or as batch size."""
    def fits(rate: float) -> bool:
        return setup.total(cap, on=setup.comp.rdp, rate=rate, steps=math.ceil(run.epochs / rate)) <= setup.target

    lo, hi = setup.sample_rate / 1000, setup.sample_rate
    if not fits(lo):
        return {"min_party_rows": None, "max_batch_size": None}
    while hi / lo > 1.02:
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    for _ in range(20):
        rows, batch = math.ceil(run.batch / lo), math.floor(lo * run.rows)
        if _fits_at_cap(replace(run, rows=rows), cap):
            fits_batch = batch >= 1 and _fits_at_cap(replace(run, batch=batch), cap)
            return {"min_party_rows": rows, "max_batch_size": batch if fits_batch else None}
        lo *= 0.95
    return {"min_party_rows": None, "max_batch_size": None}


def _check_args(budget: Any, rows: Any, batch: Any, epochs: Any, releases: Any, selections: Any,
                accountant: Any, cap: Any, party: str) -> None:
    problems = []
    if not isinstance(budget, PrivacyBudget):
        problems.append(f"'budget' must be a PrivacyBudget; got {type(budget).__name__}")
    if not (_is_int(rows) and rows >= 1):
        problems.append(f"'party_rows' must be an int >= 1; got {rows!r}")
    if not (_is_int(batch) and batch >= 1 and (not _is_int(rows) or batch <= rows)):
        problems.append(f"'batch_size' must be an int in [1, party rows = {rows!r}]; got {batch!r}")
    if not (_is_number(epochs) and 0 < epochs < math.inf):
        problems.append(f"'epochs' must be a number > 0; got {epochs!r}")
    if not (_is_int(releases) and releases >= 0):
        problems.append(f"'encoder_releases' must be an int >= 0; got {releases!r}")
    if not (_is_int(selections) and 0 <= selections <= (releases if _is_int(releases) else 0)):
        problems.append(f"'partition_selections' must be an int in [0, encoder_releases]; got {selections!r}")
    if accountant not in ACCOUNTANTS:
        problems.append(f"'accountant' must be one of {sorted(ACCOUNTANTS)}; got {accountant!r}")
    if not (_is_number(cap) and MIN_NOISE_MULTIPLIER < cap < math.inf):
        problems.append(f"'max_noise_multiplier' must be a number > {MIN_NOISE_MULTIPLIER}; got {cap!r}")
    if isinstance(budget, PrivacyBudget) and _is_int(releases) and releases > 0 and budget.encoder_share == 0:
        problems.append(f"'encoder_share' is 0 but {releases} encoder releases are planned; give them a share")
    if isinstance(budget, PrivacyBudget) and _is_int(rows) and rows >= 1 and budget.delta >= 1 / rows:
        problems.append(f"'delta' = {budget.delta:.3g} is not below 1/n = 1/{rows}; a δ that large allows "
                        f"publishing a row outright (default_delta({rows}) = {default_delta(rows):.3g})")
    if problems:
        raise ConfigError(f"Cannot plan the privacy noise of party {party!r}:\n"
                          + "\n".join(f"  - {p}. Fix it in the config or flag." for p in problems))


def _round_up(value: float) -> float:
    """Round up to two significant figures, so a suggested ε reads cleanly and still fits."""
    digits = 1 - math.floor(math.log10(value))
    return round(math.ceil(round(value * 10**digits, 9)) / 10**digits, max(digits, 0))


def _round_down(value: float) -> float:
    """Round down to three significant figures, so a suggested epoch count still fits."""
    digits = 2 - math.floor(math.log10(value))
    return round(math.floor(round(value * 10**digits, 9)) / 10**digits, max(digits, 0))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
