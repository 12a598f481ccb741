"""fedtab on Adult split into 5 parties (IID, Dirichlet over income, by education) vs SDV CTGAN central.

Every contender runs in its own subprocess on the same machine, one after another, so wall times and
peak memory compare fairly. Prints a side-by-side table and writes benchmarks/RESULTS.md.

    python benchmarks/adult_federated.py [--data ../shared/datasets/adult_train.csv.gz] [--epochs 30]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
_CANDIDATES = [root / "shared" / "datasets" / "adult_train.csv.gz" for root in HERE.parents[1:3]]
DEFAULT_DATA = next((path for path in _CANDIDATES if path.exists()), _CANDIDATES[0])
"""shared/ beside the repository (a checkout) or beside the worktrees' folder (a worktree)."""
SPLITS = ("iid", "dirichlet", "education")
PARTIES = 5


def load_adult(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, na_values=["?"], keep_default_na=True)


def split(frame: pd.DataFrame, how: str, seed: int = 0, *, label: str = "income", group: str | None = "education",
          parties: int = PARTIES) -> dict[str, pd.DataFrame]:
    """IID, Dirichlet(0.5) over ``label``'s classes, or whole ``group`` categories per party (greedy by size)."""
    rng = np.random.default_rng(seed)
    if how == "iid":
        owner = rng.integers(parties, size=len(frame))
    elif how == "dirichlet":
        owner = np.empty(len(frame), dtype=int)
        for value in frame[label].unique():
            rows = np.flatnonzero(frame[label].to_numpy() == value)
            shares = rng.dirichlet([0.5] * parties)
            owner[rows] = rng.choice(parties, size=rows.size, p=shares)
    elif how == "education" or how == "group":
        counts = frame[group].value_counts()
        loads = np.zeros(parties)
        assignment = {}
        for category, count in counts.items():  # greedy: biggest groups first, to the lightest party
            target = int(loads.argmin())
            assignment[category] = target
            loads[target] += count
        owner = frame[group].map(assignment).to_numpy()
    else:
        raise ValueError(how)
    return {f"party_{k}": frame[owner == k].reset_index(drop=True) for k in range(parties)}


def detect_metadata(frame: pd.DataFrame):  # noqa: ANN201 - an sdv Metadata
    from sdv.metadata import Metadata

    return Metadata.detect_from_dataframes({"adult": frame}, infer_keys=None)


def quality(real: pd.DataFrame, synthetic: pd.DataFrame) -> dict[str, float]:
    from sdmetrics.reports.single_table import QualityReport

    metadata = detect_metadata(real).to_dict()["tables"]["adult"]
    report = QualityReport()
    report.generate(real, synthetic[real.columns], metadata, verbose=False)
    props = report.get_properties().set_index("Property")["Score"]
    return {"quality": float(report.get_score()), "shapes": float(props["Column Shapes"]), "pairs": float(props["Column Pair Trends"])}


def run_fedtab(data: Path, how: str, epochs: int, rounds: int) -> dict:
    from fedtab import FederatedSynthesizer, FedtabConfig

    frame = load_adult(data)
    parties = split(frame, how)
    config = FedtabConfig(model="ctgan", rounds=rounds, local_epochs=epochs / rounds, seed=0)
    started = time.perf_counter()
    synthesizer = FederatedSynthesizer(config).fit(parties)
    fit_s = time.perf_counter() - started
    t = time.perf_counter()
    synthetic = synthesizer.sample(len(frame))
    sample_s = time.perf_counter() - t
    timings = synthesizer.state_.timings
    return {
        "contender": f"fedtab 5 parties, {how}",
        "fit_s": fit_s,
        "encoders_s": timings["encoders_s"],
        "training_s": timings["training_s"],
        "startup_s": fit_s - timings["encoders_s"] - timings["training_s"],
        "plan_rounds": timings["plan_rounds"],
        "sample_rows_per_s": len(frame) / sample_s,
        "party_rows": {k: len(v) for k, v in parties.items()},
        **quality(frame, synthetic),
    }


