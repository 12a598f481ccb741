"""FedTabDiff: a TabDDPM-style diffusion model over quantile-normal numericals and masked categoricals, FedAvg across parties.

The model reads the plan's encoded rows and re-expresses them through the plan's quantile maps
(``TransformPlan.quantile_normal``: post-processing of the histograms the encoder fit released, so
no new statistic and no new ε): every numerical column becomes one quantile-normal value, every
categorical column (and a numerical's missing flag) a category index. Numericals follow Gaussian
diffusion (cosine schedule, ε-prediction); categoricals follow masked (absorbing-state) diffusion:
at time t each index is replaced by a mask token with probability t and the network predicts the
masked ones. One MLP denoiser reads both, plus a sinusoidal timestep embedding and, when a target
is declared, the target's class (an embedding: the target is not diffused but drawn from the
plan's released counts at sampling, and every other column is generated given it).

Sampling takes ``sampling_steps`` steps from t = 1 to 0: DDIM (deterministic, η = 0) for the
numericals, and for the categoricals each still-masked index is revealed with probability
1 − s/t, drawn from the network's prediction. Every layer is a ``Linear`` or an activation, so
Opacus's ghost clipping trains the denoiser as it is; the trainer owns DP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from scipy.special import ndtri
from torch.nn import functional as F

from fedtab.errors import ConfigError
from fedtab.models.base import HorizontalModel, Modules, Optimizers, Weights
from fedtab.models.registry import register
from fedtab.rng import isolated_torch_seed, numpy_rng, torch_generator
from fedtab.transformers.plan import NUMERIC_KINDS
from fedtab.transformers.quantile import TAIL

SAMPLE_CHUNK = 8192
Z_LIMIT = float(ndtri(1 - TAIL))
"""The largest quantile-normal value a quantile map writes; predicted clean values are clipped to it."""
COSINE_OFFSET = 0.008


@dataclass(frozen=True)
class Token:
    """A categorical unit the model diffuses: a categorical column or a numerical's missing flag."""

    column: str
    start: int
    cardinality: int
    missing_flag: bool


def signal_level(t: torch.Tensor) -> torch.Tensor:
    """ᾱ(t) of the cosine schedule (Nichol & Dhariwal), from 1 at t = 0 to 0 at t = 1."""
    angle = (t + COSINE_OFFSET) / (1 + COSINE_OFFSET) * math.pi / 2
    start = math.cos(COSINE_OFFSET / (1 + COSINE_OFFSET) * math.pi / 2) ** 2
    return (torch.cos(angle) ** 2 / start).clamp(1e-5, 1.0)


def timestep_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of t ∈ [0, 1] (as TabDDPM, on 1000 t); no parameters."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=t.dtype) / half)
    angles = 1000.0 * t[:, None] * frequencies[None, :]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


class Denoiser(nn.Module):
    """TabDDPM's MLP: the noisy row and its masked one-hots projected, plus time and class embeddings, through SiLU layers."""

    def __init__(self, input_dim: int, output_dim: int, classes: int, hidden_dims: list[int], time_dim: int) -> None:
        super().__init__()
        self.time_dim = time_dim
        width = hidden_dims[0]
        self.project = nn.Linear(input_dim, width)
        self.time = nn.Sequential(nn.Linear(time_dim, width), nn.SiLU(), nn.Linear(width, width))
        self.label = nn.Linear(classes, width, bias=False) if classes else None
        layers: list[nn.Module] = []
        for dim in hidden_dims[1:]:
            layers += [nn.SiLU(), nn.Linear(width, dim)]
            width = dim
        self.body = nn.Sequential(*layers, nn.SiLU())
        self.out = nn.Linear(width, output_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, label: torch.Tensor | None) -> torch.Tensor:
        h = self.project(x) + self.time(timestep_features(t, self.time_dim))
        if self.label is not None and label is not None:
            h = h + self.label(label)
        return self.out(self.body(h))


