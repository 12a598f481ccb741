"""One validated, frozen configuration shared by the SDK, the CLI, the app and the Flower apps."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from fedtab.connectors.public_domain import domain_problems
from fedtab.errors import ConfigError

AGGREGATIONS = ("fedavg", "similarity", "similarity-softmax")
ACCOUNTANTS = ("prv", "rdp")


@dataclass(frozen=True)
class FedtabConfig:
    """Every knob of a run, checked once here.

    Parameters mirror the CLI flags; ``model_options`` holds the chosen model's own settings
    (its defaults live with the model plugin).
    """

    model: str = "ctgan"
    rounds: int = 30
    local_epochs: float = 1.0
    batch_size: int = 500
    seed: int = 0
    rows: int | None = None
    aggregation: str = "fedavg"
    model_options: Mapping[str, Any] = field(default_factory=dict)
    max_categories: int = 1000
    min_category_count: int = 1
    bgm_components: int = 10
    bgm_sample_cap: int = 20_000
    bgm_max_rounds: int = 20
    epsilon: float | None = None
    delta: float | None = None
    encoder_share: float = 0.1
    accountant: str = "prv"
    max_grad_norm: float = 1.0
    holdout_share: float = 0.0
    round_timeout: float = 600.0
    num_cpus_per_party: float = 1.0
    public_domain: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Bounds and categories known without the data (TOML ``[public.<column>]``); DP spends nothing on them."""
    checkpoint: str | None = None

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ConfigError("Invalid fedtab configuration:\n" + "\n".join(f"  - {p}" for p in problems))
        object.__setattr__(self, "model_options", dict(self.model_options))
        object.__setattr__(self, "public_domain", {str(k): dict(v) for k, v in self.public_domain.items()})

    def _problems(self) -> list[str]:
        out: list[str] = []

        def need(ok: bool, name: str, rule: str) -> None:
            if not ok:
                out.append(f"'{name}' must be {rule}; got {getattr(self, name)!r}. Fix it in the config or flag.")

        need(isinstance(self.model, str) and bool(self.model), "model", "a model name such as 'ctgan'")
        need(_is_int(self.rounds) and self.rounds >= 1, "rounds", "an int >= 1")
        need(_is_number(self.local_epochs) and self.local_epochs > 0, "local_epochs", "a number > 0")
        need(_is_int(self.batch_size) and self.batch_size >= 2, "batch_size", "an int >= 2")
        need(_is_int(self.seed) and self.seed >= 0, "seed", "an int >= 0")
        need(self.rows is None or (_is_int(self.rows) and self.rows >= 1), "rows", "None or an int >= 1")
        need(self.aggregation in AGGREGATIONS, "aggregation", f"one of {AGGREGATIONS}")
        need(isinstance(self.model_options, Mapping), "model_options", "a table of model settings")
        need(_is_int(self.max_categories) and self.max_categories >= 2, "max_categories", "an int >= 2")
        need(_is_int(self.min_category_count) and self.min_category_count >= 1, "min_category_count", "an int >= 1")
        need(_is_int(self.bgm_components) and 1 <= self.bgm_components <= 50, "bgm_components", "an int in [1, 50]")
        need(_is_int(self.bgm_sample_cap) and self.bgm_sample_cap >= 100, "bgm_sample_cap", "an int >= 100")
        need(_is_int(self.bgm_max_rounds) and self.bgm_max_rounds >= 1, "bgm_max_rounds", "an int >= 1")
        need(self.epsilon is None or (_is_number(self.epsilon) and self.epsilon > 0), "epsilon", "None or a number > 0")
        need(self.delta is None or (_is_number(self.delta) and 0 < self.delta < 1), "delta", "None or a number in (0, 1)")
        need(_is_number(self.encoder_share) and 0 < self.encoder_share < 1, "encoder_share", "a number in (0, 1)")
        need(self.accountant in ACCOUNTANTS, "accountant", f"one of {ACCOUNTANTS}")
        need(_is_number(self.max_grad_norm) and self.max_grad_norm > 0, "max_grad_norm", "a number > 0")
        need(_is_number(self.holdout_share) and 0 <= self.holdout_share <= 0.5, "holdout_share", "a number in [0, 0.5]")
        need(_is_number(self.round_timeout) and self.round_timeout > 0, "round_timeout", "a number of seconds > 0")
        need(_is_number(self.num_cpus_per_party) and self.num_cpus_per_party > 0, "num_cpus_per_party", "a number > 0")
        out += domain_problems(self.public_domain)
        need(self.checkpoint is None or (isinstance(self.checkpoint, str) and bool(self.checkpoint.strip())),
             "checkpoint", "None or a file path to write the run's checkpoint to")
        return out

    @property
    def private(self) -> bool:
        return self.epsilon is not None

    def replace(self, **changes: Any) -> FedtabConfig:
        """A copy with some values changed; ``None`` values are ignored so CLI flags left unset keep the file's."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FedtabConfig:
        known = {f.name for f in fields(cls)}
        flat = _flatten_sections(data)
        unknown = sorted(set(flat) - known)
        if unknown:
            raise ConfigError(
                f"Unknown configuration keys {unknown}; expected some of {sorted(known)}. "
                "Check the spelling (use snake_case)."
            )
        return cls(**flat)

    @classmethod
    def from_toml(cls, path: str | Path) -> FedtabConfig:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"Config file '{path}' does not exist. Pass an existing fedtab.toml.") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Config file '{path}' is not valid TOML: {exc}. Fix the file.") from exc
        return cls.from_dict(data)


def _flatten_sections(data: Mapping[str, Any]) -> dict[str, Any]:
    """Accept ``[run]``/``[privacy]``/``[encoders]`` sections and ``[model.options]`` as well as flat keys."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        key = key.replace("-", "_")
        if key == "model" and isinstance(value, Mapping):
            model_table = dict(value)
            if "name" in model_table:
                flat["model"] = model_table.pop("name")
            flat["model_options"] = model_table.pop("options", model_table)
        elif key == "public":
            flat["public_domain"] = value
        elif key in {"run", "privacy", "encoders", "federation"} and isinstance(value, Mapping):
            flat.update({k.replace("-", "_"): v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
