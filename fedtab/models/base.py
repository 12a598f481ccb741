"""The contract every horizontal model plugin fulfils: the plugin owns its networks and losses,
the trainer (``fedtab.models.trainer``) owns seeding, weights, optimizer state and all of DP."""

from __future__ import annotations

import contextlib
import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from fedtab.config import DEVICES
from fedtab.errors import ConfigError
from fedtab.models import torch_state
from fedtab.models.privacy import TrainingPrivacy
from fedtab.rng import isolated_torch_seed
from fedtab.transformers import TransformPlan

Weights = dict[str, np.ndarray]
Modules = dict[str, nn.Module]
Optimizers = dict[str, torch.optim.Optimizer]


@dataclass(frozen=True)
class LocalUpdate:
    """What one party's local training returns: new weights, how many rows it saw, and metrics.

    ``optimizer_state`` stays on the party (it never travels); the trainer keeps it for the next round,
    with the party's own copy of each of the model's ``local_modules()``.
    ``accountant_state`` is the party's ``PartyAccountant.state_dict()`` with this round's DP-SGD
    steps recorded (``None`` when the update was not private); hand it to the next round.
    Under DP ``metrics`` is empty: any loss would be computed on real rows and leave without noise.
    """

    weights: Weights
    num_examples: int
    metrics: dict[str, float] = field(default_factory=dict)
    optimizer_state: Weights = field(default_factory=dict)
    accountant_state: dict[str, Any] | None = None


