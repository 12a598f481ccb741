"""DP-SGD on one torch module with Opacus: validated first, Poisson-sampled, every step charged.

Only the modules that see real rows go through here (CTGAN's discriminator, TVAE's encoder and
decoder, a diffusion denoiser). The caller computes a per-row loss from ``trainer.module``'s
outputs on the rows ``sample_rows()`` picked and hands it to ``step``; clipping, noise, the
optimizer step and the accountant's record all happen there, the same way in either
grad-sample mode.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
from opacus.grad_sample import GradSampleModule, GradSampleModuleFastGradientClipping
from opacus.optimizers import DPOptimizer, DPOptimizerFastGradientClipping
from opacus.utils.fast_gradient_clipping_utils import DPTensorFastGradientClipping
from opacus.validators import ModuleValidator
from torch import nn

from fedtab.errors import ConfigError
from fedtab.privacy.accountant import PartyAccountant

GRAD_SAMPLE_MODES = ("ghost", "hooks")
"""``ghost``: Opacus's ghost clipping (per-row gradient norms without per-row gradients; 1.2-2.5×
the non-DP time here); ``hooks``: materialised per-row gradients (up to 36× on a denoiser)."""

_FIXES = {
    "IllegalModuleConfigurationError": "put the module in training mode and turn off running statistics",
}
_REPLACE = ("replace it with a DP-safe equivalent (fix_module(module) makes Opacus's replacements: "
            "BatchNorm -> GroupNorm, LSTM -> DPLSTM, ...)")


def module_problems(module: nn.Module) -> list[str]:
    """Every reason Opacus cannot train ``module`` privately, each with its place and fix."""
    problems = []
    if not module.training:
        problems.append("the module is in eval mode; call module.train() before making it private")
    named = len(problems)
    for name, sub in module.named_modules():
        place = f"submodule {name or '<root>'!r} ({type(sub).__name__})"
        validator = ModuleValidator.VALIDATORS.get(type(sub))
        for error in validator(sub) if validator and _trainable(sub) else []:
            fix = _FIXES.get(type(error).__name__, _REPLACE)
            problems.append(f"{place}: {_first_sentence(str(error))}; fix: {fix}")
            named += 1
        if _trainable(sub) and not validator and any(True for _ in sub.buffers(recurse=False)):
            problems.append(f"{place}: a trainable layer with buffers (not privatised); fix: use a layer without "
                            "running statistics, e.g. LayerNorm or GroupNorm")
        own = [n for n, p in sub.named_parameters(recurse=False) if p.requires_grad]
        if own and any(_trainable(child) for child in sub.modules() if child is not sub):
            problems.append(
                f"{place}: holds parameters {own} next to child layers, so Opacus cannot give them exact per-row "
                "gradients; fix: hold each as the weight of its own layer (e.g. nn.Linear(1, d, bias=False)) and "
                "call that layer in forward"
            )
    unnamed = ModuleValidator.validate(module, strict=False)[named:]  # any check Opacus adds beyond its registry
    problems.extend(f"Opacus: {_first_sentence(str(error))}; fix: {_REPLACE}" for error in unnamed)
    return problems


def validate_module(module: nn.Module, *, party: str = "party") -> None:
    """Raise one ``ConfigError`` listing every problem, before any row is touched."""
    problems = module_problems(module)
    if problems:
        raise ConfigError(
            f"Module {type(module).__name__} of party {party!r} cannot be trained with DP-SGD:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


def fix_module(module: nn.Module) -> nn.Module:
    """A copy with Opacus's replacements made (BatchNorm → GroupNorm, LSTM → DPLSTM, ...)."""
    return ModuleValidator.fix(module)


class PoissonSampler:
    """Each row joins each batch independently with probability ``sample_rate``, as the accountant assumes."""

    def __init__(self, *, num_rows: int, sample_rate: float, rng: np.random.Generator) -> None:
        self.num_rows = num_rows
        self.sample_rate = sample_rate
        self.rng = rng

    def sample(self) -> np.ndarray:
        """Row indices of one batch, ascending; may be empty, and a step must still be taken."""
        return np.flatnonzero(self.rng.random(self.num_rows) < self.sample_rate)


