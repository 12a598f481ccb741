"""Federated TVAE: ctgan's encoder and decoder blocks, an ELBO over the plan's spans, FedAvg across parties.

Both networks read real rows (the encoder takes them in, the decoder's loss compares against
them), so both are private modules: under DP the trainer clips each row's gradient across the two.
ctgan's decoder keeps its output scale ``sigma`` as a bare parameter beside its layers, which Opacus
cannot give per-row gradients; here it is the weight of a ``Linear(1, d)`` fed ones (ALGORITHMS §4),
so its per-row gradient is exact and the plain and private builds are the same network.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ctgan.synthesizers.tvae import Decoder, Encoder
from torch import nn

from fedtab.errors import ConfigError
from fedtab.models.base import HorizontalModel, Modules, Optimizers, Weights
from fedtab.models.draws import SpanDraws
from fedtab.models.matching import MarginalMatcher, released_marginals
from fedtab.models.registry import register
from fedtab.models.spans import activation_layout
from fedtab.rng import isolated_torch_seed, numpy_rng, torch_generator

SAMPLE_CHUNK = 4096
MARGINAL_DRAWS = ("argmax", "softmax")
ARGMAX_TEMPERATURE = 0.1
"""An argmax draw matches softmax(logits / 0.1): close to the argmax shares, and Sinkhorn still converges."""
SIGMA_RANGE = (0.01, 1.0)
"""ctgan's TVAE clamps the decoder's sigma to this range after every step."""


class SigmaDecoder(Decoder):
    """ctgan's TVAE decoder with ``sigma`` held as ``Linear(1, data_dim, bias=False)`` (initial 0.1)."""

    def __init__(self, embedding_dim: int, decompress_dims: tuple[int, ...], data_dim: int) -> None:
        super().__init__(embedding_dim, decompress_dims, data_dim)
        del self.sigma
        self.sigma = nn.Linear(1, data_dim, bias=False)
        nn.init.constant_(self.sigma.weight, 0.1)

    def forward(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each row's reconstruction logits and its (row-independent) sigma, clamped as ctgan clamps it."""
        with torch.no_grad():
            self.sigma.weight.clamp_(*SIGMA_RANGE)
        return self.seq(latent), self.sigma(torch.ones(len(latent), 1))


def padded_spans(spans: list[tuple[int, int]], data_dim: int) -> torch.Tensor:
    """(spans, widest) column indices of each one-hot span; ``data_dim`` (a padding column) fills the rest."""
    width = max((end - start for start, end in spans), default=0)
    return torch.tensor([list(range(start, end)) + [data_dim] * (width - end + start) for start, end in spans],
                        dtype=torch.long).reshape(len(spans), width)


@register("tvae")
class FederatedTVAE(HorizontalModel):
    """A variational autoencoder over encoded rows (Xu et al. 2019), trained locally and averaged."""

    private_modules = ("encoder", "decoder")

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """SDV's TVAE sizes; twice SDV's reconstruction weight, batch and rate; samples matched to the released marginals.

        ``loss_factor`` 4 (SDV's 2): a sharper decoder keeps more of the target's relation to the other
        columns across label-skewed parties (Adult, split seeds 0-2: TSTR ROC-AUC 0.878 / 0.851 / 0.843 at
        2, 0.885 / 0.866 / 0.859 at 4; quality 0.954 / 0.914 / 0.944 and 0.933 / 0.946 / 0.905).

        ``batch_scale``: without DP each party trains at this multiple of its share of the run's
        ``batch_size`` (``learning_rate`` 2e-3 for it; ``dp_learning_rate`` keeps SDV's 1e-3 under DP,
        whose batch the privacy plan sets). Adult, 5 Dirichlet parties, seed 0, 30 rounds: scale 1 at
        1e-3 quality 0.933, TSTR 0.879 in 141 s; scale 2 at 2e-3 0.954 / 0.878 in 68 s; scale 5 at 3e-3
        0.916 / 0.862 in 58 s; SDV's TVAE 0.838 / 0.860 in 110 s (benchmarks/RESULTS_TVAE.md).

        ``category_marginals``: an unconditional sample's one-hot spans (categories, mixture modes)
        follow the plan's released shares (post-processing, as argn's option of that name); FedAvg over
        label-skewed parties gets their levels wrong (occupation's TVComplement 0.74 without it).
        """
        return {
            "embedding_dim": 128,
            "compress_dims": [128, 128],
            "decompress_dims": [128, 128],
            "l2scale": 1e-5,
            "loss_factor": 4.0,
            "learning_rate": 2e-3,
            "dp_learning_rate": 1e-3,
            "batch_scale": 2,
            "category_marginals": True,
            "marginal_draw": "softmax",
        }

    def __init__(self, plan, options=None, *, seed: int = 0, private: bool = False) -> None:  # type: ignore[no-untyped-def]
        super().__init__(plan, options, seed=seed, private=private)
        self.data_dim = plan.output_dim
        self._softmax_spans, self._tanh_columns = activation_layout(plan)
        self._tanh = torch.from_numpy(self._tanh_columns)
        self._padded = padded_spans(self._softmax_spans, self.data_dim)
        self._span_draws = SpanDraws(self._softmax_spans)
        if self.options["marginal_draw"] not in MARGINAL_DRAWS:
            raise ConfigError(f"Model 'tvae' takes marginal_draw = one of {list(MARGINAL_DRAWS)}; got "
                              f"{self.options['marginal_draw']!r}. Fix [model.options] in the config.")

    def build_modules(self) -> Modules:
        o = self.options
        return {"encoder": Encoder(self.data_dim, tuple(o["compress_dims"]), o["embedding_dim"]),
                "decoder": SigmaDecoder(o["embedding_dim"], tuple(o["decompress_dims"]), self.data_dim)}

    def make_optimizers(self, modules: Modules) -> Optimizers:
        params = [*modules["encoder"].parameters(), *modules["decoder"].parameters()]
        rate = self.options["dp_learning_rate" if self.private else "learning_rate"]
        return {"vae": torch.optim.Adam(params, lr=rate, weight_decay=self.options["l2scale"])}

    def non_private_update(self, modules: Modules, optimizers: Optimizers, data: np.ndarray, *, epochs: float,
                           batch_size: int, rng: np.random.Generator) -> dict[str, float]:
        """The base's minibatches at ``batch_scale`` times the party's batch: half the steps, each as cheap."""
        return super().non_private_update(modules, optimizers, data, epochs=epochs,
                                          batch_size=batch_size * self.options["batch_scale"], rng=rng)

    def private_loss(self, modules: Modules, real: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Each row's negative ELBO: ``loss_factor`` × reconstruction + KL to the unit Gaussian.

        tanh values are Gaussian around tanh(output) with the learned sigma; each one-hot span is a
        categorical with the output as logits. Summed over the batch and divided by its size this
        is ctgan's TVAE loss.
        """
        mu, std, logvar = modules["encoder"](real)
        latent = mu + std * torch.randn_like(std)
        recon, sigma = modules["decoder"](latent)
        loss = torch.zeros(len(real))
        if len(self._tanh):
            t, s = self._tanh, sigma[:, self._tanh]
            loss = loss + ((real[:, t] - torch.tanh(recon[:, t])) ** 2 / 2 / s**2 + torch.log(s)).sum(dim=1)
        if self._softmax_spans:
            loss = loss + self._span_cross_entropy(recon, real)
        kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(dim=1)
        return self.options["loss_factor"] * loss + kl

    def _span_cross_entropy(self, recon: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Each row's summed cross-entropy over every one-hot span in one pass (spans padded to one width).

        A loop of one ``cross_entropy`` per span cost as much as the networks at a party's small batch.
        """
        pad = torch.full((len(recon), 1), -torch.inf)
        logits = torch.cat([recon, pad], dim=1)[:, self._padded]
        target = torch.cat([real, torch.zeros(len(real), 1)], dim=1)[:, self._padded].argmax(dim=2, keepdim=True)
        return -torch.log_softmax(logits, dim=2).gather(2, target).sum(dim=(1, 2))

    def sample(self, weights: Weights, num_rows: int, *, seed: int) -> np.ndarray:
        """Decode unit-Gaussian latents: tanh values plus sigma-scaled noise, one category per one-hot span.

        With ``category_marginals`` each one-hot span's logits are shifted so its shares follow the
        plan's released counts or mixture weights (``fedtab.models.matching``: post-processing, no new
        ε); ``marginal_draw`` "softmax" (the default) matches the softmax and draws from it, "argmax" matches
        at ``ARGMAX_TEMPERATURE`` and takes the argmax, as ctgan's TVAE decodes. Adult, 5 Dirichlet
        parties, seed 0: quality 0.795 unmatched, 0.903 argmax, 0.933 softmax; TSTR ROC-AUC 0.875 / 0.87 /
        0.882 (benchmarks/RESULTS_TVAE.md).
        """
        noise = torch_generator(seed, "sample-noise")
        out = np.zeros((num_rows, self.data_dim), dtype=np.float32)
        match = self._matcher()
        draws = numpy_rng(seed, "sample-draw") if match is not None and self.options["marginal_draw"] == "softmax" else None
        with isolated_torch_seed(seed, "sample"), torch.no_grad():
            decoder = self.load_modules(weights)["decoder"].eval()
            for start in range(0, num_rows, SAMPLE_CHUNK):
                rows = min(SAMPLE_CHUNK, num_rows - start)
                raw, sigma = decoder(torch.randn(rows, self.options["embedding_dim"], generator=noise))
                out[start:start + rows] = self._decode(raw if match is None else match(raw), sigma, noise, draws=draws)
        return out

    def _matcher(self) -> MarginalMatcher | None:
        o = self.options
        if not o["category_marginals"]:
            return None
        argmax = o["marginal_draw"] == "argmax"
        return MarginalMatcher(released_marginals(self.plan), temperature=ARGMAX_TEMPERATURE if argmax else 1.0)

    def _decode(self, raw: torch.Tensor, sigma: torch.Tensor, noise: torch.Generator, *,
                draws: np.random.Generator | None = None) -> np.ndarray:
        """Encoded rows from decoder outputs: one category per span by argmax, or drawn from the softmax (``draws``)."""
        out = np.zeros(tuple(raw.shape), dtype=np.float32)
        if len(self._tanh):
            t = self._tanh
            jitter = torch.randn(len(raw), len(t), generator=noise) * sigma[:, t]
            out[:, self._tanh_columns] = (torch.tanh(raw[:, t]) + jitter).clamp(-1, 1).numpy()
        if draws is not None:
            self._span_draws.write(raw.numpy(), draws, out)
            return out
        rows = np.arange(len(raw))
        for start, end in self._softmax_spans:
            out[rows, start + raw[:, start:end].argmax(dim=1).numpy()] = 1.0
        return out
