"""Federated TVAE on Adult: 1 party and 5 IID parties, SDMetrics quality, TSTR ROC-AUC, fit time; one DP run.

Anchor: SDV TVAE central, 30 epochs: quality 0.855, TSTR ROC-AUC 0.871 (ALGORITHMS §3). Each run in its own
subprocess, engine "local" (every party in one process, one after another). TSTR: HistGradientBoosting
trained on the synthetic table, ROC-AUC on adult_test for income '>50K'.

    python benchmarks/adult_tvae.py [--runs 1:500:1 5:500:1 5:100:1 5:500:3 dp]

A run "PARTIES:BATCH:LOCAL_EPOCHS" trains 30 rounds; "dp" trains the demo federation (3 parties,
4,500 Adult-like rows) at ε = 1 with Adult's code book and, beside it, without DP, for epoch times.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from adult_federated import DEFAULT_DATA, load_adult, quality, split  # noqa: E402

ROUNDS = 30
MARKER = "## Federated TVAE: Adult"


def tstr_auc(synthetic: pd.DataFrame, test: pd.DataFrame, target: str = "income") -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    def prepared(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        x = frame.drop(columns=[target]).copy()
        for column in x.columns:
            if x[column].dtype == object or str(x[column].dtype) in ("string", "category"):
                x[column] = pd.Categorical(x[column].astype(str), categories=sorted(test[column].astype(str).unique()))
        return x, frame[target].astype(str).str.strip().str.rstrip(".").eq(">50K").to_numpy()

    x, y = prepared(synthetic)
    if y.all() or not y.any():
        return float("nan")
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0).fit(x, y)
    x_test, y_test = prepared(test)
    return float(roc_auc_score(y_test, model.predict_proba(x_test)[:, 1]))


def run_adult(data: Path, parties: int, batch: int, local_epochs: float) -> dict:
    from fedtab import FederatedSynthesizer, FedtabConfig

    train, test = load_adult(data), load_adult(data.with_name("adult_test.csv.gz"))
    tables = {"solo": train} if parties == 1 else split(train, "iid")
    config = FedtabConfig(model="tvae", rounds=ROUNDS, local_epochs=local_epochs, batch_size=batch, seed=0)
    started = time.perf_counter()
    synthesizer = FederatedSynthesizer(config, engine="local").fit(tables)
    fit_s = time.perf_counter() - started
    synthetic = synthesizer.sample(len(train))
    timings = synthesizer.state_.timings
    return {"run": f"{parties} part{'y' if parties == 1 else 'ies'}, batch {batch}, {local_epochs:g} local epoch(s)",
            **quality(train, synthetic), "tstr_auc": tstr_auc(synthetic, test), "fit_s": fit_s,
            "encoders_s": timings["encoders_s"], "training_s": timings["training_s"],
            "last_loss": synthesizer.state_.history[-1].get("loss")}


def run_dp() -> dict:
    from fedtab import FederatedSynthesizer, FedtabConfig
    from fedtab.connectors.public_domain import read_public_domain
    from fedtab.demo import demo_parties, demo_public_domain_path

    parties = {name: pd.read_parquet(path) for name, path in demo_parties().items()}
    domain = read_public_domain(demo_public_domain_path())
    out: dict = {"run": "demo federation (3 parties, 4,500 rows), 10 rounds x 1 epoch, batch 200"}
    for label, epsilon in (("dp", 1.0), ("plain", None)):
        config = FedtabConfig(model="tvae", rounds=10, local_epochs=1.0, batch_size=200, seed=0, epsilon=epsilon,
                              public_domain=domain)
        synthesizer = FederatedSynthesizer(config, engine="local").fit(parties)
        out[f"{label}_epoch_s"] = synthesizer.state_.timings["training_s"] / config.rounds
        if epsilon is not None:
            out["ledger"] = synthesizer.state_.ledger
        real = pd.concat(parties.values(), ignore_index=True)
        out[f"{label}_quality"] = quality(real, synthesizer.sample(len(real)))["quality"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--runs", nargs="*", default=["1:500:1", "5:500:1", "5:100:1", "5:500:3", "dp"])
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        if args.one == "dp":
            result = run_dp()
        else:
            parties, batch, epochs = args.one.split(":")
            result = run_adult(args.data, int(parties), int(batch), float(epochs))
        print("RESULT " + json.dumps(result))
        return
    for run in args.runs:
        started = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--one", run, "--data", str(args.data)], capture_output=True,
                             text=True)
        line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(out.stdout[-2000:], out.stderr[-3000:], flush=True)
            continue
        print(json.dumps({**json.loads(line[7:]), "wall_s": time.perf_counter() - started}), flush=True)


if __name__ == "__main__":
    main()
