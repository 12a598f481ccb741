"""What secure aggregation of the training updates costs a round, and whether quality holds: Adult, 5 parties
(Dirichlet 0.5 over income), ε = 1, Adult's code book declared, model argn; plain against --secure-aggregation.

Per run: SDMetrics quality; per training round its wall time at the server (between two progress reports) and
the bytes each way (Flower's serialized sizes, summed over parties; a secure round's four exchanges together).
Each run in its own subprocess, one at a time.

    python benchmarks/adult_secure_fedavg.py [--runs 2] [--rounds 3] [--local-epochs 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from adult_federated import DEFAULT_DATA, load_adult, quality, split  # noqa: E402


def run_one(secure: bool, seed: int, data: Path, rounds: int, local_epochs: float) -> dict:
    from fedtab import FederatedSynthesizer, FedtabConfig
    from fedtab.connectors.public_domain import read_public_domain
    from fedtab.demo import demo_public_domain_path

    train = load_adult(data)
    parties = split(train, "dirichlet", seed=0)
    config = FedtabConfig(model="argn", rounds=rounds, local_epochs=local_epochs, seed=seed, epsilon=1.0, target="income",
                          public_domain=read_public_domain(demo_public_domain_path()), secure_aggregation=secure)
    marks: list[float] = []
    records: list[dict] = []

    def progress(stage: str, done: int, total: int, record: dict) -> None:
        marks.append(time.perf_counter())
        if stage == "training":
            records.append({"round_s": marks[-1] - marks[-2], "sent": float(record.get("bytes_sent", 0.0)),
                            "received": float(record.get("bytes_received", 0.0)), "parties": float(record["parties"])})

    synthesizer = FederatedSynthesizer(config, engine="local").fit(parties, progress=progress)
    synthetic = synthesizer.sample(len(train))
    return {"training": "secure sum" if secure else "plain", "seed": seed, **quality(train, synthetic), "rounds": records,
            "training_s": synthesizer.state_.timings["training_s"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--local-epochs", type=float, default=1.0)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        mode, seed = args.one.split(":")
        print("RESULT " + json.dumps(run_one(mode == "secure", int(seed), args.data, args.rounds, args.local_epochs)), flush=True)
        return
    for seed in range(args.runs):
        for mode in ("plain", "secure"):
            command = [sys.executable, __file__, "--one", f"{mode}:{seed}", "--rounds", str(args.rounds),
                       "--local-epochs", str(args.local_epochs), "--data", str(args.data)]
            out = subprocess.run(command, capture_output=True, text=True)
            lines = [line[7:] for line in out.stdout.splitlines() if line.startswith("RESULT ")]
            print(lines[0] if lines else f"FAILED {mode}:{seed}: {out.stderr[-2000:]}", flush=True)


if __name__ == "__main__":
    main()
