"""Sampling throughput of every fedtab model beside SDV's CTGANSynthesizer, in one process with the same threads.

Each model is briefly trained on Adult (sampling cost does not depend on training), then the models
sample each size in turns, ``--repeats`` times; medians compare. Rows/s include decoding into the
real schema and spelling (what ``FederatedSynthesizer.sample`` returns). ``--stages`` adds one timed
run per model split into the network, ``plan.decode`` and ``spell``.

    python benchmarks/sampling_speed.py [--rows 32561 200000] [--repeats 3] [--models argn,ctgan,tvae,fedtabdiff]
        [--threads 1] [--stages] [--results benchmarks/RESULTS_SAMPLING.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from adult_federated import DEFAULT_DATA, detect_metadata, load_adult, split  # noqa: E402

SDV = "SDV CTGAN"


def fitted(models: list[str], data: Path) -> dict[str, Callable[[int], object]]:
    """name -> draw(rows) for SDV CTGAN (1 epoch) and each fedtab model (1 round of 0.2 local epochs)."""
    from fedtab import FederatedSynthesizer, FedtabConfig
    from sdv.single_table import CTGANSynthesizer

    frame = load_adult(data)
    parties = split(frame, "iid")
    torch.manual_seed(0)
    sdv = CTGANSynthesizer(detect_metadata(frame), epochs=1)
    sdv.fit({"adult": frame})
    draws: dict[str, Callable[[int], object]] = {SDV: sdv.sample}
    for model in models:
        config = FedtabConfig(model=model, rounds=1, local_epochs=0.2, seed=0)
        draws[f"fedtab {model}"] = FederatedSynthesizer(config, engine="local").fit(parties).sample
        if model == "argn":  # what the network and draws cost without the released-marginal matching
            unmatched = {"category_marginals": False, "target_marginal": False}
            config = FedtabConfig(model=model, rounds=1, local_epochs=0.2, seed=0, model_options=unmatched)
            draws["fedtab argn, marginals unmatched"] = FederatedSynthesizer(config, engine="local").fit(parties).sample
    return draws


def stages(synthesizer_sample: Callable[[int], object], rows: int) -> dict[str, float]:
    """Seconds in the network (``model.sample``), ``plan.decode`` and ``spell`` for one draw of ``rows``."""
    from fedtab.models.registry import create_model
    from fedtab.rng import numpy_rng
    from fedtab.sampler import spell
    from fedtab.threads import single_torch_thread

    state = synthesizer_sample.__self__.state_  # type: ignore[attr-defined]
    model = create_model(state.config.model, state.plan, state.config.model_options, seed=state.config.seed)
    started = time.perf_counter()
    with single_torch_thread():
        encoded = model.sample(state.weights, rows, seed=1)
    network = time.perf_counter()
    frame = state.plan.decode(encoded, numpy_rng(1, "decode"))
    decoded = time.perf_counter()
    spell(frame, state.plan.schema)
    return {"network": network - started, "decode": decoded - network, "spell": time.perf_counter() - decoded}


def timed(draws: dict[str, Callable[[int], object]], rows: int, repeats: int) -> dict[str, float]:
    """Median rows/s per contender, contenders taking turns so load changes hit all alike."""
    times: dict[str, list[float]] = {name: [] for name in draws}
    for _ in range(repeats):
        for name, draw in draws.items():
            started = time.perf_counter()
            draw(rows)
            times[name].append(time.perf_counter() - started)
    return {name: rows / statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rows", type=int, nargs="+", default=[32_561, 200_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="argn,ctgan,tvae,fedtabdiff")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for SDV (fedtab samples on one)")
    parser.add_argument("--stages", action="store_true", help="also split one draw per model into its stages")
    parser.add_argument("--results", type=Path, help="write the figures as a markdown table here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    draws = fitted([m.strip() for m in args.models.split(",") if m.strip()], args.data)
    lines = [f"torch threads {torch.get_num_threads()}, load average before {load_before[0]:.1f} / {load_before[1]:.1f}",
             "", "| rows | contender | rows/s (median of %d) | / SDV CTGAN |" % args.repeats, "|---|---|---|---|"]
    for rows in args.rows:
        rates = timed(draws, rows, args.repeats)
        lines += [f"| {rows:,} | {name} | {rate:,.0f} | {rate / rates[SDV]:.2f}x |" for name, rate in rates.items()]
        print("\n".join(lines[-len(rates):]), flush=True)
    if args.stages:
        rows = args.rows[0]
        lines += ["", f"Stages of one draw of {rows:,} rows (seconds):", "",
                  "| contender | network | decode | spell |", "|---|---|---|---|"]
        for name, draw in draws.items():
            if name != SDV:
                s = stages(draw, rows)
                lines.append(f"| {name} | {s['network']:.3f} | {s['decode']:.3f} | {s['spell']:.3f} |")
    load_after = os.getloadavg()
    lines += ["", f"load average after {load_after[0]:.1f} / {load_after[1]:.1f} (1 / 5 min)"]
    print("\n".join(lines))
    if args.results:
        args.results.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