class HorizontalModel(ABC):
    """A synthesizer that trains on encoded rows of one party at a time and averages across parties.

    Writing a plugin: subclass, register with ``@register("name")`` and fill these in.

    - ``default_options()``: the model's settings and defaults. A user option the defaults lack is
      refused; a value must have its default's kind (bool; int >= 1; finite number >= 0; list of
      ints >= 1; text). Checked once, in the constructor.
    - ``build_modules()``: fresh torch modules by name, from ``self.plan``, ``self.options`` and
      ``self.private`` (a plugin may build a DP-friendly variant when ``private`` is true). The
      caller seeds it; the weights travel as ``"<module>.<parameter>"``.
    - ``private_modules``: names of the modules that read real rows. Under DP the trainer wraps
      exactly these, together, with Opacus (ghost clipping, or ``grad_sample_mode = "hooks"`` for a
      layer called twice in one forward), after Opacus's validator passed them.
    - ``make_optimizers(modules)``: optimizers by name; their state stays on the party between
      rounds. Under DP one of them must hold exactly the private modules' parameters.
    - ``private_loss(modules, real, rng)``: one loss per real row (shape ``(batch,)``) from the
      private modules' outputs. Under DP it is the only hook that sees real rows (a Poisson batch
      at the planned rate); the trainer clips, noises, steps and charges the party's accountant.
    - ``public_step(modules, optimizers, *, batch_size, rng)`` (optional): a step for modules that
      never read real rows (CTGAN's generator), run after every ``public_every()`` private steps and
      after the last. Under DP the private modules reach it frozen: hook-free views of their current
      weights that pass gradients to their inputs, never to their weights; it gets no rows.
    - ``non_private_update(modules, optimizers, data, *, epochs, batch_size, rng)`` (optional): the
      plain path. The default trains shuffled minibatches on the mean ``private_loss`` and calls
      ``public_step``; CTGAN overrides it with its WGAN-GP loop. It returns the metrics the plugin
      wants shown (any names: the server averages them, the CLI and the app print them).
    - ``sample(weights, num_rows, *, seed)``: encoded synthetic rows; ``load_modules(weights)``
      rebuilds the networks.
    - ``local_modules()`` (optional): modules each party keeps as its own between rounds instead of
      averaging them (CTGAN's discriminator under label skew). The trainer loads the party's copy
      over the global one and sends the global weights back unchanged, so they never leave the party.

    A plugin has no privacy code and imports no Opacus: ``private`` is an explicit build argument
    (the server passes ``config.private``; a model file keeps it in its config's ε), never an option.
    """

    name: ClassVar[str]
    private_modules: ClassVar[tuple[str, ...]] = ()
    grad_sample_mode: ClassVar[str] = "ghost"
    """Opacus's per-row gradient norms without per-row gradients; "hooks" for a layer called twice in a forward."""
    device: torch.device = torch.device("cpu")
    """Where training and sampling run (``fedtab.models.devices.resolve_device``); weights travel on the CPU."""

    def __init__(self, plan: TransformPlan, options: Mapping[str, Any] | None = None, *, seed: int = 0,
                 private: bool = False) -> None:
        if not isinstance(private, bool):
            raise ConfigError(f"Model '{self.name}' takes private=True or private=False; got {private!r}. "
                              "Pass config.private (whether the run has a record-level ε).")
        self.plan = plan
        self.options = self.resolve_options(options or {})
        self.seed = seed
        self.private = private

    @classmethod
    @abstractmethod
    def default_options(cls) -> dict[str, Any]:
        """The model's own settings and their defaults."""

    @classmethod
    def resolve_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """The user's options over the defaults, every one checked against its default's kind."""
        defaults = cls.default_options()
        unknown = sorted(set(options) - set(defaults))
        if unknown:
            raise ConfigError(
                f"Model '{cls.name}' has no options {unknown}; it knows {sorted(defaults)}. "
                "Fix [model.options] in the config."
            )
        problems = [p for k, v in options.items() if (p := _option_problem(k, v, defaults[k]))]
        if problems:
            raise ConfigError(f"Invalid options for model '{cls.name}':\n"
                              + "\n".join(f"  - {p}. Fix [model.options] in the config." for p in problems))
        return {**defaults, **dict(options)}

    @classmethod
    def reads_target_pairs(cls, options: Mapping[str, Any]) -> bool:
        """Whether the model, built with these resolved ``options``, reads the plan's 2-way target marginals
        (``ColumnPlan.pair_counts``): under DP the parties release (and are charged for) them only then."""
        return False

    @abstractmethod
    def build_modules(self) -> Modules:
        """Fresh networks by name; the names of ``private_modules`` must be among them."""

    @abstractmethod
    def make_optimizers(self, modules: Modules) -> Optimizers:
        """Optimizers by name over ``modules``; under DP one holds exactly the private modules' parameters."""

    def private_loss(self, modules: Modules, real: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """One loss per row of ``real`` (encoded rows), computed through the private modules."""
        raise NotImplementedError(f"Model '{self.name}' declares no private_loss; it cannot train on rows.")

    def public_step(self, modules: Modules, optimizers: Optimizers, *, batch_size: int,
                    rng: np.random.Generator) -> dict[str, float]:
        """A step for the modules that never read rows; none by default."""
        return {}

    def public_every(self) -> int:
        """Private steps between two public steps."""
        return 1

    def local_modules(self) -> tuple[str, ...]:
        """Modules that stay on each party, never averaged (none by default; must be ones build_modules() builds)."""
        return ()

    def non_private_update(self, modules: Modules, optimizers: Optimizers, data: np.ndarray, *, epochs: float,
                           batch_size: int, rng: np.random.Generator) -> dict[str, float]:
        """Shuffled minibatches on the mean ``private_loss``; every optimizer steps; ``public_step`` between."""
        real = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32)).to(self.device)
        batch = min(batch_size, len(data))
        steps = max(1, int(round(epochs * len(data) / batch)))
        order = np.concatenate([rng.permutation(len(data)) for _ in range(math.ceil(steps * batch / len(data)))])
        losses, public = [], []
        for step in range(steps):
            loss = self.private_loss(modules, real[torch.from_numpy(order[step * batch:(step + 1) * batch])], rng).mean()
            for optimizer in optimizers.values():
                optimizer.zero_grad(set_to_none=False)
            loss.backward()
            for optimizer in optimizers.values():
                optimizer.step()
            losses.append(float(loss.detach()))
            if (step + 1) % self.public_every() == 0 or step == steps - 1:
                public.append(self.public_step(modules, optimizers, batch_size=batch, rng=rng))
        return {"loss": float(np.mean(losses)), **_mean_metrics(public), "steps": float(steps)}

    @abstractmethod
    def sample(self, weights: Weights, num_rows: int, *, seed: int) -> np.ndarray:
        """Encoded synthetic rows (``plan.decode`` turns them into a table)."""

    def sample_given(self, weights: Weights, num_rows: int, *, seed: int,
                     fixed: Mapping[str, np.ndarray]) -> np.ndarray:
        """Encoded rows with some columns given (column -> its encoded block); only models that can condition."""
        raise ConfigError(f"Model '{self.name}' cannot sample with fixed columns (conditions on {sorted(fixed)}); "
                          "it generates whole rows at once. Train with model = \"argn\", which can.")

    def init_weights(self) -> Weights:
        """Global weights before round one, the same for every party given the seed.

        The modules are checked first (and, for a private build, with Opacus's validator), so a
        model that cannot train fails here, before any statistic or round.
        """
        with isolated_torch_seed(self.seed, "init"):
            modules = self.build_modules()
        from fedtab.models import trainer

        trainer.check_modules(self, modules)
        return module_weights(modules)

    def load_modules(self, weights: Weights) -> Modules:
        """The networks holding ``weights``."""
        with isolated_torch_seed(self.seed, "load"):
            modules = self.build_modules()
        for prefix, module in modules.items():
            torch_state.load_module_weights(module, weights, prefix)
            module.to(self.device)
        return modules

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
        """Train from ``weights`` on one party's encoded rows and return its update (see the trainer).

        With ``privacy`` (the model must be built with ``private=True``), the modules in
        ``private_modules`` train with DP-SGD at its noise and sample rate, ``batch_size`` is unused
        and the update returns the accountant state with the steps charged.
        """
        from fedtab.models import trainer

        return trainer.local_update(self, weights, data, epochs=epochs, batch_size=batch_size, round_index=round_index,
                                    party=party, optimizer_state=optimizer_state, privacy=privacy)


