"""One explicit registry from model names to plugin classes."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from fedtab.errors import ConfigError
from fedtab.models.base import HorizontalModel
from fedtab.transformers import TransformPlan

# name -> module that registers it; imported lazily so a broken optional model fails only when asked.
_PLUGIN_MODULES: dict[str, str] = {"ctgan": "fedtab.models.ctgan"}
_REGISTRY: dict[str, type[HorizontalModel]] = {}


def register(name: str) -> Callable[[type[HorizontalModel]], type[HorizontalModel]]:
    def decorate(cls: type[HorizontalModel]) -> type[HorizontalModel]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def known_models() -> list[str]:
    return sorted(set(_PLUGIN_MODULES) | set(_REGISTRY))


def get_model_class(name: str) -> type[HorizontalModel]:
    if name not in _REGISTRY:
        if name not in _PLUGIN_MODULES:
            raise ConfigError(f"Unknown model '{name}'; known models are {known_models()}. Pick one of them.")
        importlib.import_module(_PLUGIN_MODULES[name])
    return _REGISTRY[name]


def create_model(name: str, plan: TransformPlan, options: Mapping[str, Any] | None = None, *, seed: int = 0) -> HorizontalModel:
    return get_model_class(name)(plan, options, seed=seed)
