"""One explicit registry from model names to plugin classes."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from fedtab.errors import ConfigError
from fedtab.models.base import HorizontalModel, resolve_device
from fedtab.schema import ColumnKind, TableSchema
from fedtab.transformers import TransformPlan
from fedtab.transformers.assemble import PlanInputs, build_plan
from fedtab.transformers.plan import NUMERIC_KINDS
from fedtab.transformers.protocol import NUM_COUNT, NUM_MISSING
from fedtab.transformers.vocabulary import Vocabulary

# name -> module that registers it; imported lazily so a broken optional model fails only when asked.
_PLUGIN_MODULES: dict[str, str] = {"ctgan": "fedtab.models.ctgan", "tvae": "fedtab.models.tvae",
                                   "argn": "fedtab.models.argn", "fedtabdiff": "fedtab.models.diffusion"}
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


def create_model(name: str, plan: TransformPlan, options: Mapping[str, Any] | None = None, *, seed: int = 0,
                 private: bool = False, device: str = "cpu") -> HorizontalModel:
    model = get_model_class(name)(plan, options, seed=seed, private=private)
    model.device = resolve_device(device)
    return model


def resolved_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options a run saves and every party builds with: the user's over the model's defaults."""
    return get_model_class(name).resolve_options(options)


def check_model(name: str, options: Mapping[str, Any], schema: TableSchema, *, seed: int, private: bool) -> None:
    """Build the model on a provisional plan and check it (Opacus's validator for a private build).

    Runs on the server before the first statistics request, so an unknown model, a bad option or
    a module DP-SGD cannot train fails before anything leaves a party. The real plan needs the
    encoders, so the check builds against ``provisional_plan(schema)``: the same columns and kinds
    with placeholder widths; the layer types Opacus checks do not depend on the widths.
    """
    create_model(name, provisional_plan(schema), options, seed=seed, private=private).init_weights()


def provisional_plan(schema: TableSchema) -> TransformPlan:
    """The schema's columns with one mixture mode per number and two categories per discrete column."""
    numeric = [c for c in schema if c.kind in NUMERIC_KINDS]
    zeros = np.zeros(len(numeric))
    discrete = [c for c in schema if c.kind not in NUMERIC_KINDS and c.kind is not ColumnKind.IDENTIFIER]
    vocabularies = {c.name: Vocabulary(("a", "b"), (1.0, 1.0), None) for c in discrete}
    return build_plan(PlanInputs(schema, {NUM_COUNT: zeros, NUM_MISSING: zeros}, zeros, zeros, zeros,
                                 np.zeros(0, dtype=np.int64), None, None, vocabularies))
