"""Time per local epoch on one Adult-sized party: DP-SGD vs the plain loop (CTGAN: pair discriminator vs WGAN-GP; TVAE: the same ELBO).

One torch thread, default model options, batch 500 (DP: Poisson rate 500 / rows, so the same expected
batch and the same number of steps per epoch). Prints the figures; asserts nothing.

    python benchmarks/ctgan_dp_epoch_time.py [--data ../shared/datasets/adult_train.csv.gz] [--rows 6500] [--model tvae]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fedtab.connectors import load_party
from fedtab.models.privacy import TrainingPrivacy
from fedtab.models.registry import create_model
from fedtab.transformers import fit_plan

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "adult_train.csv.gz"


def encoded_party(path: Path, rows: int) -> tuple[object, np.ndarray]:
    frame = pd.read_csv(path, na_values=["?"], keep_default_na=True).sample(n=rows, random_state=0)
    table = load_party("party", frame.reset_index(drop=True))
    plan = fit_plan([table], seed=0)
    return plan, plan.encode(table.frame, np.random.default_rng(0))


def epoch_seconds(plan: object, data: np.ndarray, *, private: bool, batch: int, repeats: int, model_name: str = "ctgan") -> list[float]:
    model = create_model(model_name, plan, seed=0, private=private)
    weights = model.init_weights()
    privacy = TrainingPrivacy(noise_multiplier=1.0, sample_rate=batch / len(data)) if private else None
    times = []
    for round_index in range(repeats + 1):  # the first round warms up torch and Opacus
        start = time.perf_counter()
        update = model.local_update(weights, data, epochs=1.0, batch_size=batch, round_index=round_index,
                                    party="party", privacy=privacy)
        times.append(time.perf_counter() - start)
        weights = update.weights
    steps = update.metrics["steps"] if update.accountant_state is None else update.accountant_state["history"][-1]["steps"]
    print(f"  {'DP' if private else 'non-DP'}: {int(steps)} steps/epoch, "
          f"seconds per epoch {[round(t, 2) for t in times[1:]]}")
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rows", type=int, default=6500)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="ctgan")
    args = parser.parse_args()
    torch.set_num_threads(1)
    plan, data = encoded_party(args.data, args.rows)
    print(f"Adult party: {data.shape[0]} rows, {data.shape[1]} encoded columns, 1 torch thread")
    plain = statistics.median(epoch_seconds(plan, data, private=False, batch=args.batch, repeats=args.repeats, model_name=args.model))
    private = statistics.median(epoch_seconds(plan, data, private=True, batch=args.batch, repeats=args.repeats, model_name=args.model))
    print(f"median seconds per epoch: non-DP {plain:.2f}, DP {private:.2f}, ratio {private / plain:.2f}x")


if __name__ == "__main__":
    main()
