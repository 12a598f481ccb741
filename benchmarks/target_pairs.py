"""argn under DP on Adult with ``--target income``: what the released 2-way target marginals buy.

Adult's code book, 5 parties (Dirichlet 0.5 over income), argn; one fit per (ε, loss weight), each sampled
twice: with the target's draw raked to the released 2-way marginals (``pair_sampling``) and without (the
same model and plan; the plan's encoder noise is then the one the extra release cost). Without a release at
all (``target_pairs`` 0 and ``pair_sampling`` off) it is the run before this feature. Columns: SDMetrics
quality (shapes, pair trends), the mean contingency similarity of income with every other column (numericals
in 10 quantile bins of the real rows), TSTR ROC-AUC / F1 of '>50K' (gradient boosting, adult_test), the
strongest membership attack's AUC, ε spent, the encoder releases and their σ.

    python benchmarks/target_pairs.py --epsilons 1 3 --weights 0 --epochs 10 --rounds 10
    python benchmarks/target_pairs.py --epsilons 1 --weights 0 --no-release     # the run before
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from adult_federated import DEFAULT_DATA, load_adult, quality, split  # noqa: E402


def income_pairs(real: pd.DataFrame, synthetic: pd.DataFrame, target: str = "income") -> float:
    """Mean over columns of 1 − TV distance between the real and synthetic joint of (column, target)."""
    scores = []
    for column in real.columns.drop(target):
        r, s = real[column], synthetic[column]
        if pd.api.types.is_numeric_dtype(r):
            edges = np.unique(np.nanquantile(r.to_numpy(dtype=float), np.linspace(0, 1, 11)))
            r = pd.Series(np.digitize(r, edges[1:-1]), index=real.index).where(real[column].notna(), -1)
            s = pd.Series(np.digitize(s, edges[1:-1]), index=synthetic.index).where(synthetic[column].notna(), -1)
        joint_r = pd.crosstab(r.astype(str), real[target].astype(str), normalize=True)
        joint_s = pd.crosstab(s.astype(str), synthetic[target].astype(str), normalize=True)
        joint_r, joint_s = joint_r.align(joint_s, fill_value=0.0)
        scores.append(1.0 - 0.5 * float(np.abs(joint_r.to_numpy() - joint_s.to_numpy()).sum()))
    return float(np.mean(scores))


def scores(train: pd.DataFrame, test: pd.DataFrame, synthetic: pd.DataFrame) -> dict:
    from fedtab.evaluators import evaluate

    missing = int(synthetic["income"].isna().sum())  # a drawn missing-income token (reported, then dropped)
    synthetic = synthetic.dropna(subset=["income"]).reset_index(drop=True)
    report = evaluate(train, synthetic, holdout=test, target="income", seed=0)
    boosting = next(m for m in report.utility.models if "boost" in m.model.lower())
    return {"income_missing": missing, **quality(train, synthetic), "income_pairs": income_pairs(train, synthetic),
            "tstr_auc": boosting.tstr.get("roc_auc"), "tstr_f1": boosting.tstr.get("f1_positive"),
            "attack_auc": report.privacy.attack_auc}


def run(epsilon: float, weight: float, release: bool, args: argparse.Namespace) -> list[dict]:
    from fedtab import FederatedSynthesizer, FedtabConfig
    from fedtab.connectors.public_domain import read_public_domain
    from fedtab.demo import demo_public_domain_path

    train, test = load_adult(args.data), load_adult(args.data.with_name("adult_test.csv.gz"))
    options = {"target_pairs": weight, "pair_sampling": release}
    config = FedtabConfig(model="argn", target="income", rounds=args.rounds, local_epochs=args.epochs / args.rounds,
                          seed=0, epsilon=epsilon, public_domain=read_public_domain(demo_public_domain_path()),
                          model_options=options)
    started = time.perf_counter()
    synthesizer = FederatedSynthesizer(config, engine="local").fit(split(train, "dirichlet"))
    fit_s = time.perf_counter() - started
    encoder = next(m for m in synthesizer.state_.ledger["parties"][0]["mechanisms"] if m["mechanism"] == "encoder")
    common = {"epsilon": epsilon, "weight": weight, "released": bool(synthesizer.state_.plan.target),
              "spent": max(p["epsilon"] for p in synthesizer.state_.ledger["parties"]), "encoder_eps": encoder["epsilon"],
              "encoder_releases": encoder["steps"], "encoder_sigma": encoder["noise_multipliers"][0], "fit_s": fit_s}
    rows = []
    for raked in ([True, False] if release else [False]):
        state = synthesizer.state_
        synthesizer.state_ = dataclasses.replace(state, config=state.config.replace(
            model_options={**state.config.model_options, "pair_sampling": raked}))
        rows.append({**common, "pair_sampling": raked, **scores(train, test, synthesizer.sample(len(train)))})
        synthesizer.state_ = state
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 3.0])
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0], help="target_pairs loss weights")
    parser.add_argument("--no-release", action="store_true", help="nothing released: the run before the feature")
    parser.add_argument("--epochs", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    for epsilon in args.epsilons:
        for weight in args.weights:
            for row in run(epsilon, weight, not args.no_release, args):
                print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)


if __name__ == "__main__":
    main()
