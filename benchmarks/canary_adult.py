"""Membership risk of planted outlier canaries: Adult, 3 parties (IID, 3,000 rows each), no DP vs ε = 1.

Canaries come from one generator (the design of tests/integration/test_canary.py, larger): a real
Adult row (not among the 9,000) whose categories are drawn uniformly from Adult's code book — a
rare combination — and whose numbers sit at the ends of their ranges (age, hours, both capital
columns). Variant "unique" also gives each canary a native country and an occupation of its own,
which no other row holds and which the code book does not list. Members are planted 4 times in
party 0; non-members come from the same generator and are never planted.

Attacks (higher score = "member"):
- value: how many synthetic rows carry the candidate's own country or occupation (unique canaries only);
- combination: how many synthetic rows share the candidate's five drawn categories
  (workclass, education, marital status, relationship, race);
- distance: minus the distance to the nearest synthetic row, in the evaluator's encoded space
  (fedtab.evaluators.encoding.MixedEncoder fitted on the synthetic table, evaluators.neighbours).
  For unique canaries also without the two own-label columns: the encoder sets a category the
  synthetic table never shows to zeros, half a mismatch from everything, so a member whose own
  label the model reproduces (a known category) can sit farther from its nearest row than a
  non-member whose label is unknown.

Runs (--runs): none:unique (the positive control), none:book (in-domain canaries, code book
declared), 1:book (ε = 1, code book), 1:unique (ε = 1, domain inferred). A DP run with the code
book cannot take unique canaries: their values are outside the declared categories.

    python benchmarks/canary_adult.py [--rounds 30] [--canaries 100] [--runs none:unique none:book 1:book 1:unique]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from adult_federated import DEFAULT_DATA, load_adult  # noqa: E402

MARKER = "## Membership risk of planted canaries (Adult, 3 parties)"
PARTIES, PARTY_ROWS, COPIES = 3, 3000, 4
UNIQUE = ("native-country", "occupation")
RARE = ("workclass", "education", "marital-status", "relationship", "race")
EXTREMES = {"age": [(17, 20), (80, 91)], "hours-per-week": [(1, 6), (90, 100)],
            "capital-gain": [(30_000, 100_000)], "capital-loss": [(2_500, 5_001)]}


def canaries(pool: pd.DataFrame, book: dict, count: int, unique: bool, rng: np.random.Generator) -> pd.DataFrame:
    rows = pool.sample(count, random_state=int(rng.integers(2**31))).reset_index(drop=True)
    for column in RARE + UNIQUE:
        rows[column] = rng.choice(book[column]["categories"], count)
    for column, ranges in EXTREMES.items():
        rows[column] = [int(rng.integers(*ranges[int(rng.integers(len(ranges)))])) for _ in range(count)]
    if unique:
        for column in UNIQUE:
            rows[column] = [f"canary-{column}-{i}" for i in range(count)]
    return rows


def scores(candidates: pd.DataFrame, synthetic: pd.DataFrame, unique: bool) -> dict[str, np.ndarray]:
    from fedtab.evaluators.encoding import MixedEncoder
    from fedtab.evaluators.inputs import prepare, resolve_layout
    from fedtab.evaluators.neighbours import nearest

    out = {}
    if unique:
        out["value"] = np.array([sum(int((synthetic[c] == row[c]).sum()) for c in UNIQUE) for _, row in candidates.iterrows()])
    keys = synthetic[list(RARE)].astype(str).agg("|".join, axis=1).value_counts()
    out["combination"] = candidates[list(RARE)].astype(str).agg("|".join, axis=1).map(keys).fillna(0).to_numpy()
    for name, dropped in [("distance", [])] + ([("distance without own-label columns", list(UNIQUE))] if unique else []):
        table = synthetic.drop(columns=dropped)
        layout = resolve_layout(table)
        encoder = MixedEncoder.fit(prepare(table, layout, "synthetic"), layout)
        encoded = encoder.transform(prepare(table, layout, "synthetic"))
        out[name] = -nearest(encoder.transform(prepare(candidates.drop(columns=dropped), layout, "candidates")), encoded)[:, 0]
    return out


def tpr_at(truth: np.ndarray, score: np.ndarray, fpr_max: float) -> float:
    fpr, tpr, _ = roc_curve(truth, score)
    return float(tpr[fpr <= fpr_max + 1e-12].max())


def run_one(spec: str, args: argparse.Namespace) -> list[dict]:
    from fedtab import FederatedSynthesizer, FedtabConfig
    from fedtab.connectors.public_domain import read_public_domain
    from fedtab.demo import demo_public_domain_path

    eps_text, _, design = spec.partition(":")
    epsilon = None if eps_text == "none" else float(eps_text)
    unique = design == "unique"
    book = read_public_domain(demo_public_domain_path())
    adult = load_adult(args.data)
    order = np.random.default_rng(0).permutation(len(adult))
    train, pool = adult.iloc[order[: PARTIES * PARTY_ROWS]], adult.iloc[order[PARTIES * PARTY_ROWS :]]
    planted = canaries(pool, book, 2 * args.canaries, unique, np.random.default_rng(1))
    members, nonmembers = planted.iloc[: args.canaries], planted.iloc[args.canaries :].reset_index(drop=True)
    parties = {f"party_{k}": train.iloc[k * PARTY_ROWS : (k + 1) * PARTY_ROWS].reset_index(drop=True) for k in range(PARTIES)}
    parties["party_0"] = pd.concat([parties["party_0"]] + [members] * COPIES, ignore_index=True)
    config = FedtabConfig(model="ctgan", rounds=args.rounds, local_epochs=1.0, seed=0, epsilon=epsilon, public_domain={} if unique else book)
    started = time.perf_counter()
    synthesizer = FederatedSynthesizer(config, engine="local").fit(parties)
    fit_s = time.perf_counter() - started
    synthetic = synthesizer.sample(PARTIES * PARTY_ROWS, seed=1)
    ledger = synthesizer.state_.ledger
    spent = None if ledger is None else max(p["epsilon"] for p in ledger["parties"])
    candidates = pd.concat([members, nonmembers], ignore_index=True)
    truth = np.r_[np.ones(len(members)), np.zeros(len(nonmembers))]
    rows = []
    for attack, score in scores(candidates, synthetic, unique).items():
        rows.append({"run": spec, "spent": spent, "attack": attack, "auc": float(roc_auc_score(truth, score)),
                     "tpr1": tpr_at(truth, score, 0.01), "tpr10": tpr_at(truth, score, 0.10), "fit_s": fit_s,
                     "member_median": float(np.median(score[truth == 1])), "nonmember_median": float(np.median(score[truth == 0]))})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--runs", nargs="*", default=["none:unique", "none:book", "1:book", "1:unique"])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--canaries", type=int, default=100)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    if args.one is not None:
        for row in run_one(args.one, args):
            print("RESULT", repr(row), flush=True)
        return
    started = time.perf_counter()
    rows = []
    for spec in args.runs:  # each run in its own process: a failed DP run leaves the others standing
        t = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--one", spec, "--data", str(args.data), "--rounds", str(args.rounds),
                              "--canaries", str(args.canaries)], capture_output=True, text=True)
        got = [eval(line[7:], {"nan": float("nan")}) for line in out.stdout.splitlines() if line.startswith("RESULT ")]  # noqa: S307 - our own repr
        if not got:
            print(out.stdout[-2000:], out.stderr[-3000:])
            got = [{"run": spec, "spent": None, "attack": "FAILED", "auc": None, "tpr1": None, "tpr10": None, "fit_s": None}]
        rows += got
        print(f"{spec}: {time.perf_counter() - t:.0f} s", *got, sep="\n  ", flush=True)
    total = time.perf_counter() - started
    table = render(rows, args)
    print(table)
    print(f"total {total:.0f} s")
    if not args.no_write:
        load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        write(table, args, total, load)


def _f(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def render(rows: list[dict], args: argparse.Namespace) -> str:
    lines = ["| run (ε:canaries) | ε spent (worst party) | attack | AUC | TPR @ 1 % FPR | TPR @ 10 % FPR | median score member / non-member | fit s |",
             "|" + "---|" * 8]
    for r in rows:
        medians = "—" if "member_median" not in r else f"{r['member_median']:.3g} / {r['nonmember_median']:.3g}"
        lines.append(f"| {r['run']} | {_f(r['spent'], 2)} | {r['attack']} | {_f(r['auc'])} | {_f(r['tpr1'], 2)} | {_f(r['tpr10'], 2)} | {medians} | {_f(r['fit_s'], 0)} |")
    return "\n".join(lines)


def write(table: str, args: argparse.Namespace, total: float, load: str) -> None:
    text = (f"\n{MARKER}\n\nCommand: `OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/canary_adult.py --rounds {args.rounds} "
            f"--canaries {args.canaries} --runs {' '.join(args.runs)}` ({time.strftime('%Y-%m-%d')}, this machine, "
            f"{total:.0f} s in all; `uptime` after the run: {load}).\n\n" + table + "\n")
    results = HERE / "RESULTS.md"
    previous = results.read_text() if results.exists() else ""
    before, _, after = previous.partition(f"\n{MARKER}")
    later = after.partition("\n## ")[2]  # sections written after ours stay
    results.write_text(before.rstrip() + "\n" + text + ("\n## " + later if later else ""))


if __name__ == "__main__":
    main()
