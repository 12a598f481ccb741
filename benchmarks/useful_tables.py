"""Useful tables: do federated synthetic tables keep the feature-target relation? fedtab vs SDV central.

Per table and split, each contender runs in its own subprocess, one after another: fedtab's models
federated (5 parties for Adult, 3 for the others; ``--engine local``: every party in one process,
the same results as Flower's simulation without Ray), and SDV's CTGAN and TVAE central at the same
epochs. Columns: SDMetrics quality (shapes, pair trends, the worst categorical column's
TVComplement), train-on-synthetic / test-on-real (TSTR) ROC-AUC and F1 of the positive class with
gradient boosting and logistic regression beside train-on-real (TRTR), fit time (encoders,
training), sample rows/s, peak memory. Prints one table and writes its section of RESULTS.md.

    python benchmarks/useful_tables.py --tables adult --splits dirichlet --seeds 0 --models ctgan
    python benchmarks/useful_tables.py            # everything: adult, credit, kdd; all splits; seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from adult_federated import DEFAULT_DATA, load_adult, split  # noqa: E402

DATASETS = DEFAULT_DATA.parent
MARKER = "## Useful tables: TSTR and quality, fedtab federated vs SDV central"
UTILITY_MODELS = ("gradient boosting", "logistic regression")


@dataclass(frozen=True)
class Table:
    """A benchmark table: where it lies, its target, its test rows and how it splits into parties."""

    name: str
    target: str
    parties: int
    group: str | None = None
    categorical: tuple[str, ...] = ()
    test_file: str | None = None
    file: str = ""
    overrides: dict = field(default_factory=dict)
    target_labels: dict = field(default_factory=dict)

    def load(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(train, test): the shipped test file, else a seeded 20 % holdout no contender trains on."""
        frame = load_adult(DATASETS / self.file)
        # Coded categoricals as text for every contender: fedtab writes a column declared categorical
        # back as text ('1', not 1), which SDMetrics and the utility models would count as new categories.
        frame = frame.astype({column: str for column in self.categorical})
        if self.target_labels:  # a 0/1 text target is read as boolean and written back as True/False
            frame[self.target] = frame[self.target].map(self.target_labels)
        if self.test_file is not None:
            return frame, load_adult(DATASETS / self.test_file)
        held = np.random.default_rng(0).random(len(frame)) < 0.2
        return frame[~held].reset_index(drop=True), frame[held].reset_index(drop=True)


CREDIT_CODES = ("SEX", "EDUCATION", "MARRIAGE", "PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6",
                "default_payment_next_month")
TABLES = {
    "adult": Table("adult", "income", 5, group="education", file="adult_train.csv.gz", test_file="adult_test.csv.gz"),
    "credit": Table("credit", "default_payment_next_month", 3, group="EDUCATION", file="credit_default_taiwan.csv.gz",
                    categorical=CREDIT_CODES, overrides={c: "categorical" for c in CREDIT_CODES},
                    target_labels={"0": "paid", "1": "default"}),
    "kdd": Table("kdd", "label", 3, group="protocol_type", file="intrusion_kddcup99_50k.csv.gz"),
}


def metadata(frame: pd.DataFrame, table: Table):  # noqa: ANN201 - an sdv Metadata
    """SDV's detected metadata with the table's coded categoricals declared, as fedtab's overrides do."""
    from sdv.metadata import Metadata

    meta = Metadata.detect_from_dataframes({table.name: frame}, infer_keys=None)
    for column in table.categorical:
        meta.update_column(column, sdtype="categorical", table_name=table.name)
    if "ID" in frame.columns:
        meta.update_column("ID", sdtype="id", table_name=table.name)
    return meta


def quality(real: pd.DataFrame, synthetic: pd.DataFrame, table: Table) -> dict[str, float]:
    from sdmetrics.reports.single_table import QualityReport

    report = QualityReport()
    report.generate(real, synthetic[real.columns], metadata(real, table).to_dict()["tables"][table.name], verbose=False)
    props = report.get_properties().set_index("Property")["Score"]
    shapes = report.get_details("Column Shapes")
    categorical = shapes[shapes["Metric"] == "TVComplement"]
    worst = categorical.sort_values("Score").iloc[0] if len(categorical) else None
    return {"quality": float(report.get_score()), "shapes": float(props["Column Shapes"]),
            "pairs": float(props["Column Pair Trends"]),
            "worst_tv": float(worst["Score"]) if worst is not None else float("nan"),
            "worst_tv_column": str(worst["Column"]) if worst is not None else ""}


