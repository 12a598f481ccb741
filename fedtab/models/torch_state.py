"""Flat ``name -> ndarray`` views of torch modules and optimizers, the form that travels in records."""

from __future__ import annotations

import numpy as np
import torch

Weights = dict[str, np.ndarray]


def module_weights(module: torch.nn.Module, prefix: str) -> Weights:
    return {f"{prefix}.{k}": v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def load_module_weights(module: torch.nn.Module, weights: Weights, prefix: str) -> None:
    own = module.state_dict()
    state = {k: torch.as_tensor(weights[f"{prefix}.{k}"]).to(own[k].dtype) for k in own}
    module.load_state_dict(state)


def optimizer_state(optimizer: torch.optim.Optimizer, prefix: str) -> Weights:
    """Adam-style per-parameter buffers by parameter index; hyper-parameters are rebuilt from options."""
    out: Weights = {}
    for index, buffers in optimizer.state_dict()["state"].items():
        for name, value in buffers.items():
            out[f"{prefix}.{index}.{name}"] = torch.as_tensor(value).detach().cpu().numpy().copy()
    return out


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: Weights, prefix: str) -> None:
    own = optimizer.state_dict()
    buffers: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if not key.startswith(prefix + "."):
            continue
        index, name = key[len(prefix) + 1 :].split(".", 1)
        buffers.setdefault(int(index), {})[name] = torch.as_tensor(value)
    if buffers:
        optimizer.load_state_dict({"state": buffers, "param_groups": own["param_groups"]})
