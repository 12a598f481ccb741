"""One party's local round for any plugin: weights in, seeded training, weights out; DP lives here.

Under record-level DP the trainer takes the plugin's ``private_modules`` together into one Opacus
module (ghost clipping, ``fedtab.privacy.dpsgd``), Poisson-samples the real rows at the planned rate,
hands the plugin only each batch's rows (``private_loss``) and charges every step to the party's one
accountant. ``public_step`` sees the private modules only as frozen views and never sees a row.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from fedtab.errors import ConfigError
from fedtab.models import torch_state
from fedtab.models.base import HorizontalModel, LocalUpdate, Modules, Optimizers, Weights, module_weights, on_device
from fedtab.models.privacy import TrainingPrivacy
from fedtab.rng import isolated_torch_seed, numpy_rng

if TYPE_CHECKING:
    from fedtab.privacy.accountant import PartyAccountant

KEPT = "kept."
"""Prefix, in the party's optimizer state, of its own copy of the model's local modules (never sent)."""


def local_update(model: HorizontalModel, weights: Weights, data: np.ndarray, *, epochs: float, batch_size: int,
                 round_index: int, party: str, optimizer_state: Weights | None,
                 privacy: TrainingPrivacy | None) -> LocalUpdate:
    """The plugin's plain path, or DP-SGD on its private modules; metrics only from the plain path."""
    _check_privacy(model, privacy, party, round_index)
    rng = numpy_rng(model.seed, "train", party, round_index)
    accountant_state = None
    local = model.local_modules()
    with isolated_torch_seed(model.seed, "train", party, round_index), on_device(model.device):
        modules = model.load_modules({**weights, **kept_weights(optimizer_state or {}, local)})
        optimizers = model.make_optimizers(modules)
        for name, optimizer in optimizers.items():
            torch_state.load_optimizer_state(optimizer, optimizer_state or {}, name)
        if privacy is None:
            metrics = model.non_private_update(modules, optimizers, data, epochs=epochs, batch_size=batch_size, rng=rng)
        else:
            accountant_state = _private_round(model, modules, optimizers, data, epochs=epochs, round_index=round_index,
                                              party=party, privacy=privacy, rng=rng)
            metrics = {}
    state = {k: v for name, opt in optimizers.items() for k, v in torch_state.optimizer_state(opt, name).items()}
    trained = module_weights(modules)
    own = {k: v for k, v in trained.items() if k.split(".", 1)[0] in local}
    state.update({KEPT + k: v for k, v in own.items()})
    sent = {**trained, **{k: weights[k] for k in own}}  # the global weights back for what stays on the party
    return LocalUpdate(sent, num_examples=len(data), metrics=metrics, optimizer_state=state,
                       accountant_state=accountant_state)


def kept_weights(state: Weights, local: tuple[str, ...]) -> Weights:
    """The party's own weights of its ``local`` modules, from the state its last round left (none in round one)."""
    return {k[len(KEPT):]: v for k, v in state.items() if k.startswith(KEPT) and k[len(KEPT):].split(".", 1)[0] in local}


def check_modules(model: HorizontalModel, modules: Modules, *, party: str = "every party") -> None:
    """The declared private modules exist; for a private build, Opacus can train them and one optimizer holds them."""
    for kind, declared in (("private", model.private_modules), ("local", model.local_modules())):
        missing = sorted(set(declared) - set(modules))
        if missing:
            raise ConfigError(f"Model '{model.name}' declares {kind} modules {missing} that build_modules() does not "
                              f"build (it builds {sorted(modules)}). Fix the plugin's {kind}_modules.")
    if not model.private:
        return
    from fedtab.privacy.dpsgd import validate_module

    private = _private_part(model, modules)
    validate_module(private, party=party)
    _private_optimizer(model, model.make_optimizers(modules), private, party)


