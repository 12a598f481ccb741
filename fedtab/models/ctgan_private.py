"""CTGAN's pieces for record-level DP: the pair discriminator, its per-row loss, its generator step (ALGORITHMS §4).

Only the discriminator reads real rows, so only it is a private module (the trainer runs DP-SGD
on it); the generator learns from the discriminator's (already private) weights and the plan's
released category counts, which is post-processing. Opacus rules out CTGAN's own critic: the gradient penalty is a double backward
that escapes per-sample gradients, pac = 10 clashes with Poisson batches, and ghost clipping cannot
see a layer used twice in one forward. So the private discriminator scores one (real, fake) pair,
in random order, as ONE sample in one forward: its logit says "the first row is the real one",
trained with cross-entropy.

Its optimum is r(first) - r(second) with r = log(p_real / p_fake), so the generator pairs each fake
with a detached fake and pushes the live one towards "real": the usual non-saturating GAN signal,
with no real row anywhere in the generator step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:
    from fedtab.models.base import Modules
    from fedtab.models.ctgan import FederatedCTGAN


class PairDiscriminator(nn.Module):
    """ctgan's discriminator stack (Linear, LeakyReLU 0.2, Dropout 0.5) over one concatenated pair.

    No batch-wide layer: each pair's score depends on that pair alone, as per-sample clipping needs.
    """

    def __init__(self, data_dim: int, cond_dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = 2 * data_dim + cond_dim
        for size in hidden:
            layers += [nn.Linear(width, size), nn.LeakyReLU(0.2), nn.Dropout(0.5)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.seq = nn.Sequential(*layers)

    def forward(self, first: torch.Tensor, second: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """One logit per pair that ``first`` is the real row; both rows share the condition ``cond``."""
        return self.seq(torch.cat([first, second, cond], dim=1)).squeeze(-1)


def pair_loss(model: FederatedCTGAN, modules: Modules, real: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """One loss per real row: the row and a fake of its own condition, in random order, scored as one pair."""
    cond = _row_conditions(model, real, rng)
    fake = _fakes_for(model, modules["generator"], cond)
    real_first = torch.from_numpy(rng.random(len(real)) < 0.5)
    first = torch.where(real_first[:, None], real, fake)
    second = torch.where(real_first[:, None], fake, real)
    logits = modules["discriminator"](first, second, cond)
    return F.binary_cross_entropy_with_logits(logits, real_first.to(logits.dtype), reduction="none")


def generator_step(model: FederatedCTGAN, modules: Modules, opt_g: torch.optim.Optimizer, *, pairs: int,
                   rng: np.random.Generator) -> dict[str, float]:
    """Fakes under the plan's (released) category frequencies, scored against detached fakes.

    ``modules["discriminator"]`` is the trainer's frozen view: gradients reach the generator only.
    """
    cond, mask = _generation_conditions(model, pairs, rng)
    cond2, mask2 = torch.cat([cond, cond]), torch.cat([mask, mask])
    raw = modules["generator"](model.noise_with(cond2, 2 * pairs))
    fake = model.activate(raw)
    live, other = fake[:pairs], fake[pairs:]
    first = torch.cat([live, live.detach()])
    second = torch.cat([other.detach(), other])
    target = torch.cat([torch.ones(pairs), torch.zeros(pairs)])
    logits = modules["discriminator"](first, second, cond2)
    loss = (F.binary_cross_entropy_with_logits(logits, target) + model.condition_loss(raw, cond2, mask2)
            + model.marginal_loss(fake))
    opt_g.zero_grad(set_to_none=False)
    loss.backward()
    opt_g.step()
    return {"loss_g": float(loss.detach())}


def _row_conditions(model: FederatedCTGAN, real: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    if model.conditions.num_columns == 0:
        return torch.zeros(len(real), 0)
    return torch.from_numpy(model.conditions.conditions_of(real.numpy(), rng)[0])


def _generation_conditions(model: FederatedCTGAN, batch: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    if model.conditions.num_columns == 0:
        return torch.zeros(batch, 0), torch.zeros(batch, 0)
    cond, mask = model.conditions.sample_fake(batch, rng)
    return torch.from_numpy(cond), torch.from_numpy(mask)


def _fakes_for(model: FederatedCTGAN, generator: nn.Module, cond: torch.Tensor) -> torch.Tensor:
    """Each real row's fake, generated in eval mode.

    In training mode the generator's batch norm would mix every row's condition into every
    fake (and into its running statistics, which travel): a row would reach other rows' clipped
    samples. Eval mode normalises with running statistics from generator steps alone.
    """
    if len(cond) == 0:
        return torch.zeros(0, model.data_dim)
    with torch.no_grad(), _evaluating(generator):
        return model.activate(generator(model.noise_with(cond, len(cond))))


@contextlib.contextmanager
def _evaluating(module: nn.Module) -> Iterator[None]:
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)
