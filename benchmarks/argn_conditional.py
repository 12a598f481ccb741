"""Conditional sampling with argn on Adult: does fixing ``sex = Female`` keep the other columns' relations?

Fits argn once on Adult in 5 IID parties (``--order fixed`` trains with ``sex`` first; ``random``
draws a column order per batch), then scores SDMetrics' column pair trends on the Female subset:
real Female rows against (a) the Female rows of an unconditional sample and (b) a sample drawn with
``sex = Female`` fixed, as many rows as the real subset. Issue 10 asks (b) within 0.03 of (a).

    python benchmarks/argn_conditional.py --order fixed --epochs 10 --rounds 10
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from useful_tables import TABLES, quality, table_split  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--order", choices=("fixed", "random"), default="fixed")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    from fedtab import FederatedSynthesizer, FedtabConfig

    table = TABLES["adult"]
    train, _ = table.load()
    options = {"order": args.order, **({"first_columns": "sex"} if args.order == "fixed" else {})}
    config = FedtabConfig(model="argn", rounds=args.rounds, local_epochs=args.epochs / args.rounds, seed=0,
                          target=table.target, model_options=options)
    started = time.perf_counter()
    synth = FederatedSynthesizer(config, engine="local").fit(table_split(train, table, "iid", 0))
    fit_s = time.perf_counter() - started
    real = train[train["sex"] == "Female"].drop(columns="sex").reset_index(drop=True)
    unconditional = synth.sample(len(train), seed=1)
    subset = unconditional[unconditional["sex"] == "Female"].drop(columns="sex").reset_index(drop=True)
    clock = time.perf_counter()
    conditional = synth.sample(len(real), seed=2, conditions={"sex": "Female"})
    conditional_rows_per_s = len(real) / (time.perf_counter() - clock)
    assert (conditional["sex"] == "Female").all()
    result = {"order": args.order, "epochs": args.epochs, "rounds": args.rounds, "fit_s": fit_s,
              "female_share_real": float((train["sex"] == "Female").mean()),
              "female_share_unconditional": float((unconditional["sex"] == "Female").mean()),
              "pairs_unconditional_subset": quality(real, subset, table)["pairs"],
              "pairs_conditional": quality(real, conditional.drop(columns="sex"), table)["pairs"],
              "quality_unconditional_full": quality(train, unconditional, table)["quality"],
              "conditional_rows_per_s": conditional_rows_per_s, "load_average": os.getloadavg()[0]}
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