def utility(train: pd.DataFrame, synthetic: pd.DataFrame, test: pd.DataFrame, table: Table) -> dict[str, float]:
    """TSTR and TRTR with the evaluators' own models; the positive class is the real table's rarer one."""
    from fedtab.evaluators.inputs import prepare, resolve_layout
    from fedtab.evaluators.utility import Task, finalize_utility, fit_models, local_utility

    layout = resolve_layout(train, _schema(train, table))
    real, fake, held = (prepare(f, layout, label) for f, label in ((train, "real"), (synthetic, "synthetic"), (test, "test")))
    task = Task.infer(real, table.target, layout)
    fake = fake[fake[table.target].notna()]
    payload = {**local_utility(fit_models(fake, task, layout, 0, "tstr"), held, task, layout, "tstr"),
               **local_utility(fit_models(real, task, layout, 0, "trtr"), held, task, layout, "trtr")}
    out: dict[str, float] = {}
    for scores in finalize_utility(payload, task).models:
        if scores.model in UTILITY_MODELS:
            short = "gb" if "boost" in scores.model else "lr"
            for kind, values in (("tstr", scores.tstr), ("trtr", scores.trtr)):
                out[f"{kind}_auc_{short}"] = _number(values.get("roc_auc"))
                out[f"{kind}_f1_{short}"] = _number(values.get("f1_positive"))
    return out


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _schema(frame: pd.DataFrame, table: Table):  # noqa: ANN202 - a TableSchema
    from fedtab.connectors import infer_schema
    from fedtab.schema import ColumnKind

    schema = infer_schema(frame, party=table.name)
    for column in table.categorical:
        schema = schema.replace_column(_as_categorical(schema[column], ColumnKind.CATEGORICAL))
    return schema


def _as_categorical(column, kind):  # noqa: ANN001, ANN202
    import dataclasses

    return dataclasses.replace(column, kind=kind)


def table_split(frame: pd.DataFrame, table: Table, how: str, seed: int) -> dict[str, pd.DataFrame]:
    return split(frame, how, seed, label=table.target, group=table.group, parties=table.parties)


def run_fedtab(table: Table, model: str, how: str, seed: int, args: argparse.Namespace) -> dict:
    from fedtab import FederatedSynthesizer, FedtabConfig

    train, test = table.load()
    parties = table_split(train, table, how, seed)
    extra = json.loads(args.config)
    from fedtab.models.registry import get_model_class

    uses_target = "target" in get_model_class(model).default_options()  # TVAE refuses a target it cannot use
    config = FedtabConfig(**{"model": model, "rounds": args.rounds, "local_epochs": args.epochs / args.rounds, "seed": 0,
                             "target": table.target if uses_target and not args.no_target else None, **extra})
    started = time.perf_counter()
    synthesizer = FederatedSynthesizer(config, engine="local").fit(parties, overrides=table.overrides or None)
    fit_s = time.perf_counter() - started
    clock = time.perf_counter()
    synthetic = synthesizer.sample(len(train))
    sample_s = time.perf_counter() - clock
    _keep(synthetic, args, f"{table.name}-fedtab-{model}-{how}-{seed}")
    timings = synthesizer.state_.timings
    return {"contender": f"fedtab {model}, {table.parties} parties {how} (split seed {seed})", "fit_s": fit_s,
            "encoders_s": timings["encoders_s"], "training_s": timings["training_s"],
            "sample_rows_per_s": len(train) / sample_s, **_scores(train, synthetic, test, table)}


