"""DP-SGD on a tiny MLP: clipping bounds the update, both grad-sample modes agree, every step is charged."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from opacus.accountants import PRVAccountant
from torch import nn

from fedtab.errors import ConfigError
from fedtab.privacy.accountant import PartyAccountant
from fedtab.privacy.dpsgd import PoissonSampler, PrivateTrainer, fix_module, module_problems, validate_module

DELTA = 1e-5
pytestmark = pytest.mark.filterwarnings("ignore:divide by zero encountered in log")


def _mlp(seed: int = 0) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.3)
    return net


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(64, 4, generator=generator), torch.randn(64, generator=generator)


def _trainer(net: nn.Module, mode: str, *, sigma: float = 1.0, clip: float = 1.0, lr: float = 0.1,
             accountant: PartyAccountant | None = None, seed: int = 0, batch: int = 8) -> PrivateTrainer:
    return PrivateTrainer(module=net, optimizer=torch.optim.SGD(net.parameters(), lr=lr), num_rows=64,
                          batch_size=batch, noise_multiplier=sigma, max_grad_norm=clip,
                          accountant=accountant or PartyAccountant("clinic"), rng=np.random.default_rng(seed),
                          grad_sample_mode=mode)


def _flat(net: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def _squared_error(trainer: PrivateTrainer, rows: np.ndarray, scale: float = 1.0) -> torch.Tensor:
    x, y = _data()
    index = torch.as_tensor(rows, dtype=torch.long)
    return scale * (trainer.module(x[index]).squeeze(-1) - y[index]) ** 2


@pytest.mark.parametrize("mode", ["ghost", "hooks"])
def test_per_row_clipping_bounds_the_update(mode: str) -> None:
    """With noise negligible, lr = 1 and expected batch B, the step is the sum of clipped per-row
    gradients over B: its norm is at most (rows in batch) × C / B, however large the raw gradients."""
    net = _mlp()
    before = _flat(net)
    trainer = _trainer(net, mode, sigma=1e-9, clip=0.5, lr=1.0)
    rows = np.array([3, 9, 20])
    trainer.step(_squared_error(trainer, rows, scale=1e4))
    update = (_flat(net) - before).norm().item()
    assert update <= len(rows) * 0.5 / 8 + 1e-6
    assert update > 0.5 / 8  # the clipped gradients are not all thrown away

    plain = _mlp()
    x, y = _data()
    (1e4 * (plain(x[rows]).squeeze(-1) - y[rows]) ** 2).sum().div(8).backward()
    assert torch.cat([p.grad.flatten() for p in plain.parameters()]).norm().item() > 100 * update


def test_ghost_clipping_and_per_row_gradients_give_the_same_steps() -> None:
    weights = {}
    for mode in ("ghost", "hooks"):
        net = _mlp()
        trainer = _trainer(net, mode, sigma=0.7, seed=11)
        for _ in range(4):
            trainer.step(_squared_error(trainer, trainer.sample_rows()))
        weights[mode] = _flat(net)
    assert torch.allclose(weights["ghost"], weights["hooks"], atol=1e-5)


def test_epsilon_after_n_steps_equals_the_accountant_and_opacus() -> None:
    accountant = PartyAccountant("clinic")
    trainer = _trainer(_mlp(), "ghost", sigma=1.3, accountant=accountant)
    for _ in range(25):
        trainer.step(_squared_error(trainer, trainer.sample_rows()))
    opacus = PRVAccountant()
    for _ in range(25):
        opacus.step(noise_multiplier=1.3, sample_rate=8 / 64)
    assert trainer.steps == accountant.steps("training") == 25
    assert accountant.epsilon(DELTA) == pytest.approx(opacus.get_epsilon(DELTA), rel=1e-9)


def test_rounds_that_rebuild_the_trainer_keep_charging_the_same_accountant() -> None:
    accountant = PartyAccountant("clinic")
    net = _mlp()
    for round_ in range(3):
        with _trainer(net, "ghost", accountant=accountant, seed=round_) as trainer:
            for _ in range(5):
                trainer.step(_squared_error(trainer, trainer.sample_rows()))
    assert accountant.steps("training") == 15
    assert not any(hasattr(p, "grad_sample") for p in net.parameters())
    assert [(r.noise_multiplier, r.sample_rate, r.steps) for r in accountant.history] == [(1.0, 0.125, 15)]


@pytest.mark.parametrize("mode", ["ghost", "hooks"])
def test_an_empty_batch_still_takes_a_noisy_step_and_is_charged(mode: str) -> None:
    net = _mlp()
    before = _flat(net)
    trainer = _trainer(net, mode)
    assert trainer.step(_squared_error(trainer, np.array([], dtype=np.int64))) == 0.0
    assert trainer.accountant.steps() == 1
    assert not torch.equal(_flat(net), before)


def test_same_seed_same_training() -> None:
    runs = []
    for _ in range(2):
        net = _mlp()
        trainer = _trainer(net, "ghost", seed=5)
        for _ in range(3):
            trainer.step(_squared_error(trainer, trainer.sample_rows()))
        runs.append(_flat(net))
    assert torch.equal(runs[0], runs[1])


def test_poisson_sampler_is_seeded_and_samples_at_its_rate() -> None:
    first = PoissonSampler(num_rows=10_000, sample_rate=0.03, rng=np.random.default_rng(2))
    second = PoissonSampler(num_rows=10_000, sample_rate=0.03, rng=np.random.default_rng(2))
    batches = [first.sample() for _ in range(20)]
    assert all(np.array_equal(b, second.sample()) for b in batches)
    sizes = np.array([len(b) for b in batches])
    assert abs(sizes.mean() - 300) < 4 * np.sqrt(300 / 20)


class _LooseSigma(nn.Module):
    """TVAE's decoder pattern that breaks Opacus: a bare parameter next to child layers."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(4, 4)
        self.sigma = nn.Parameter(torch.ones(4))


