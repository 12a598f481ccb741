"""TVAE (or CTGAN) levers on Adult: train once per config, then score each sampling variant on the same weights.

    python benchmarks/tvae_levers.py --seed 0 --config '{"batch_size": 500}' \
        --variants '[{"category_marginals": false}, {}]' --out /tmp/tvae.jsonl

Each line of ``--out``: the config, the sampling options, fit seconds, quality, TSTR ROC-AUC
(gradient boosting, logistic regression) and every categorical column's TVComplement. The same
data, split and scores as ``useful_tables.py`` (it imports them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from useful_tables import TABLES, _scores, as_text_codes, table_split  # noqa: E402


def column_tv(real, synthetic) -> dict[str, float]:  # noqa: ANN001 - data frames
    """TVComplement of every text column (the categoricals) of the real table."""
    from sdmetrics.single_column import TVComplement

    columns = [c for c in real.columns if real[c].dtype == object]
    return {c: round(float(TVComplement.compute(real[c], synthetic[c].astype(object))), 4) for c in columns}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="tvae", help="tvae or ctgan (both take category_marginals)")
    parser.add_argument("--seed", type=int, default=0, help="split seed")
    parser.add_argument("--split", default="dirichlet")
    parser.add_argument("--epochs", type=float, default=30)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--config", default="{}", help="FedtabConfig fields as JSON")
    parser.add_argument("--variants", default="[{}]", help="JSON list of sampling option overrides")
    parser.add_argument("--out", required=True)
    parser.add_argument("--save", default=None, help="write the fitted model here")
    parser.add_argument("--load", default=None, help="score a saved model instead of training")
    args = parser.parse_args()

    from fedtab import FederatedSynthesizer, FedtabConfig

    table = TABLES["adult"]
    train, test = table.load()
    parties = table_split(train, table, args.split, args.seed)
    extra = json.loads(args.config)
    config = FedtabConfig(**{"model": args.model, "rounds": args.rounds, "local_epochs": args.epochs / args.rounds,
                             "seed": 0, **extra})
    started = time.perf_counter()
    if args.load:
        synthesizer = FederatedSynthesizer.load(args.load)
        config = synthesizer.state_.config
    else:
        synthesizer = FederatedSynthesizer(config, engine="local").fit(parties)
        if args.save:
            synthesizer.save(args.save)
    fit_s = time.perf_counter() - started
    state = synthesizer.state_
    for variant in json.loads(args.variants):
        options = {**config.model_options, **variant}
        synthesizer.state_ = dataclasses.replace(state, config=dataclasses.replace(config, model_options=options))
        synthetic = synthesizer.sample(len(train))
        scores = _scores(train, synthetic, test, table)
        row = {"model": config.model, "split": args.split, "seed": args.seed, "config": extra, "load": args.load, "sampling": variant, "fit_s": round(fit_s, 1),
               "encoders_s": round(state.timings["encoders_s"], 1), "training_s": round(state.timings["training_s"], 1),
               **{k: round(v, 4) for k, v in scores.items() if isinstance(v, float)},
               "tv": column_tv(train, as_text_codes(synthetic, table))}
        print(json.dumps(row), flush=True)
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
