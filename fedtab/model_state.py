"""A trained synthesizer as one value and one file: weights, plan, config, parties, history, privacy ledger.

The same file is a run's checkpoint: it also records how many rounds are done, the aggregation
weights and, under DP, every party's accountant and noise plan, so a run can resume from it
without refitting (and recharging) the encoders.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedtab.config import FedtabConfig
from fedtab.errors import ConfigError
from fedtab.transformers import TransformPlan

FORMAT = "fedtab-model"
FORMAT_VERSION = 3
"""2 added rounds_done, party_weights, privacy and resumed_at; version-1 files still load (as finished runs).
3: whether the model was built private follows from the config's epsilon; files before it carried a
``private`` model option, which loading drops."""


@dataclass(frozen=True)
class ModelState:
    """Everything a run produced, or has produced so far when it is a checkpoint.

    ``rounds_done`` is how many training rounds the weights hold (``None``: all of
    ``config.rounds``). ``party_weights`` are the aggregation weights by party; ``privacy`` is
    ``PrivacyRun.to_dict()`` (budget, plans, accountants) under DP; ``resumed_at`` lists the rounds
    the run was resumed at.
    """

    plan: TransformPlan
    weights: dict[str, np.ndarray] = field(repr=False)
    config: FedtabConfig
    parties: dict[str, int]
    history: list[dict[str, float]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    ledger: dict[str, Any] | None = None
    rounds_done: int | None = None
    party_weights: dict[str, float] | None = None
    privacy: dict[str, Any] | None = field(default=None, repr=False)
    resumed_at: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.rounds_done is None:
            object.__setattr__(self, "rounds_done", self.config.rounds)
        object.__setattr__(self, "resumed_at", tuple(int(r) for r in self.resumed_at))

    @property
    def finished(self) -> bool:
        """True when every configured round is done: a resume has nothing left to train."""
        return int(self.rounds_done or 0) >= self.config.rounds

    def save(self, path: str | Path) -> Path:
        """Write atomically: a temporary file beside ``path`` replaces it only once fully written."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(temporary, "xb") as stream:
                torch.save(self._blob(), stream)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        return path

    def _blob(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "plan": self.plan.to_dict(),
            "weights": {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.weights.items()},
            "config": self.config.to_dict(),
            "parties": dict(self.parties),
            "history": list(self.history),
            "warnings": list(self.warnings),
            "timings": dict(self.timings),
            "ledger": self.ledger,
            "rounds_done": self.rounds_done,
            "party_weights": None if self.party_weights is None else dict(self.party_weights),
            "privacy": self.privacy,
            "resumed_at": list(self.resumed_at),
        }

    @classmethod
    def load(cls, path: str | Path) -> ModelState:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"Model file '{path}' does not exist. Pass the path written by --save-model or save().")
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises several unrelated types for a foreign or broken file
            raise ConfigError(f"'{path}' is not a fedtab model file ({type(error).__name__}). Pass a file written by fedtab.") from error
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise ConfigError(f"'{path}' is not a fedtab model file. Pass a file written by fedtab's save().")
        version = blob.get("version")
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise ConfigError(f"'{path}' was written by a newer fedtab (format {version}); upgrade fedtab to load it.")
        try:
            return cls._from_blob(blob)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ConfigError(
                f"'{path}' is a damaged fedtab model file (format {version}; {type(error).__name__}: {error}). "
                "Load an intact file, or rerun to write it again."
            ) from error

    @classmethod
    def _from_blob(cls, blob: dict[str, Any]) -> ModelState:
        """Version-1 files have no checkpoint fields: they load as finished runs that cannot be resumed."""
        party_weights = blob.get("party_weights")
        return cls(
            plan=TransformPlan.from_dict(blob["plan"]),
            weights={k: v.numpy() for k, v in blob["weights"].items()},
            config=FedtabConfig.from_dict(_current_config(blob)),
            parties=dict(blob["parties"]),
            history=list(blob["history"]),
            warnings=list(blob["warnings"]),
            timings=dict(blob["timings"]),
            ledger=blob.get("ledger"),
            rounds_done=blob.get("rounds_done"),
            party_weights=None if party_weights is None else {str(k): float(v) for k, v in party_weights.items()},
            privacy=blob.get("privacy"),
            resumed_at=tuple(blob.get("resumed_at", ())),
        )


def _current_config(blob: dict[str, Any]) -> dict[str, Any]:
    """The saved config in today's terms: files before format 3 kept the server-injected ``private`` option."""
    config = dict(blob["config"])
    if int(blob.get("version") or 1) < 3:
        config["model_options"] = {k: v for k, v in dict(config.get("model_options") or {}).items() if k != "private"}
    return config