def test_validator_lists_every_problem_with_its_place_and_fix() -> None:
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 1)).eval()
    problems = module_problems(net)
    assert len(problems) == 2
    assert "eval mode; call module.train()" in problems[0]
    assert "submodule '1' (BatchNorm1d)" in problems[1] and "fix_module(module)" in problems[1]
    with pytest.raises(ConfigError, match=r"(?s)party 'clinic' cannot be trained with DP-SGD.*eval mode.*BatchNorm"):
        validate_module(net, party="clinic")
    with pytest.raises(ConfigError, match=r"parameters \['sigma'\] next to child layers.*nn.Linear\(1, d"):
        validate_module(_LooseSigma())
    assert module_problems(fix_module(net.train())) == []


def test_trainer_refuses_foreign_parameters_and_bad_settings() -> None:
    net = _mlp()
    stray = nn.Parameter(torch.zeros(3))
    with pytest.raises(ConfigError, match="1 parameters that are not in the private module"):
        PrivateTrainer(module=net, optimizer=torch.optim.SGD([*net.parameters(), stray], lr=0.1), num_rows=64,
                       batch_size=8, noise_multiplier=1.0, max_grad_norm=1.0, accountant=PartyAccountant("clinic"),
                       rng=np.random.default_rng(0))
    with pytest.raises(ConfigError, match=r"(?s)'batch_size' must be an int in \[1, num_rows\].*'grad_sample_mode'"):
        PrivateTrainer(module=net, optimizer=torch.optim.SGD(net.parameters(), lr=0.1), num_rows=64,
                       batch_size=100, noise_multiplier=1.0, max_grad_norm=1.0, accountant=PartyAccountant("clinic"),
                       rng=np.random.default_rng(0), grad_sample_mode="ew")
    trainer = _trainer(_mlp(), "ghost")
    with pytest.raises(ConfigError, match=r"one loss per row \(shape \(batch,\)\)"):
        trainer.step(torch.zeros(3, 1))


@pytest.mark.parametrize("mode", ["ghost", "hooks"])
def test_several_private_modules_are_clipped_as_one_row_gradient(mode: str) -> None:
    """The model trainer hands Opacus its private modules as one ModuleDict and calls them one by one
    (TVAE: encoder, then decoder). One row's gradient across both is clipped to C together: with a
    huge raw gradient the step is exactly C / B, where clipping each module on its own would give
    about √2 × C / B (both modules' raw gradients are far above C)."""
    net = _mlp(2)
    pair = nn.ModuleDict({"encoder": net[:2], "decoder": net[2]})
    before = {name: _flat(module) for name, module in pair.items()}
    trainer = PrivateTrainer(module=pair, optimizer=torch.optim.SGD(pair.parameters(), lr=1.0), num_rows=64,
                             batch_size=8, noise_multiplier=1e-9, max_grad_norm=0.5,
                             accountant=PartyAccountant("clinic"), rng=np.random.default_rng(0), grad_sample_mode=mode)
    x, y = _data()
    row = torch.tensor([3])
    trainer.step(1e4 * (pair["decoder"](pair["encoder"](x[row])).squeeze(-1) - y[row]) ** 2)
    moved = {name: (_flat(module) - before[name]).norm().item() for name, module in pair.items()}
    assert float(np.hypot(moved["encoder"], moved["decoder"])) == pytest.approx(0.5 / 8, rel=1e-4)
    assert min(moved.values()) > 0.1 * 0.5 / 8  # both modules stepped: Opacus's hooks saw both calls
