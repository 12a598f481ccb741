"""CTGAN's local round under record-level DP: DP-SGD on the discriminator only (ALGORITHMS §4).

Only the discriminator reads real rows, so only it trains with DP-SGD; the generator learns from
the discriminator's (already private) weights and the plan's released category counts, which is
post-processing. Opacus rules out CTGAN's own critic: the gradient penalty is a double backward
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
import copy
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fedtab.errors import ConfigError
from fedtab.models.privacy import TrainingPrivacy

if TYPE_CHECKING:
    from fedtab.models.ctgan import FederatedCTGAN
    from fedtab.privacy.accountant import PartyAccountant
    from fedtab.privacy.dpsgd import PrivateTrainer


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


def validate_discriminator(discriminator: nn.Module, *, party: str = "every party") -> None:
    """Opacus's module checks, run on the server before round one and again by each party's trainer."""
    from fedtab.privacy.dpsgd import validate_module

    validate_module(discriminator, party=party)


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


def private_trainer(discriminator: nn.Module, optimizer: torch.optim.Optimizer, *, num_rows: int, party: str,
                    privacy: TrainingPrivacy, accountant: PartyAccountant, rng: np.random.Generator) -> PrivateTrainer:
    """Ghost-clipped DP-SGD on the discriminator at the planned noise and sample rate."""
    from fedtab.privacy.dpsgd import PrivateTrainer

    return PrivateTrainer(module=discriminator, optimizer=optimizer, num_rows=num_rows,
                          batch_size=privacy.expected_batch(num_rows, party),
                          noise_multiplier=float(privacy.noise_multiplier),
                          max_grad_norm=float(privacy.max_grad_norm), accountant=accountant, rng=rng,
                          grad_sample_mode="ghost")


class PrivateRound:
    """One party's private local round: DP-SGD steps on the discriminator, generator steps between.

    ``real`` is read by ``discriminator_step`` only. The generator step scores fakes with a
    hook-free twin of the discriminator (``critic``, copied before Opacus adds its hooks) holding
    its live parameters detached, so it neither reaches Opacus's hooks nor sends gradients into the
    private module. Use it as a context manager: leaving it hands the plain discriminator back.
    """

    def __init__(self, model: FederatedCTGAN, *, generator: nn.Module, discriminator: nn.Module,
                 opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, real: torch.Tensor,
                 privacy: TrainingPrivacy, accountant: PartyAccountant, party: str, rng: np.random.Generator,
                 noise_rng: np.random.Generator) -> None:
        self.model = model
        self.generator = generator
        self.discriminator = discriminator
        self.critic = copy.deepcopy(discriminator)
        self.trainer = private_trainer(discriminator, opt_d, num_rows=len(real), party=party, privacy=privacy,
                                       accountant=accountant, rng=noise_rng)
        self.opt_g = opt_g
        self.real = real
        self.rng = rng
        self.pairs = max(1, privacy.expected_batch(len(real), party) // 2)

    def __enter__(self) -> PrivateRound:
        return self

    def __exit__(self, *exc: object) -> None:
        self.trainer.close()

    def train(self, steps: int) -> float:
        """``steps`` DP-SGD steps; a generator step after every ``discriminator_steps`` of them and at the end.

        Returns the generator's mean loss. The discriminator's loss on real rows is not returned:
        it is computed from real rows without noise, and metrics travel to the server.
        """
        every = self.model.options["discriminator_steps"]
        losses_g = []
        for step in range(steps):
            self.discriminator_step()
            if (step + 1) % every == 0 or step == steps - 1:
                losses_g.append(self.generator_step())
        return float(np.mean(losses_g))

    def discriminator_step(self) -> float:
        """One Poisson batch of real rows, each paired with a fake of its own condition, in random order."""
        rows = torch.from_numpy(self.trainer.sample_rows())
        real = self.real[rows]
        cond = self._row_conditions(real)
        fake = self._fakes_for(cond)
        real_first = torch.from_numpy(self.rng.random(len(rows)) < 0.5)
        first = torch.where(real_first[:, None], real, fake)
        second = torch.where(real_first[:, None], fake, real)
        logits = self.trainer.module(first, second, cond)
        loss = F.binary_cross_entropy_with_logits(logits, real_first.to(logits.dtype), reduction="none")
        return self.trainer.step(loss)

    def generator_step(self) -> float:
        """Fakes under the plan's (released) category frequencies, scored against detached fakes."""
        cond, mask = self._generation_conditions(self.pairs)
        cond2, mask2 = torch.cat([cond, cond]), torch.cat([mask, mask])
        raw = self.generator(self.model.noise_with(cond2, 2 * self.pairs))
        fake = self.model.activate(raw)
        live, other = fake[: self.pairs], fake[self.pairs :]
        first = torch.cat([live, live.detach()])
        second = torch.cat([other.detach(), other])
        target = torch.cat([torch.ones(self.pairs), torch.zeros(self.pairs)])
        frozen = {name: p.detach() for name, p in self.discriminator.named_parameters()}
        logits = torch.func.functional_call(self.critic, frozen, (first, second, cond2))
        loss = (F.binary_cross_entropy_with_logits(logits, target) + self.model.condition_loss(raw, cond2, mask2)
                + self.model.marginal_loss(fake))
        self.opt_g.zero_grad(set_to_none=False)
        loss.backward()
        self.opt_g.step()
        return float(loss.detach())

    def _row_conditions(self, real: torch.Tensor) -> torch.Tensor:
        if self.model.conditions.num_columns == 0:
            return torch.zeros(len(real), 0)
        return torch.from_numpy(self.model.conditions.conditions_of(real.numpy(), self.rng)[0])

    def _generation_conditions(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.model.conditions.num_columns == 0:
            return torch.zeros(batch, 0), torch.zeros(batch, 0)
        cond, mask = self.model.conditions.sample_generation(batch, self.rng)
        return torch.from_numpy(cond), torch.from_numpy(mask)

    def _fakes_for(self, cond: torch.Tensor) -> torch.Tensor:
        """Each real row's fake, generated in eval mode.

        In training mode the generator's batch norm would mix every row's condition into every
        fake (and into its running statistics, which travel): a row would reach other rows' clipped
        samples. Eval mode normalises with running statistics from generator steps alone.
        """
        if len(cond) == 0:
            return torch.zeros(0, self.model.data_dim)
        with torch.no_grad(), _evaluating(self.generator):
            return self.model.activate(self.generator(self.model.noise_with(cond, len(cond))))


@contextlib.contextmanager
def _evaluating(module: nn.Module) -> Iterator[None]:
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)