def resolve_device(word: str) -> torch.device:
    """The torch device for ``--device``: ``cuda`` needs a GPU; ``auto`` takes one if there is one, else the CPU, and says so."""
    if word not in DEVICES:
        raise ConfigError(f"device must be one of {list(DEVICES)}; got {word!r}. Fix --device or device = in the config.")
    if word == "cpu" or (word == "auto" and not torch.cuda.is_available()):
        if word == "auto":
            warnings.warn("device 'auto': torch finds no CUDA GPU here, so training and sampling run on the CPU.",
                          RuntimeWarning, stacklevel=2)
        return torch.device("cpu")
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "without CUDA (a CPU-only build)"
        raise ConfigError(f"device 'cuda' asks for a GPU, but torch {torch.__version__}, built {build}, finds none on "
                          "this machine. Use --device cpu, or --device auto to fall back to the CPU.")
    return torch.device("cuda")


def on_device(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """New tensors on ``device`` inside a plugin's code; nothing on the CPU (the mode costs a hook per op)."""
    return contextlib.nullcontext() if device.type == "cpu" else device


def module_weights(modules: Modules) -> Weights:
    return {k: v for prefix, module in modules.items() for k, v in torch_state.module_weights(module, prefix).items()}


def _mean_metrics(records: list[dict[str, float]]) -> dict[str, float]:
    names = sorted({k for r in records for k in r})
    return {k: float(np.mean([r[k] for r in records if k in r])) for k in names}


def _option_problem(name: str, value: Any, default: Any) -> str | None:
    """Why ``value`` cannot stand in for ``default`` (same kind; counts and sizes >= 1; rates >= 0; an unset
    default takes a name, such as the declared target column)."""
    if default is None:
        ok, rule = value is None or (isinstance(value, str) and bool(value.strip())), "unset or a column name"
    elif isinstance(default, bool):
        ok, rule = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, rule = _is_int(value) and value >= 1, "an int >= 1"
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
        rule = "a finite number >= 0"
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, (list, tuple)) and len(value) >= 1 and all(_is_int(v) and v >= 1 for v in value)
        rule = "a non-empty list of ints >= 1"
    else:
        ok, rule = isinstance(value, type(default)), f"a {type(default).__name__}"
    return None if ok else f"option '{name}' must be {rule}; got {value!r}"


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
