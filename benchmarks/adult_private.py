"""fedtab under record-level DP on Adult, 5 parties (Dirichlet 0.5 over income): ε ∈ {1, 3, 10} and no DP.

For each budget: SDMetrics quality, TSTR F1 (gradient boosting, positive class '>50K', tested on
adult_test, next to TRTR), the evaluator's strongest membership attack AUC (train vs adult_test as
the holdout), training time per epoch. Each run in its own subprocess; appends to benchmarks/RESULTS.md.

    python benchmarks/adult_private.py [--epsilons 1 3 10 none] [--runs none:public 1:public 1]
    python benchmarks/adult_private.py --model argn --target --epochs 10 --rounds 10 --runs 1:public 3:public
    python benchmarks/adult_private.py --model argn --rows 9000 --parties 3 --epochs 10 --rounds 10 --runs 1

A run "EPS:public" declares Adult's code book (fedtab/data/demo/public_domain.toml) as the public domain.
``--model`` picks the plugin (the config's default otherwise), ``--target`` declares ``income`` to it,
``--rows``/``--parties`` take a seeded sample of the training rows and split it into fewer parties
(quality, utility and the attack are then measured against those rows), ``--engine local`` runs
every party in one process (the same results as Flower's simulation, without Ray).
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from adult_federated import DEFAULT_DATA, detect_metadata, load_adult, quality, split  # noqa: E402

MARKER = "## Differential privacy: Adult, 5 parties, Dirichlet 0.5"


def run_one(epsilon: float | None, data: Path, rounds: int, public: bool = False,
            args: argparse.Namespace | None = None) -> dict:
    from fedtab import FederatedSynthesizer, FedtabConfig
    from fedtab.connectors.public_domain import read_public_domain
    from fedtab.demo import demo_public_domain_path
    from fedtab.evaluators import evaluate

    train = load_adult(data)
    test = load_adult(data.with_name("adult_test.csv.gz"))
    if args is not None and args.rows is not None:
        train = train.sample(n=args.rows, random_state=0).reset_index(drop=True)
    domain = read_public_domain(demo_public_domain_path()) if public else {}
    config = FedtabConfig(rounds=rounds, local_epochs=(args.epochs if args else 30) / rounds, seed=0, epsilon=epsilon,
                          public_domain=domain, **_chosen(args))
    started = time.perf_counter()
    parties = split(train, "dirichlet", parties=args.parties) if args else split(train, "dirichlet")
    synthesizer = FederatedSynthesizer(config, engine=args.engine if args else "simulation").fit(parties)
    fit_s = time.perf_counter() - started
    synthetic = synthesizer.sample(len(train))
    report = evaluate(train, synthetic, holdout=test, target="income", seed=0)
    boosting = next(m for m in report.utility.models if "boost" in m.model.lower())
    ledger = synthesizer.state_.ledger
    decoded = plan_decode(synthesizer.state_.plan, train) if args is not None and args.plan_decode else {}
    return {
        **decoded,
        "model": config.model,
        "epsilon": "none" if epsilon is None else epsilon,
        "domain": "code book" if public else "inferred",
        "spent": None if ledger is None else max(p["epsilon"] for p in ledger["parties"]),
        **quality(train, synthetic),
        "tstr_auc": boosting.tstr.get("roc_auc"),
        "tstr_f1": boosting.tstr.get("f1_positive"),
        "trtr_f1": boosting.trtr.get("f1_positive"),
        "attack_auc": report.privacy.attack_auc,
        "dcr_share": report.privacy.dcr_share,
        "fit_s": fit_s,
        "epoch_s": synthesizer.state_.timings["training_s"] / (args.epochs if args else 30),
        "notes": len(synthesizer.state_.plan.notes),
    }


def plan_decode(plan, train) -> dict:  # noqa: ANN001 - a TransformPlan and the real rows
    """Quality of the real rows passed through the plan alone (encode, decode): what the encoder releases cap."""
    import numpy as np
    from sdmetrics.reports.single_table import QualityReport

    from fedtab.connectors import load_party

    frame = load_party("all", train).frame
    decoded = plan.decode(plan.encode(plan.imputed(frame), np.random.default_rng(0)), np.random.default_rng(0))
    report = QualityReport()
    report.generate(train, decoded[train.columns], detect_metadata(train).to_dict()["tables"]["adult"], verbose=False)
    shapes = report.get_details("Column Shapes").sort_values("Score")
    props = report.get_properties().set_index("Property")["Score"]
    return {"decode_quality": float(report.get_score()), "decode_shapes": float(props["Column Shapes"]),
            "decode_pairs": float(props["Column Pair Trends"]),
            "decode_worst": {r.Column: round(float(r.Score), 3) for r in shapes.head(6).itertuples()},
            "plan_notes": [str(n)[:300] for n in plan.notes]}


def _chosen(args: argparse.Namespace | None) -> dict:
    """The model and target asked for on the command line; nothing, so the config's defaults hold."""
    if args is None:
        return {}
    return {**({"model": args.model} if args.model else {}), **({"target": "income"} if args.target else {}),
            **json.loads(args.config)}