def run_sdv(table: Table, model: str, args: argparse.Namespace) -> dict:
    import torch
    from sdv.single_table import CTGANSynthesizer, TVAESynthesizer

    torch.manual_seed(0)  # SDV has no seed argument; this subprocess owns its global state
    train, test = table.load()
    kind = {"ctgan": CTGANSynthesizer, "tvae": TVAESynthesizer}[model]
    synthesizer = kind(metadata(train, table), epochs=args.epochs)
    started = time.perf_counter()
    synthesizer.fit({table.name: train})
    fit_s = time.perf_counter() - started
    clock = time.perf_counter()
    synthetic = synthesizer.sample(len(train))[table.name]
    sample_s = time.perf_counter() - clock
    _keep(synthetic, args, f"{table.name}-sdv-{model}")
    return {"contender": f"SDV {kind.__name__} central", "fit_s": fit_s, "sample_rows_per_s": len(train) / sample_s,
            **_scores(train, synthetic, test, table)}


def as_text_codes(synthetic: pd.DataFrame, table: Table) -> pd.DataFrame:
    """The table's coded categoricals as text, as the real rows hold them.

    Since the schema round, fedtab writes a column declared categorical in the dtype its parties'
    files have (int 2, not '2'); compared with the real text codes every such column scored
    TVComplement 0 (credit: quality 0.42).
    """
    codes = [c for c in table.categorical if c in synthetic and c != table.target]
    return synthetic.assign(**{c: synthetic[c].map(lambda v: v if pd.isna(v) else str(v)) for c in codes})


def _keep(synthetic: pd.DataFrame, args: argparse.Namespace, name: str) -> None:
    """The synthetic table as CSV in ``--keep`` (to look at what a score hides)."""
    if args.keep:
        synthetic.to_csv(Path(args.keep) / f"{name}.csv.gz", index=False)


def _scores(train: pd.DataFrame, synthetic: pd.DataFrame, test: pd.DataFrame, table: Table) -> dict:
    synthetic = as_text_codes(synthetic, table)
    out = {**quality(train, synthetic, table), **utility(train, synthetic, test, table)}
    if "capital-gain" in synthetic:
        out["capital_gain_zeros"] = float((synthetic["capital-gain"] == 0).mean())
    return out


def child(args: argparse.Namespace) -> None:
    table = TABLES[args.table]
    family, model, *rest = args.one.split(":")
    if family == "sdv":
        result = run_sdv(table, model, args)
    else:
        result = run_fedtab(table, model, rest[0], int(rest[1]), args)
    result["table"] = table.name
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def contenders(args: argparse.Namespace, table: Table) -> list[str]:
    from fedtab.models.registry import get_model_class

    for model in args.models:
        get_model_class(model)  # the registry's error for a model this branch lacks; never skipped
    fedtab = [f"fedtab:{m}:{how}:{seed}" for k, seed in enumerate(args.seeds) for how in args.splits for m in args.models
              if k == 0 or how == "dirichlet"]  # only Dirichlet splits vary by seed in the acceptance table
    return [*fedtab, *(f"sdv:{m}" for m in args.sdv)]  # fedtab first: its rows are what changed


def parent(args: argparse.Namespace) -> None:
    from concurrent.futures import ThreadPoolExecutor

    runs = [(name, one) for name in args.tables for one in contenders(args, TABLES[name])]
    if args.first:  # these first, in this order (a short session's most wanted rows), then the rest
        wanted = [tuple(item.split("/", 1)) for item in args.first]
        runs = [run for run in wanted if run in runs] + [run for run in runs if run not in wanted]
    results: list[dict] = []
    lock = threading.Lock()

    def one_run(run: tuple[str, str]) -> None:
        result = run_child(args, *run)
        with lock:  # partial results land in RESULTS.md as each contender finishes
            results.append(result)
            write_results(sorted(results, key=lambda r: _order(runs, r)), args, missing=len(runs) - len(results))

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(one_run, runs))


def _order(runs: list[tuple[str, str]], result: dict) -> int:
    return [f"{name} {one}" for name, one in runs].index(f"{result['table']} {result['run']}")


def run_child(args: argparse.Namespace, name: str, one: str) -> dict:
    command = [sys.executable, __file__, "--one", one, "--table", name, "--epochs", str(args.epochs),
               "--rounds", str(args.rounds), "--config", args.config, *(["--no-target"] if args.no_target else []),
               *(["--keep", args.keep] if args.keep else [])]
    print("running", name, one, flush=True)
    out = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        print(out.stdout[-3000:], out.stderr[-3000:], flush=True)
        return {"table": name, "run": one, "contender": f"{one}: failed ({_last_line(out.stderr)})"}
    result = {**json.loads(line[len("RESULT "):]), "run": one}
    print(json.dumps(result), flush=True)
    return result


