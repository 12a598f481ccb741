"""The contract every horizontal model plugin fulfils; the trainer owns rounds, plugins own steps."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from fedtab.models.privacy import TrainingPrivacy
from fedtab.transformers import TransformPlan

Weights = dict[str, np.ndarray]


@dataclass(frozen=True)
class LocalUpdate:
    """What one party's local training returns: new weights, how many rows it saw, and metrics.

    ``optimizer_state`` stays on the party (it never travels); the trainer keeps it for the next round.
    ``accountant_state`` is the party's ``PartyAccountant.state_dict()`` with this round's DP-SGD
    steps recorded (``None`` when the update was not private); hand it to the next round.
    """

    weights: Weights
    num_examples: int
    metrics: dict[str, float] = field(default_factory=dict)
    optimizer_state: Weights = field(default_factory=dict)
    accountant_state: dict[str, Any] | None = None


class HorizontalModel(ABC):
    """A synthesizer that trains on encoded rows of one party at a time and averages across parties.

    ``private_modules`` names the modules that read real rows: only those get DP-SGD.
    """

    name: ClassVar[str]
    private_modules: ClassVar[tuple[str, ...]] = ()

    def __init__(self, plan: TransformPlan, options: Mapping[str, Any] | None = None, *, seed: int = 0) -> None:
        self.plan = plan
        self.options = self.resolve_options(options or {})
        self.seed = seed

    @classmethod
    @abstractmethod
    def default_options(cls) -> dict[str, Any]:
        """The model's own settings and their defaults."""

    @classmethod
    def resolve_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        from fedtab.errors import ConfigError

        defaults = cls.default_options()
        unknown = sorted(set(options) - set(defaults))
        if unknown:
            raise ConfigError(
                f"Model '{cls.name}' has no options {unknown}; it knows {sorted(defaults)}. "
                "Fix [model.options] in the config."
            )
        return {**defaults, **dict(options)}

    @abstractmethod
    def init_weights(self) -> Weights:
        """Global weights before round one, the same for every party given the seed."""

    @abstractmethod
    def local_update(
        self,
        weights: Weights,
        data: np.ndarray,
        *,
        epochs: float,
        batch_size: int,
        round_index: int,
        party: str,
        optimizer_state: Weights | None = None,
        privacy: TrainingPrivacy | None = None,
    ) -> LocalUpdate:
        """Train from ``weights`` on one party's encoded rows and return its update.

        With ``privacy``, the modules in ``private_modules`` train with DP-SGD at the given noise
        and sample rate, and the update returns the accountant state with the steps charged.
        """

    @abstractmethod
    def sample(self, weights: Weights, num_rows: int, *, seed: int) -> np.ndarray:
        """Encoded synthetic rows (``plan.decode`` turns them into a table)."""
