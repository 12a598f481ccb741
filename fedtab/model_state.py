"""A trained synthesizer as one value and one file: weights, plan, config, parties, history, privacy ledger."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedtab.config import FedtabConfig
from fedtab.errors import ConfigError
from fedtab.transformers import TransformPlan

FORMAT = "fedtab-model"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelState:
    plan: TransformPlan
    weights: dict[str, np.ndarray] = field(repr=False)
    config: FedtabConfig
    parties: dict[str, int]
    history: list[dict[str, float]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    ledger: dict[str, Any] | None = None

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = {
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
        }
        torch.save(blob, path)
        return path

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
        if blob["version"] > FORMAT_VERSION:
            raise ConfigError(f"'{path}' was written by a newer fedtab (format {blob['version']}); upgrade fedtab to load it.")
        return cls(
            plan=TransformPlan.from_dict(blob["plan"]),
            weights={k: v.numpy() for k, v in blob["weights"].items()},
            config=FedtabConfig.from_dict(blob["config"]),
            parties=dict(blob["parties"]),
            history=list(blob["history"]),
            warnings=list(blob["warnings"]),
            timings=dict(blob["timings"]),
            ledger=blob.get("ledger"),
        )