COLUMNS = (("quality", "quality", 3), ("shapes", "shapes", 3), ("pairs", "pairs", 3), ("worst TV", "worst_tv", 3), ("worst TV column", "worst_tv_column", None),
           ("TSTR AUC GB", "tstr_auc_gb", 3), ("TSTR F1 GB", "tstr_f1_gb", 3), ("TSTR AUC LR", "tstr_auc_lr", 3),
           ("TSTR F1 LR", "tstr_f1_lr", 3), ("TRTR AUC GB / LR", None, 3), ("zeros cap. gain", "capital_gain_zeros", 3),
           ("fit s", "fit_s", 0), ("encoders s", "encoders_s", 1), ("training s", "training_s", 0),
           ("sample rows/s", "sample_rows_per_s", 0), ("peak RSS MB", "peak_rss_mb", 0))


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200].replace("|", "/") if lines else "no output"


def table_text(results: list[dict]) -> str:
    lines = ["| table | contender | " + " | ".join(c[0] for c in COLUMNS) + " |", "|" + "---|" * (len(COLUMNS) + 2)]
    for r in results:
        cells = []
        for _, key, digits in COLUMNS:
            if key is None:
                cells.append(f"{r['trtr_auc_gb']:.3f} / {r['trtr_auc_lr']:.3f}" if "trtr_auc_gb" in r else "—")
            else:
                value = r.get(key)
                if isinstance(value, str):
                    cells.append(value or "—")
                else:
                    cells.append("—" if value is None or not np.isfinite(value) else f"{value:,.{digits}f}")
        lines.append(f"| {r['table']} | {r['contender']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_results(results: list[dict], args: argparse.Namespace, missing: int = 0) -> None:
    command = " ".join(sys.argv[1:])
    partial = f" **Partial: {missing} contender(s) still running or not started.**" if missing else ""
    text = (f"\n{MARKER}\n\nCommand: `python benchmarks/useful_tables.py {command}` ({time.strftime('%Y-%m-%d %H:%M')}, "
            f"load average {os.getloadavg()[0]:.1f} at the end, 2 shared cores, {args.jobs} contender(s) at once). {args.epochs} epochs' worth of training "
            f"(fedtab: {args.rounds} rounds); TSTR/TRTR tested on adult_test for Adult, on a seeded 20 % holdout "
            "otherwise; F1 of the real table's rarer class; worst TV: the lowest TVComplement over categorical columns."
            f"{partial}\n\n"
            + table_text(results) + "\n")
    results_md = HERE / "RESULTS.md"
    previous = results_md.read_text() if results_md.exists() else ""
    before, _, after = previous.partition(f"\n{MARKER}")
    rest = after.split("\n## ", 1)[1] if "\n## " in after else ""
    results_md.write_text(before.rstrip() + "\n" + text + (f"\n## {rest}" if rest else ""))
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tables", type=lambda s: s.split(","), default=list(TABLES))
    parser.add_argument("--splits", type=lambda s: s.split(","), default=["iid", "dirichlet", "education"])
    parser.add_argument("--models", type=lambda s: s.split(","), default=["ctgan"])
    parser.add_argument("--sdv", type=lambda s: [m for m in s.split(",") if m], default=["ctgan", "tvae"],
                        help="SDV central models to run beside (ctgan,tvae; '' for none)")
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--config", default="{}", help="extra FedtabConfig fields as JSON (experiments)")
    parser.add_argument("--jobs", type=int, default=1, help="contenders run at once (timings compare only at 1)")
    parser.add_argument("--no-target", action="store_true", help="do not declare the target to fedtab")
    parser.add_argument("--first", type=lambda s: s.split(","), default=[],
                        help="runs to start first, as table/contender (adult/fedtab:ctgan:iid:0,credit/sdv:tvae)")
    parser.add_argument("--keep", default=None, help="folder to write each synthetic table to (CSV)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--table", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    unknown = sorted(set(args.tables) - set(TABLES))
    if unknown:
        parser.error(f"unknown tables {unknown}; known: {sorted(TABLES)}")
    child(args) if args.one else parent(args)


if __name__ == "__main__":
    main()