def _child_flags(args: argparse.Namespace) -> list[str]:
    return ["--data", str(args.data), "--rounds", str(args.rounds), "--epochs", str(args.epochs),
            "--parties", str(args.parties), "--engine", args.engine, "--config", args.config,
            *(["--model", args.model] if args.model else []), *(["--rows", str(args.rows)] if args.rows else []),
            *(["--target"] if args.target else []), *(["--plan-decode"] if args.plan_decode else [])]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--runs", nargs="*", default=["none:public", "10:public", "3:public", "1:public", "1"],
                        help="EPS or EPS:public (EPS a number or none)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--epochs", type=float, default=30, help="epochs' worth of training (rounds × local epochs)")
    parser.add_argument("--model", default=None, help="the plugin to run (the config's default model otherwise)")
    parser.add_argument("--target", action="store_true", help="declare income as the target")
    parser.add_argument("--rows", type=int, default=None, help="a seeded sample of this many training rows")
    parser.add_argument("--parties", type=int, default=5)
    parser.add_argument("--engine", choices=("simulation", "local"), default="simulation")
    parser.add_argument("--config", default="{}", help="extra FedtabConfig fields as JSON (experiments)")
    parser.add_argument("--plan-decode", action="store_true", help="also score the real rows decoded by the plan")
    parser.add_argument("--results", default="RESULTS.md", help="file in benchmarks/ whose section to write; - prints only")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--from-log", type=Path, default=None, help="rewrite the table from a log of an earlier run")
    args = parser.parse_args()
    if args.one is not None:
        eps, _, public = args.one.partition(":")
        print("RESULT " + json.dumps(run_one(None if eps == "none" else float(eps), args.data, args.rounds, public == "public",
                                             args)))
        return
    if args.from_log is not None:
        rows = [ast.literal_eval(line) for line in args.from_log.read_text().splitlines() if line.startswith("{")]
        write(rows, args)
        return
    rows = []
    for eps in args.runs:
        print("running", eps, flush=True)
        out = subprocess.run([sys.executable, __file__, "--one", eps, *_child_flags(args)], capture_output=True, text=True)
        line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT ")), None)
        if line is None:
            print(out.stdout[-3000:], out.stderr[-3000:])
            raise SystemExit(f"epsilon {eps} failed")
        rows.append(json.loads(line[7:]))
        print(rows[-1], flush=True)
    write(rows, args)


def _figure(value: float | None, digits: int = 3) -> str:
    """A missing figure (e.g. F1 of a class the synthetic table never produced) prints as a dash."""
    return "—" if value is None else f"{value:.{digits}f}"


def write(rows: list[dict], args: argparse.Namespace) -> None:
    lines = ["| model | ε target | domain | ε spent (worst party) | quality | shapes | pairs | TSTR AUC (boosting) | TSTR F1 (boosting) | TRTR F1 | attack AUC | DCR share | fit s | training s / epoch | plan notes |",
             "|" + "---|" * 15]
    for r in rows:
        cells = [r.get("model", "ctgan"), r["epsilon"], r.get("domain", "inferred"),
                 *(_figure(r.get(k)) for k in ("spent", "quality", "shapes", "pairs", "tstr_auc", "tstr_f1", "trtr_f1", "attack_auc", "dcr_share")),
                 _figure(r.get("fit_s"), 0), _figure(r["epoch_s"], 2), r["notes"]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    shape = f"{args.rows:,} rows in {args.parties}" if args.rows else f"{args.parties}"
    text = (f"\n{MARKER}\n\nCommand: `python benchmarks/adult_private.py {' '.join(sys.argv[1:])}` ({time.strftime('%Y-%m-%d')}, this "
            f"machine). {args.epochs:g} epochs' worth of training, {shape} parties; holdout for utility and membership: adult_test. "
            "Attack AUC is the strongest of the evaluator's attacks (0.5 = no better than chance).\n\n" + "\n".join(lines) + "\n")
    print(text)
    if args.results == "-":
        return
    results = HERE / args.results
    previous = results.read_text() if results.exists() else ""
    before, _, rest = previous.partition(f"\n{MARKER}")
    after = rest[rest.index("\n## "):] if "\n## " in rest else ""
    results.write_text(before.rstrip() + "\n" + text + after)

if __name__ == "__main__":
    main()