class PrivateTrainer:
    """One party's DP-SGD on one module.

    Parameters
    ----------
    module, optimizer:
        The plain module and an optimizer over (some of) its parameters. The model trainer passes a
        ``ModuleDict`` of a plugin's private modules and calls them one by one: Opacus's hooks sit on
        the layers, so one row's gradient is clipped across all of them together.
    num_rows, batch_size:
        Rows are Poisson-sampled at rate ``batch_size / num_rows``; ``batch_size`` is the expected
        batch the noisy gradient sum is averaged over.
    noise_multiplier, max_grad_norm:
        Noise std over the clipping bound, and the bound on each row's gradient norm.
    accountant:
        The party's accountant; each step is recorded in it.
    rng:
        Seeded generator for the row sampling; the gradient noise gets a torch generator derived from it.
    grad_sample_mode:
        ``"ghost"`` (default) or ``"hooks"``. Ghost clipping cannot handle a layer applied twice in
        one forward pass (parameter tying: Opacus raises during forward); score such inputs in one
        call (concatenate them) or use ``"hooks"``.
    """

    def __init__(self, *, module: nn.Module, optimizer: torch.optim.Optimizer, num_rows: int, batch_size: int,
                 noise_multiplier: float, max_grad_norm: float, accountant: PartyAccountant,
                 rng: np.random.Generator, grad_sample_mode: str = "ghost", mechanism: str = "training") -> None:
        _check_args(num_rows, batch_size, noise_multiplier, max_grad_norm, grad_sample_mode, accountant.party)
        validate_module(module, party=accountant.party)
        _check_optimizer(module, optimizer, accountant.party)
        self.accountant = accountant
        self.mechanism = mechanism
        self.noise_multiplier = float(noise_multiplier)
        self.sample_rate = batch_size / num_rows
        self.grad_sample_mode = grad_sample_mode
        self.sampler = PoissonSampler(num_rows=num_rows, sample_rate=self.sample_rate, rng=rng)
        noise = torch.Generator()
        noise.manual_seed(int(rng.integers(2**63 - 1)))
        self.module, self.optimizer = _wrap(module, optimizer, grad_sample_mode, float(noise_multiplier),
                                            float(max_grad_norm), batch_size, noise)
        self.optimizer.attach_step_hook(self._record)
        self.steps = 0

    def sample_rows(self) -> np.ndarray:
        return self.sampler.sample()

    def step(self, per_sample_loss: torch.Tensor) -> float:
        """Clip each row's gradient, sum, add noise, average over the expected batch, step, and record.

        ``per_sample_loss`` holds one loss per sampled row (shape ``(batch,)``, possibly empty),
        computed from ``self.module``'s outputs. Returns the batch's mean loss (0 when empty).
        """
        if per_sample_loss.ndim != 1:
            raise ConfigError(
                f"DP-SGD of party {self.accountant.party!r} needs one loss per row (shape (batch,)); got shape "
                f"{tuple(per_sample_loss.shape)}. Compute the loss with reduction='none' and sum per row."
            )
        self.optimizer.zero_grad(set_to_none=True)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            if self.grad_sample_mode == "ghost":
                DPTensorFastGradientClipping(self.module, self.optimizer, per_sample_loss, "sum").backward()
            else:
                per_sample_loss.sum().backward()
        self.optimizer.step()
        return float(per_sample_loss.detach().mean()) if per_sample_loss.numel() else 0.0

    def close(self) -> nn.Module:
        """Remove Opacus's hooks and hand back the plain module (to save it, or to wrap it again next round)."""
        return self.module.to_standard_module()

    def __enter__(self) -> PrivateTrainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _record(self, optimizer: DPOptimizer) -> None:
        self.accountant.record_sgd(noise_multiplier=optimizer.noise_multiplier, sample_rate=self.sample_rate,
                                   steps=1, mechanism=self.mechanism)
        self.steps += 1


def _wrap(module: nn.Module, optimizer: torch.optim.Optimizer, mode: str, sigma: float, clip: float,
          batch_size: int, noise: torch.Generator) -> tuple[Any, DPOptimizer]:
    """Per-row gradients are summed (loss_reduction "sum"); the optimizer averages over the expected batch."""
    if mode == "ghost":
        wrapped: Any = GradSampleModuleFastGradientClipping(module, batch_first=True, loss_reduction="sum",
                                                            max_grad_norm=clip, use_ghost_clipping=True)
        optimizer_class: type[DPOptimizer] = DPOptimizerFastGradientClipping
    else:
        wrapped = GradSampleModule(module, batch_first=True, loss_reduction="sum")
        optimizer_class = DPOptimizer
    wrapped.forbid_grad_accumulation()
    private = optimizer_class(optimizer, noise_multiplier=sigma, max_grad_norm=clip,
                              expected_batch_size=batch_size, loss_reduction="mean", generator=noise)
    return wrapped, private


def _check_args(rows: Any, batch: Any, sigma: Any, clip: Any, mode: Any, party: str) -> None:
    problems = []
    if not (isinstance(rows, int) and rows >= 1):
        problems.append(f"'num_rows' must be an int >= 1; got {rows!r}")
    if not (isinstance(batch, int) and 1 <= batch <= (rows if isinstance(rows, int) else batch)):
        problems.append(f"'batch_size' must be an int in [1, num_rows]; got {batch!r}")
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        problems.append(f"'noise_multiplier' must be a finite number > 0; got {sigma!r} (take it from the plan)")
    if not (isinstance(clip, (int, float)) and math.isfinite(clip) and clip > 0):
        problems.append(f"'max_grad_norm' must be a finite number > 0; got {clip!r}")
    if mode not in GRAD_SAMPLE_MODES:
        problems.append(f"'grad_sample_mode' must be one of {GRAD_SAMPLE_MODES}; got {mode!r}")
    if problems:
        raise ConfigError(f"Cannot set up DP-SGD for party {party!r}:\n" + "\n".join(f"  - {p}" for p in problems))


def _check_optimizer(module: nn.Module, optimizer: torch.optim.Optimizer, party: str) -> None:
    own = {id(p) for p in module.parameters()}
    foreign = sum(1 for g in optimizer.param_groups for p in g["params"] if id(p) not in own)
    if foreign:
        raise ConfigError(
            f"The optimizer for party {party!r} updates {foreign} parameters that are not in the private module; "
            "their gradients would escape clipping and noise. Give DP-SGD an optimizer over this module only."
        )


def _trainable(module: nn.Module) -> bool:
    return any(p.requires_grad for p in module.parameters(recurse=False))


def _first_sentence(text: str) -> str:
    head = text.split(". ")[0].strip()
    return head.rstrip(".")
