"""What a private local update is handed: the planned noise and sampling, and the party's accountant.

The server plans the noise multiplier and sample rate up front (``fedtab.privacy.planning.plan_noise``)
so that every round of every party stays within its budget; the trainer
(``fedtab.models.trainer``) only applies them, and a plugin never sees them. The
accountant travels as its saved state so that one ``PartyAccountant`` per party spans all rounds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from fedtab.errors import ConfigError


@dataclass(frozen=True)
class TrainingPrivacy:
    """Record-level DP-SGD settings for one party's local update.

    Parameters
    ----------
    noise_multiplier:
        Gradient noise std over ``max_grad_norm``; the plan's ``noise_multiplier``.
    sample_rate:
        Poisson rate at which each real row joins a batch; the plan's ``sample_rate``
        (``batch_size / party_rows``), so it must be ``k / rows`` for this party's rows.
    max_grad_norm:
        Bound on each sample's gradient norm (the config's ``max_grad_norm``).
    accountant_state:
        ``PartyAccountant.state_dict()`` of this party, carrying every earlier release (encoder
        statistics, earlier rounds); ``None`` starts a fresh default accountant.
    steps:
        DP-SGD steps this round; ``None`` means ``round(epochs / sample_rate)``. Pass
        ``round_steps(plan.steps, rounds, round_index)`` to spend exactly the planned total.
    """

    noise_multiplier: float
    sample_rate: float
    max_grad_norm: float = 1.0
    accountant_state: dict[str, Any] | None = None
    steps: int | None = None
    noise_seed: int | None = None

    def secret_seed(self, public_seed: int) -> int:
        """The party's own seed for gradient noise and Poisson sampling.

        A noise stream the server could replay (derived from the run's public seed) would let it
        subtract the noise; parties pass a secret kept on their side. Without one (unit tests, a
        single-machine study) the public seed keeps runs reproducible.
        """
        return public_seed if self.noise_seed is None else self.noise_seed

    def __post_init__(self) -> None:
        problems = []
        if not (_is_number(self.noise_multiplier) and self.noise_multiplier > 0):
            problems.append(f"'noise_multiplier' must be a finite number > 0; got {self.noise_multiplier!r}")
        if not (_is_number(self.sample_rate) and 0 < self.sample_rate <= 1):
            problems.append(f"'sample_rate' must be a number in (0, 1]; got {self.sample_rate!r}")
        if not (_is_number(self.max_grad_norm) and self.max_grad_norm > 0):
            problems.append(f"'max_grad_norm' must be a finite number > 0; got {self.max_grad_norm!r}")
        if self.accountant_state is not None and not isinstance(self.accountant_state, Mapping):
            problems.append(f"'accountant_state' must be None or PartyAccountant.state_dict(); got "
                            f"{type(self.accountant_state).__name__}")
        if self.steps is not None and not (_is_int(self.steps) and self.steps >= 1):
            problems.append(f"'steps' must be None or an int >= 1; got {self.steps!r}")
        if problems:
            raise ConfigError("Invalid training privacy settings:\n"
                              + "\n".join(f"  - {p}. Take it from the party's PrivacyPlan." for p in problems))

    def steps_for(self, epochs: float) -> int:
        """DP-SGD steps of this round: the given count, else ``epochs`` passes of Poisson batches."""
        return self.steps if self.steps is not None else max(1, round(epochs / self.sample_rate))

    def expected_batch(self, num_rows: int, party: str) -> int:
        """The expected batch ``sample_rate × rows``; refused unless it is a whole number of rows.

        Opacus's sampler works from an integer expected batch; a rate that is not ``k / rows``
        would be recorded as a different rate than the plan's and break its ε figure.
        """
        batch = round(self.sample_rate * num_rows)
        if batch < 1 or not math.isclose(batch / num_rows, self.sample_rate, rel_tol=1e-9):
            raise ConfigError(
                f"Party {party!r} holds {num_rows} rows, so its sample rate must be k / {num_rows} for a whole "
                f"expected batch k >= 1; got sample_rate {self.sample_rate!r}. Plan the noise with "
                f"party_rows={num_rows} (plan_noise) and pass the plan's sample_rate."
            )
        return batch


def round_steps(total_steps: int, rounds: int, round_index: int) -> int:
    """Round ``round_index``'s share of a plan's ``total_steps``: spread evenly, the remainder first.

    Summed over the rounds it is exactly ``total_steps``, so the run spends what was planned.
    """
    if not (_is_int(total_steps) and _is_int(rounds) and _is_int(round_index)
            and rounds >= 1 and total_steps >= rounds and 0 <= round_index < rounds):
        raise ConfigError(
            f"Cannot split {total_steps!r} planned DP-SGD steps over {rounds!r} rounds for round {round_index!r}: "
            "expected ints with total_steps >= rounds >= 1 and 0 <= round_index < rounds. "
            "Plan more epochs per round or fewer rounds."
        )
    base, extra = divmod(total_steps, rounds)
    return base + (1 if round_index < extra else 0)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(float(value))