@register("fedtabdiff")
class FedTabDiff(HorizontalModel):
    """Gaussian diffusion on quantile-normal numericals and masked diffusion on categoricals, trained locally and averaged."""

    private_modules = ("denoiser",)

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """Sizes measured on Adult (benchmarks/RESULTS_DIFFUSION.md); ``target`` is generated on, not diffused."""
        return {
            "hidden_dims": [256, 256, 256],
            "embedding_dim": 64,  # the timestep (sinusoidal) features fed to the time MLP
            "learning_rate": 2e-3,
            "sampling_steps": 50,
            "target": None,
        }

    def __init__(self, plan, options=None, *, seed: int = 0, private: bool = False) -> None:  # type: ignore[no-untyped-def]
        super().__init__(plan, options, seed=seed, private=private)
        target = self.options["target"]
        discrete = [c for c in plan.encoded_columns if c.kind not in NUMERIC_KINDS]
        if target is not None and target not in [c.name for c in discrete]:
            raise ConfigError(f"Model 'fedtabdiff' generates on a categorical target; {target!r} is not one of the "
                              f"table's categorical columns {[c.name for c in discrete]}. Fix target in [model.options].")
        self.numeric = [c for c in plan.encoded_columns if c.kind in NUMERIC_KINDS]
        self.maps = {c.name: plan.quantile_map(c.name) for c in self.numeric}
        self.tokens = self._tokens(target)
        self.target = next((t for t in self._tokens(None) if t.column == target), None)
        self.steps = self.options["sampling_steps"]

    def _tokens(self, target: str | None) -> list[Token]:
        out = []
        for column in self.plan.encoded_columns:
            start = self.plan.column_start(column.name)
            if column.kind in NUMERIC_KINDS:
                if column.has_missing:
                    out.append(Token(column.name, start + 1 + len(column.means), 2, True))
            elif column.name != target:
                out.append(Token(column.name, start, column.width, False))
        return out

    @property
    def input_dim(self) -> int:
        return len(self.numeric) + sum(t.cardinality + 1 for t in self.tokens)

    def build_modules(self) -> Modules:
        o = self.options
        output = len(self.numeric) + sum(t.cardinality for t in self.tokens)
        classes = self.target.cardinality if self.target is not None else 0
        return {"denoiser": Denoiser(self.input_dim, output, classes, list(o["hidden_dims"]), o["embedding_dim"])}

    def make_optimizers(self, modules: Modules) -> Optimizers:
        return {"denoiser": torch.optim.Adam(modules["denoiser"].parameters(), lr=self.options["learning_rate"])}

    # -- rows in the model's own terms ---------------------------------------------------------

    def features(self, encoded: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(quantile-normal numericals (n, d; 0 where missing), category indices (n, tokens), target index or None)."""
        z = np.zeros((len(encoded), len(self.numeric)), dtype=np.float32)
        for j, column in enumerate(self.numeric):
            values = self.maps[column.name].normal(self.plan.block_values(column.name, encoded), rng)
            z[:, j] = np.nan_to_num(values, nan=0.0)
        indices = np.stack([encoded[:, t.start:t.start + t.cardinality].argmax(axis=1) for t in self.tokens], axis=1) \
            if self.tokens else np.zeros((len(encoded), 0), dtype=np.int64)
        target = None
        if self.target is not None:
            target = encoded[:, self.target.start:self.target.start + self.target.cardinality].argmax(axis=1)
        return z, indices.astype(np.int64), target

    def rows(self, z: np.ndarray, indices: np.ndarray, target: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
        """Encoded rows in the plan's layout from the model's numericals, indices and target."""
        out = np.zeros((len(z), self.plan.output_dim), dtype=np.float32)
        missing = {t.column: indices[:, i] == 1 for i, t in enumerate(self.tokens) if t.missing_flag}
        for j, column in enumerate(self.numeric):
            values = self.maps[column.name].from_normal(z[:, j])
            values = np.where(missing.get(column.name, False), np.nan, values)
            start = self.plan.column_start(column.name)
            out[:, start:start + column.width] = self.plan.encode_values(column.name, values, rng)
        rows = np.arange(len(z))
        for i, token in enumerate(self.tokens):
            if not token.missing_flag:
                out[rows, token.start + indices[:, i]] = 1.0
        if self.target is not None and target is not None:
            out[rows, self.target.start + target] = 1.0
        return out

    def _network_input(self, z_t: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """The noisy numericals and each token's one-hot over its categories plus a last 'mask' category."""
        parts = [z_t] + [F.one_hot(masked[:, i], t.cardinality + 1).to(z_t.dtype) for i, t in enumerate(self.tokens)]
        return torch.cat(parts, dim=1)

    def _label(self, target: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
        if self.target is None or target is None:
            return None
        return F.one_hot(target, self.target.cardinality).to(dtype)

    def _split_output(self, out: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        d = len(self.numeric)
        logits, start = [], d
        for token in self.tokens:
            logits.append(out[:, start:start + token.cardinality])
            start += token.cardinality
        return out[:, :d], logits

    # -- training ------------------------------------------------------------------------------

    def private_loss(self, modules: Modules, real: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Each row's ε-prediction error summed over its numericals plus the cross-entropy of its masked indices."""
        z0, indices, target = (None if a is None else torch.from_numpy(a).to(self.device)
                               for a in self.features(real.detach().cpu().numpy(), rng))
        n = len(real)
        t = torch.rand(n, device=self.device)
        level = signal_level(t)[:, None]
        noise = torch.randn_like(z0)
        z_t = level.sqrt() * z0 + (1 - level).sqrt() * noise
        is_masked = torch.rand(indices.shape, device=self.device) < t[:, None]
        mask_index = torch.tensor([tok.cardinality for tok in self.tokens], device=self.device, dtype=torch.long)
        masked = torch.where(is_masked, mask_index[None, :], indices)
        out = modules["denoiser"](self._network_input(z_t, masked), t, self._label(target, real.dtype))
        predicted, logits = self._split_output(out)
        loss = ((predicted - noise) ** 2).sum(dim=1)
        for i, z in enumerate(logits):
            loss = loss + is_masked[:, i] * F.cross_entropy(z, indices[:, i], reduction="none")
        return loss

    # -- sampling ------------------------------------------------------------------------------

    def sample(self, weights: Weights, num_rows: int, *, seed: int) -> np.ndarray:
        """``sampling_steps`` joint steps from pure noise and all-masked indices to clean rows (the target drawn first)."""
        noise = torch_generator(seed, "sample-noise")
        rng = numpy_rng(seed, "sample-decode")
        out = np.zeros((num_rows, self.plan.output_dim), dtype=np.float32)
        with isolated_torch_seed(seed, "sample"), torch.no_grad():
            network = self.load_modules(weights)["denoiser"].eval()
            for start in range(0, num_rows, SAMPLE_CHUNK):
                rows = min(SAMPLE_CHUNK, num_rows - start)
                target = self._draw_target(rows, noise)
                z, indices = self._denoise(network, rows, target, noise)
                out[start:start + rows] = self.rows(z, indices, None if target is None else target.cpu().numpy(), rng)
        return out

    def _draw_target(self, rows: int, noise: torch.Generator) -> torch.Tensor | None:
        """The target's classes at the plan's released shares (free post-processing)."""
        if self.target is None:
            return None
        counts = np.clip(np.asarray(self.plan.column(self.target.column).counts, dtype=np.float64), 0, None)
        shares = counts / counts.sum() if counts.sum() > 0 else np.full(len(counts), 1 / len(counts))
        return torch.multinomial(torch.from_numpy(shares).float(), rows, replacement=True, generator=noise).to(self.device)

    def _denoise(self, network: Denoiser, rows: int, target: torch.Tensor | None,
                 noise: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
        z = torch.randn(rows, len(self.numeric), generator=noise).to(self.device)
        mask_index = torch.tensor([t.cardinality for t in self.tokens], dtype=torch.long, device=self.device)
        indices = mask_index[None, :].repeat(rows, 1)
        label = self._label(target, z.dtype)
        times = torch.linspace(1.0, 0.0, self.steps + 1)
        for t, s in zip(times[:-1], times[1:]):
            out = network(self._network_input(z, indices), torch.full((rows,), float(t), device=self.device), label)
            eps, logits = self._split_output(out)
            level_t, level_s = signal_level(t), signal_level(s) if s > 0 else torch.tensor(1.0)
            clean = ((z - (1 - level_t).sqrt() * eps) / level_t.sqrt()).clamp(-Z_LIMIT, Z_LIMIT)
            eps = (z - level_t.sqrt() * clean) / (1 - level_t).sqrt()
            z = level_s.sqrt() * clean + (1 - level_s).sqrt() * eps
            reveal = torch.rand(indices.shape, generator=noise).to(self.device) >= s / t
            for i, z_logits in enumerate(logits):
                still = (indices[:, i] == mask_index[i]) & reveal[:, i]
                if still.any():
                    draw = torch.multinomial(torch.softmax(z_logits[still], dim=1).cpu(), 1, generator=noise)[:, 0]
                    indices[still, i] = draw.to(self.device)
        return z.cpu().numpy(), indices.cpu().numpy()