def _private_round(model: HorizontalModel, modules: Modules, optimizers: Optimizers, data: np.ndarray, *,
                   epochs: float, round_index: int, party: str, privacy: TrainingPrivacy,
                   rng: np.random.Generator) -> dict[str, Any]:
    """``privacy.steps_for(epochs)`` DP-SGD steps, public steps between; returns the accountant with them charged."""
    from fedtab.privacy.dpsgd import PrivateTrainer

    steps = privacy.steps_for(epochs)
    accountant = party_accountant(privacy.accountant_state, party)
    real = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32)).to(model.device)
    private = _private_part(model, modules)
    optimizer = _private_optimizer(model, optimizers, private, party)
    public_view = {**modules, **{name: FrozenView(modules[name]) for name in model.private_modules}}
    public_optimizers = {name: opt for name, opt in optimizers.items() if opt is not optimizer}
    batch = privacy.expected_batch(len(real), party)
    noise_rng = numpy_rng(privacy.secret_seed(model.seed), "dp-sgd", party, round_index)
    every = model.public_every()
    with PrivateTrainer(module=private, optimizer=optimizer, num_rows=len(real), batch_size=batch,
                        noise_multiplier=float(privacy.noise_multiplier), max_grad_norm=float(privacy.max_grad_norm),
                        accountant=accountant, rng=noise_rng, grad_sample_mode=model.grad_sample_mode) as dp:
        for step in range(steps):
            rows = torch.from_numpy(dp.sample_rows())
            dp.step(model.private_loss(modules, real[rows], rng))
            if (step + 1) % every == 0 or step == steps - 1:
                model.public_step(public_view, public_optimizers, batch_size=batch, rng=rng)
    return accountant.state_dict()


class FrozenView(nn.Module):
    """A hook-free twin of a private module that reads the live module's weights, detached.

    Gradients flow through it to its inputs (the generator's fakes) but never into the private
    weights, and it never reaches Opacus's hooks; the twin is copied before Opacus wraps the module.
    """

    def __init__(self, live: nn.Module) -> None:
        super().__init__()
        self.twin = copy.deepcopy(live)
        self._live = (live,)  # a tuple, so the live module is not registered as a child

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        live = self._live[0]
        state = {**{n: p.detach() for n, p in live.named_parameters()}, **dict(live.named_buffers())}
        return torch.func.functional_call(self.twin, state, args, kwargs)


def party_accountant(state: Mapping[str, Any] | None, party: str) -> PartyAccountant:
    """The party's one accountant, restored from the state the last round (or the encoders) left."""
    from fedtab.privacy.accountant import PartyAccountant

    if state is None:
        return PartyAccountant(party)
    accountant = PartyAccountant.from_state_dict(state)
    if accountant.party != party:
        raise ConfigError(
            f"Party {party!r} was handed the privacy accountant of party {accountant.party!r}; charging it would "
            "misreport both parties' ε. Pass each party the accountant_state its own last update returned."
        )
    return accountant


def _private_part(model: HorizontalModel, modules: Modules) -> nn.ModuleDict:
    """The private modules as one module, so one row's gradient is clipped across all of them."""
    return nn.ModuleDict({name: modules[name] for name in model.private_modules})


def _private_optimizer(model: HorizontalModel, optimizers: Optimizers, private: nn.Module,
                       party: str) -> torch.optim.Optimizer:
    own = {id(p) for p in private.parameters()}
    holding = [(name, opt) for name, opt in optimizers.items()
               if any(id(p) in own for g in opt.param_groups for p in g["params"])]
    held = {id(p) for _, opt in holding for g in opt.param_groups for p in g["params"]}
    if len(holding) != 1 or held != own:
        raise ConfigError(
            f"Model '{model.name}' must give DP-SGD one optimizer over exactly its private modules "
            f"{list(model.private_modules)} for party {party!r}; optimizers {[n for n, _ in holding]} hold "
            f"{len(held & own)} of their {len(own)} parameters and {len(held - own)} others. Fix make_optimizers()."
        )
    return holding[0][1]


def _check_privacy(model: HorizontalModel, privacy: TrainingPrivacy | None, party: str, round_index: int) -> None:
    if model.private and privacy is None:
        raise ConfigError(
            f"Model '{model.name}' was built with private=True, but the local update of party {party!r} in "
            f"round {round_index} got no TrainingPrivacy. Pass the planned noise multiplier and sample rate, "
            "or build the model with private=False."
        )
    if privacy is not None and not model.private:
        raise ConfigError(
            f"Party {party!r} got DP-SGD settings in round {round_index}, but model '{model.name}' was built with "
            "private=False, whose networks may not suit DP-SGD (CTGAN's WGAN-GP critic cannot). Build the model "
            "with private=config.private on every party when the run has a record-level ε."
        )
    if privacy is not None and not model.private_modules:
        raise ConfigError(f"Model '{model.name}' declares no private_modules, so it cannot train under DP. "
                          "Declare the modules that read real rows.")
