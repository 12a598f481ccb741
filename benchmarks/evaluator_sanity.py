"""Issue 3's acceptance figures on the full Adult data, centrally and federated over five parties.

Run: ``python benchmarks/evaluator_sanity.py [--json out.json] [--report-dir DIR]``. Four synthetic
tables — a copy of train, a 2 % jittered copy, one half of adult_test (the other half is the
holdout), and train with every column shuffled on its own — are each evaluated centrally and as a
federation of five parties (train and holdout dealt out row by row at random), then printed side
by side.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from evaluator_scenarios import scenarios
from fedtab.evaluators import EvaluationReport, aggregate, build_context, evaluate, party_scores

PARTIES = 5
COLUMNS = [
    ("scenario", 27), ("mode", 9), ("AUC best", 8), ("AUC dist", 8), ("AUC DOMIAS", 10), ("TPR@1%", 7), ("TPR@.1%", 7),
    ("DCR share", 9), ("NNDR", 6), ("copies", 6), ("shapes", 6), ("pairs", 6), ("TSTR AUC", 8), ("TRTR AUC", 8),
    ("rel util", 8), ("fidelity", 8), ("utility", 7), ("risk", 6), ("secs", 5),
]


def federated(train: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame, seed: int) -> EvaluationReport:
    rng = np.random.default_rng(seed)
    train_party, holdout_party = rng.integers(0, PARTIES, len(train)), rng.integers(0, PARTIES, len(holdout))
    context = build_context(synthetic, target="income", seed=seed)
    scores = [
        party_scores(train[train_party == k].reset_index(drop=True), synthetic, context=context,
                     holdout_rows=holdout[holdout_party == k].reset_index(drop=True), party=f"party{k}")
        for k in range(PARTIES)
    ]
    return aggregate(scores, context=context)


def row(name: str, report: EvaluationReport, seconds: float) -> dict[str, object]:
    p, f, u = report.privacy, report.fidelity, report.utility
    return {
        "scenario": name, "mode": report.mode, "AUC best": p.attack_auc, "AUC dist": p.attacks[0].auc, "AUC DOMIAS": p.attacks[1].auc,
        "TPR@1%": p.attack_tpr_at_1pct_fpr, "TPR@.1%": max(a.tpr_at_01pct_fpr for a in p.attacks), "DCR share": p.dcr_share,
        "NNDR": p.nndr_train, "copies": p.exact_copies, "shapes": f.column_shapes, "pairs": f.column_pair_trends,
        "TSTR AUC": float(np.mean([m.tstr["roc_auc"] for m in u.models])), "TRTR AUC": float(np.mean([m.trtr["roc_auc"] for m in u.models])),
        "rel util": u.relative_utility, "fidelity": report.verdict("fidelity").level, "utility": report.verdict("utility").level,
        "risk": report.verdict("privacy").level, "secs": seconds,
    }


def show(rows: list[dict[str, object]]) -> None:
    print(" ".join(name.rjust(width) for name, width in COLUMNS))
    for r in rows:
        cells = [f"{r[name]:.3f}" if isinstance(r[name], float) and name != "secs" else f"{r[name]:.0f}" if name == "secs" else str(r[name]) for name, _ in COLUMNS]
        print(" ".join(cell.rjust(width)[:width] if i > 1 else cell.ljust(width)[:width] for i, (cell, (_, width)) in enumerate(zip(cells, COLUMNS, strict=True))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, help="also write the table as JSON here")
    parser.add_argument("--report-dir", type=Path, help="also write each central HTML report here")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = []
    for name, (train, synthetic, holdout) in scenarios(args.seed).items():
        started = time.perf_counter()
        central = evaluate(train, synthetic, holdout=holdout, target="income", seed=args.seed)
        rows.append(row(name, central, time.perf_counter() - started))
        started = time.perf_counter()
        rows.append(row(name, federated(train, synthetic, holdout, args.seed), time.perf_counter() - started))
        if args.report_dir:
            args.report_dir.mkdir(parents=True, exist_ok=True)
            central.to_html(args.report_dir / f"{name.split()[0].replace('%', 'pct')}.html")
        print(f"done: {name}", flush=True)
    show(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
