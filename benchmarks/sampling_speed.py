"""Sampling throughput, fedtab CTGAN vs SDV's CTGANSynthesizer, in one process with the same threads.

Both models are briefly trained on Adult (sampling cost does not depend on training), then each
samples the table's size in turns, ``--repeats`` times; the medians compare. Rows/s include
decoding into the real schema.

    python benchmarks/sampling_speed.py [--rows 32561] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from adult_federated import DEFAULT_DATA, detect_metadata, load_adult, split  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=32_561)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", default="auto", help="fedtab CTGAN option sample_precision")
    args = parser.parse_args()
    from fedtab import FederatedSynthesizer, FedtabConfig
    from sdv.single_table import CTGANSynthesizer

    frame = load_adult(DEFAULT_DATA)
    torch.manual_seed(0)
    sdv = CTGANSynthesizer(detect_metadata(frame), epochs=1)
    sdv.fit({"adult": frame})
    config = FedtabConfig(model="ctgan", rounds=1, model_options={"sample_precision": args.precision})
    fedtab = FederatedSynthesizer(config, engine="local").fit(split(frame, "iid"))
    times: dict[str, list[float]] = {"SDV CTGAN": [], "fedtab CTGAN": []}
    for _ in range(args.repeats):
        for name, draw in (("SDV CTGAN", lambda: sdv.sample(args.rows)), ("fedtab CTGAN", lambda: fedtab.sample(args.rows))):
            started = time.perf_counter()
            draw()
            times[name].append(time.perf_counter() - started)
    rates = {name: args.rows / statistics.median(values) for name, values in times.items()}
    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}, precision {args.precision}")
    for name, rate in rates.items():
        print(f"{name}: {rate:,.0f} rows/s")
    print(f"fedtab / SDV: {rates['fedtab CTGAN'] / rates['SDV CTGAN']:.1f}x")


if __name__ == "__main__":
    main()
