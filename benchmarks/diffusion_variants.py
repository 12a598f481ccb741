"""FedTabDiff choices measured on Adult, one party (central): masked vs Gaussian-on-one-hot categoricals, sizes, steps.

``--variant gaussian`` is the FedTabDiff paper's choice: categoricals as one-hots (±1) in the same
Gaussian diffusion as the numericals, decoded by argmax; ``masked`` is the plugin as shipped. One
torch thread; prints one line of quality, TSTR, fit and sampling time per run; asserts nothing.

    python benchmarks/diffusion_variants.py --variant masked --epochs 30 --options '{"target": "income"}'
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import useful_tables as ut  # noqa: E402

from fedtab.connectors import load_party  # noqa: E402
from fedtab.models.base import Modules  # noqa: E402
from fedtab.models.diffusion import Z_LIMIT, Denoiser, FedTabDiff, signal_level  # noqa: E402
from fedtab.models.registry import create_model  # noqa: E402
from fedtab.transformers import fit_plan  # noqa: E402


class GaussianOneHot(FedTabDiff):
    """FedTabDiff with every categorical's one-hot (as ±1) in the Gaussian diffusion instead of masked."""

    @property
    def width(self) -> int:
        return len(self.numeric) + sum(t.cardinality for t in self.tokens)

    def build_modules(self) -> Modules:
        o = self.options
        classes = self.target.cardinality if self.target is not None else 0
        return {"denoiser": Denoiser(self.width, self.width, classes, list(o["hidden_dims"]), o["embedding_dim"])}

    def private_loss(self, modules, real, rng):  # type: ignore[no-untyped-def]
        z0, indices, target = (None if a is None else torch.from_numpy(a) for a in self.features(real.numpy(), rng))
        x0 = torch.cat([z0] + [F.one_hot(indices[:, i], t.cardinality) * 2.0 - 1 for i, t in enumerate(self.tokens)], 1)
        t = torch.rand(len(real))
        level = signal_level(t)[:, None]
        noise = torch.randn_like(x0)
        predicted = modules["denoiser"](level.sqrt() * x0 + (1 - level).sqrt() * noise, t, self._label(target, real.dtype))
        return ((predicted - noise) ** 2).sum(dim=1)

    def _denoise(self, network, rows, target, noise):  # type: ignore[no-untyped-def]
        x = torch.randn(rows, self.width, generator=noise)
        label = self._label(target, x.dtype)
        times = torch.linspace(1.0, 0.0, self.steps + 1)
        for t, s in zip(times[:-1], times[1:]):
            eps = network(x, torch.full((rows,), float(t)), label)
            level_t, level_s = signal_level(t), signal_level(s) if s > 0 else torch.tensor(1.0)
            clean = ((x - (1 - level_t).sqrt() * eps) / level_t.sqrt()).clamp(-Z_LIMIT, Z_LIMIT)
            eps = (x - level_t.sqrt() * clean) / (1 - level_t).sqrt()
            x = level_s.sqrt() * clean + (1 - level_s).sqrt() * eps
        d, start, indices = len(self.numeric), len(self.numeric), []
        for token in self.tokens:
            indices.append(x[:, start:start + token.cardinality].argmax(dim=1))
            start += token.cardinality
        stacked = torch.stack(indices, 1) if indices else torch.zeros(rows, 0, dtype=torch.long)
        return x[:, :d].numpy(), stacked.numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", choices=("masked", "gaussian"), default="masked")
    parser.add_argument("--epochs", type=float, default=30)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--options", default="{}")
    parser.add_argument("--steps", type=lambda s: [int(x) for x in s.split(",")], default=[50],
                        help="sampling steps to try on the same trained weights")
    args = parser.parse_args()
    torch.set_num_threads(1)
    table = ut.TABLES["adult"]
    train, test = table.load()
    party = load_party("central", train)
    plan = fit_plan([party], seed=0)
    data = plan.encode(party.frame, np.random.default_rng(0))
    options = json.loads(args.options)
    model = GaussianOneHot(plan, options, seed=0) if args.variant == "gaussian" else create_model("fedtabdiff", plan, options)
    started = time.perf_counter()
    update = model.local_update(model.init_weights(), data, epochs=args.epochs, batch_size=args.batch, round_index=0,
                                party="central")
    fit_s = time.perf_counter() - started
    for steps in args.steps:
        model.steps = steps
        clock = time.perf_counter()
        synthetic = plan.decode(model.sample(update.weights, len(train), seed=1), np.random.default_rng(0))
        sample_s = time.perf_counter() - clock
        q, u = ut.quality(train, synthetic, table), ut.utility(train, synthetic, test, table)
        print(f"{args.variant} {json.dumps(options)} epochs {args.epochs:g} batch {args.batch} steps {steps}: quality "
              f"{q['quality']:.3f} (shapes {q['shapes']:.3f}, pairs {q['pairs']:.3f}, worst TV {q['worst_tv']:.3f} "
              f"{q['worst_tv_column']}), TSTR AUC GB {u['tstr_auc_gb']:.3f} F1 {u['tstr_f1_gb']:.3f} LR "
              f"{u['tstr_auc_lr']:.3f}; zeros cap. gain {(synthetic['capital-gain'] == 0).mean():.3f}; fit {fit_s:.0f} s, "
              f"sampling {len(train) / sample_s:,.0f} rows/s; load {os.getloadavg()[0]:.1f}", flush=True)

if __name__ == "__main__":
    main()