def run_sdv(data: Path, epochs: int) -> dict:
    import torch
    from sdv.single_table import CTGANSynthesizer

    torch.manual_seed(0)  # SDV has no seed argument; this subprocess owns its global state
    frame = load_adult(data)
    metadata = detect_metadata(frame)
    synthesizer = CTGANSynthesizer(metadata, epochs=epochs)
    started = time.perf_counter()
    synthesizer.fit({"adult": frame})  # SDV 2 takes and returns {table name: frame}
    fit_s = time.perf_counter() - started
    t = time.perf_counter()
    synthetic = synthesizer.sample(len(frame))["adult"]
    sample_s = time.perf_counter() - t
    return {"contender": f"SDV CTGANSynthesizer central, {epochs} epochs", "fit_s": fit_s, "sample_rows_per_s": len(frame) / sample_s, **quality(frame, synthetic)}


def run_ctgan_transformer(data: Path) -> dict:
    from ctgan.data_transformer import DataTransformer

    frame = load_adult(data)
    discrete = [c for c in frame.columns if frame[c].dtype == object]
    started = time.perf_counter()
    DataTransformer().fit(frame.fillna({c: "?" for c in discrete}), discrete)
    return {"contender": "ctgan DataTransformer.fit (central encoders)", "encoders_s": time.perf_counter() - started}


def child(args: argparse.Namespace) -> None:
    if args.one == "sdv":
        result = run_sdv(args.data, args.epochs)
    elif args.one == "ctgan-transformer":
        result = run_ctgan_transformer(args.data)
    else:
        result = run_fedtab(args.data, args.one, args.epochs, args.rounds)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["largest_worker_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def parent(args: argparse.Namespace) -> None:
    contenders = ["sdv", "ctgan-transformer", *args.splits]
    results = []
    for name in contenders:
        command = [sys.executable, __file__, "--one", name, "--data", str(args.data), "--epochs", str(args.epochs), "--rounds", str(args.rounds)]
        print("running", name, flush=True)
        out = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT ")), None)
        if line is None:
            print(out.stdout[-3000:], out.stderr[-3000:])
            raise SystemExit(f"{name} failed")
        results.append(json.loads(line[len("RESULT "):]))
        print(json.dumps(results[-1]), flush=True)
    write_results(results, args)


def write_results(results: list[dict], args: argparse.Namespace) -> None:
    sdv = next(r for r in results if r["contender"].startswith("SDV"))
    encoders = next(r for r in results if r["contender"].startswith("ctgan DataTransformer"))
    header = "| contender | quality | shapes | pairs | fit s | encoders s | training s | fit / SDV | encoder speed-up | sample rows/s | sample / SDV | peak RSS MB |"
    lines = [header, "|" + "---|" * 12]
    for r in results:
        if "quality" not in r:
            continue
        lines.append(
            f"| {r['contender']} | {r['quality']:.3f} | {r['shapes']:.3f} | {r['pairs']:.3f} | {r['fit_s']:.1f} | "
            f"{r.get('encoders_s', float('nan')):.2f} | {r.get('training_s', float('nan')):.1f} | {r['fit_s'] / sdv['fit_s']:.2f}× | "
            f"{encoders['encoders_s'] / r['encoders_s'] if 'encoders_s' in r else float('nan'):.1f}× | {r['sample_rows_per_s']:,.0f} | "
            f"{r['sample_rows_per_s'] / sdv['sample_rows_per_s']:.1f}× | {r['peak_rss_mb']:.0f} (+worker {r['largest_worker_rss_mb']:.0f}) |"
        )
    table = "\n".join(lines)
    text = f"""# Benchmark: Adult, 5 parties, vs SDV CTGAN central

Command: `python benchmarks/adult_federated.py --epochs {args.epochs} --rounds {args.rounds}` on this machine
(2 cores, no GPU), {time.strftime('%Y-%m-%d')}. Every contender runs in its own subprocess, one after another.
Quality is SDMetrics' QualityReport against the full training table (32,561 rows); fedtab trains
{args.epochs} epochs' worth of local training as {args.rounds} rounds × {args.epochs / args.rounds:g} local epochs.
ctgan's `DataTransformer.fit` on the same rows took {encoders['encoders_s']:.1f} s (the encoder baseline).
fit s for fedtab includes starting Flower's simulation engine (Ray) and its workers.

{table}
"""
    results = HERE / "RESULTS.md"
    kept = ""  # sections other benchmarks wrote (e.g. the DP one) stay
    if results.exists() and "\n## " in results.read_text():
        kept = "\n## " + results.read_text().split("\n## ", 1)[1]
    results.write_text(text + kept)
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--splits", nargs="*", default=list(SPLITS))
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    child(args) if args.one else parent(args)


if __name__ == "__main__":
    main()
