"""Noise added once (secure aggregation, each party adds σ/√(P−T)) against once per party (σ each), ε = 1 on
Adult, 5 parties (Dirichlet 0.5 over income), Adult's code book declared, model argn.

Per run: SDMetrics quality of the synthetic table; the encoders' own error (each categorical category's
released count against its true count in the pooled table, in rows: mean absolute error and the total
variation distance of the released frequencies); the encoder fit's time; and, for secure runs, what SecAgg+
took per statistics stage (seconds, bytes each way). Each run in its own subprocess, one at a time.

    python benchmarks/adult_secagg.py [--runs 3] [--rounds 1] [--local-epochs 1] [--engine local]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from adult_federated import DEFAULT_DATA, load_adult, quality, split  # noqa: E402


def category_error(plan, real) -> dict[str, float]:
    """Released category counts against the pooled table's true counts (declared categories, missing bucket aside)."""
    errors, distances = [], []
    for column in plan.columns:
        if not column.vocabulary or column.name not in real.columns:
            continue
        truth = real[column.name].astype("string").value_counts()
        names = [v for v in column.vocabulary if not v.startswith("<")]
        released = np.array([c for v, c in zip(column.vocabulary, column.counts) if not v.startswith("<")], dtype=float)
        true = np.array([float(truth.get(v, 0)) for v in names])
        errors.extend(np.abs(released - true))
        p, q = np.clip(released, 0, None), true
        distances.append(0.5 * np.abs(p / max(p.sum(), 1e-9) - q / q.sum()).sum())
    return {"count_mae": float(np.mean(errors)), "count_tv": float(np.mean(distances))}


def run_one(secure: bool, seed: int, data: Path, rounds: int, local_epochs: float, engine: str) -> dict:
    from fedtab import FederatedSynthesizer, FedtabConfig
    from fedtab.connectors.public_domain import read_public_domain
    from fedtab.demo import demo_public_domain_path

    train = load_adult(data)
    parties = split(train, "dirichlet", seed=0)
    config = FedtabConfig(model="argn", rounds=rounds, local_epochs=local_epochs, seed=seed, epsilon=1.0,
                          target="income", public_domain=read_public_domain(demo_public_domain_path()),
                          secure_aggregation=secure)
    stages: list[dict] = []

    def progress(stage: str, done: int, total: int, record: dict) -> None:
        if stage == "encoders":
            stages.append({k: float(v) for k, v in record.items()})

    started = time.perf_counter()
    synthesizer = FederatedSynthesizer(config, engine=engine).fit(parties, progress=progress)
    fit_s = time.perf_counter() - started
    synthetic = synthesizer.sample(len(train))
    ledger = synthesizer.state_.ledger
    return {
        "noise": "once (secure aggregation)" if secure else "per party",
        "seed": seed,
        **quality(train, synthetic),
        **category_error(synthesizer.state_.plan, train),
        "encoders_s": synthesizer.state_.timings["encoders_s"],
        "fit_s": fit_s,
        "stages": stages,
        "epsilon": max(p["epsilon"] for p in ledger["parties"]),
        "mechanisms": sorted({m["mechanism"] for p in ledger["parties"] for m in p["mechanisms"]}),
        "encoder_sigma": sorted({s for p in ledger["parties"] for m in p["mechanisms"] if m["mechanism"].startswith("encoder")
                                 for s in m["noise_multipliers"]}),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--local-epochs", type=float, default=1.0)
    parser.add_argument("--engine", default="local")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        mode, seed = args.one.split(":")
        row = run_one(mode == "secure", int(seed), args.data, args.rounds, args.local_epochs, args.engine)
        print("RESULT " + json.dumps(row), flush=True)
        return
    for seed in range(args.runs):
        for mode in ("plain", "secure"):
            command = [sys.executable, __file__, "--one", f"{mode}:{seed}", "--rounds", str(args.rounds),
                       "--local-epochs", str(args.local_epochs), "--engine", args.engine, "--data", str(args.data)]
            out = subprocess.run(command, capture_output=True, text=True)
            lines = [line[7:] for line in out.stdout.splitlines() if line.startswith("RESULT ")]
            print(lines[0] if lines else f"FAILED {mode}:{seed}: {out.stderr[-2000:]}", flush=True)


if __name__ == "__main__":
    main()
