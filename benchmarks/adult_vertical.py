"""Vertical federation on Adult: 3 parties hold different columns about overlapping people (issue 11).

Adult train with a ``person_id`` added, split by columns: demographics (age, sex, race, native-country,
marital-status, relationship), work (workclass, occupation, education, education-num, hours-per-week),
money (fnlwgt, capital-gain, capital-loss, income). Each party holds a different random 90 % of the
people, its rows shuffled independently. Contenders, scored on the intersection's rows (joined
centrally by the examiner, never by fedtab):

- fedtab vertical (no DP, then ε = 3 and ε = 1 per party);
- SDV CTGAN trained centrally on the joined intersection rows, same epochs, same run;
- the control: fedtab's own synthetic columns with the cross-party joint broken (each party's slice of
  the synthetic latents shuffled independently, i.e. every party synthesised from its own marginal and
  concatenated), which must lose the cross-party pairs and TSTR if the cross-party learning is real.

Scores: SDMetrics quality, pair trends over cross-party pairs only, TSTR ROC-AUC for >50K on adult_test
(gradient boosting), the evaluator's strongest membership attack AUC (intersection rows vs adult_test),
fit time. Run: ``nice -n 10 .venv/bin/python benchmarks/adult_vertical.py`` (writes RESULTS_VERTICAL.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from useful_tables import TABLES, metadata, utility  # noqa: E402

SPLIT = {
    "demographics": ["age", "sex", "race", "native-country", "marital-status", "relationship"],
    "work": ["workclass", "occupation", "education", "education-num", "hours-per-week"],
    "money": ["fnlwgt", "capital-gain", "capital-loss", "income"],
}
KEY = "person_id"
SHARE = 0.9
TABLE = TABLES["adult"]


def party_tables(train: pd.DataFrame, seed: int = 0) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Each party's columns for its own random 90 % of people, shuffled; and the intersection's joined real rows."""
    frame = train.assign(**{KEY: [f"P{i:06d}" for i in range(len(train))]})
    rng = np.random.default_rng(seed)
    parties, held = {}, np.ones(len(frame), dtype=bool)
    for name, columns in SPLIT.items():
        mine = rng.random(len(frame)) < SHARE
        held &= mine
        parties[name] = frame.loc[mine, [KEY, *columns]].sample(frac=1.0, random_state=int(rng.integers(1 << 31)))
    joined = frame.loc[held, [c for cols in SPLIT.values() for c in cols]].reset_index(drop=True)
    return parties, joined


def scores(real: pd.DataFrame, synthetic: pd.DataFrame, test: pd.DataFrame) -> dict[str, float]:
    """SDMetrics quality, its pair trends over cross-party pairs only, and TSTR (the useful-tables helpers)."""
    from sdmetrics.reports.single_table import QualityReport

    synthetic = synthetic[real.columns]
    report = QualityReport()
    report.generate(real, synthetic, metadata(real, TABLE).to_dict()["tables"][TABLE.name], verbose=False)
    props = report.get_properties().set_index("Property")["Score"]
    pairs = report.get_details("Column Pair Trends")
    owner = {c: p for p, cols in SPLIT.items() for c in cols}
    cross = pairs[[owner[a] != owner[b] for a, b in zip(pairs["Column 1"], pairs["Column 2"])]]
    within = pairs[[owner[a] == owner[b] for a, b in zip(pairs["Column 1"], pairs["Column 2"])]]
    useful = utility(real, synthetic, test, TABLE)
    return {"quality": float(report.get_score()), "shapes": float(props["Column Shapes"]),
            "pairs": float(props["Column Pair Trends"]), "cross_pairs": float(cross["Score"].mean()),
            "within_pairs": float(within["Score"].mean()), "tstr_auc": useful["tstr_auc_gb"], "trtr_auc": useful["trtr_auc_gb"]}


def attack_auc(real: pd.DataFrame, synthetic: pd.DataFrame, test: pd.DataFrame) -> float:
    from fedtab.evaluators import evaluate

    report = evaluate(real, synthetic[real.columns], holdout=test[real.columns], target="income", seed=0)
    return float(report.privacy.attack_auc)


def run_fedtab(parties: dict[str, pd.DataFrame], joined: pd.DataFrame, test: pd.DataFrame, args: argparse.Namespace,
               epsilon: float | None) -> list[dict]:
    from fedtab import FedtabConfig
    from fedtab.vertical_synthesizer import VerticalSynthesizer

    config = FedtabConfig(vertical=True, key_columns=(KEY,), model=args.model, rounds=args.epochs, seed=0, epsilon=epsilon,
                          encoder_share=args.encoder_share, latent_dim=args.latent_dim, batch_size=args.batch_size)
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for name, frame in parties.items():
            paths[name] = Path(folder) / f"{name}.parquet"
            frame.to_parquet(paths[name], index=False)
        started = time.perf_counter()
        synthesizer = VerticalSynthesizer(config, engine="local").fit(paths)
        fit_s = time.perf_counter() - started
    if synthesizer.fit_.rows != len(joined):
        raise SystemExit(f"PSI found {synthesizer.fit_.rows} shared people; the benchmark's own join has {len(joined)}.")
    synthetic = synthesizer.sample(len(joined), seed=1)
    label = "fedtab vertical" + ("" if epsilon is None else f", ε = {epsilon:g} per party")
    ledger = synthesizer.ledger_
    spent = None if ledger is None else {p["party"]: round(p["epsilon"], 3) for p in ledger["parties"]}
    row = {"contender": label, "fit_s": fit_s, "timings": synthesizer.fit_.timings, "rows": synthesizer.fit_.rows,
           "ledger": spent, **scores(joined, synthetic, test)}
    if epsilon is not None or args.attack:
        row["attack_auc"] = attack_auc(joined, synthetic, test)
    out = [row]
    if epsilon is None:
        out.append({"contender": "control: parties synthesised independently, concatenated", "fit_s": fit_s,
                    **scores(joined, independent(synthesizer, len(joined)), test)})
    return out


def independent(synthesizer, rows: int) -> pd.DataFrame:  # noqa: ANN001 - a fitted VerticalSynthesizer
    """Each party's synthetic columns from its own latent marginal: the joint sample's slices shuffled apart."""
    from fedtab.federation.vertical_coordinator import assemble, party_slice, sample_latents
    from fedtab.federation.vertical_party import decode_party

    fit = synthesizer.fit_
    latents = sample_latents(fit.latent_model, rows, seed=1)
    frames = {}
    for index, party in enumerate(fit.parties):
        order = np.random.default_rng(100 + index).permutation(rows)
        frames[party] = decode_party(synthesizer.decoders_[party], party_slice(latents, party)[order], seed=1)
    return assemble(frames, fit)


def lever_latents(joined: pd.DataFrame, name: str, *, latent_dim: int, epochs: int, batch_size: int,
                  cache: Path) -> tuple[object, np.ndarray]:
    """One party's decoder and row latents on the joined rows, as its worker computes them (cached per setting).

    The lever sweep skips PSI (the joined rows are the aligned rows, in one order) so the party side is
    trained once per setting and every server model is compared on the same latents.
    """
    from fedtab import FedtabConfig
    from fedtab.connectors import load_party
    from fedtab.federation.vertical_coordinator import encoder_options
    from fedtab.models.vertical import (PartyDecoder, autoencoder_options, fit_party_plan, row_latents,
                                        train_autoencoder)
    from fedtab.rng import numpy_rng

    stem = cache / f"{name}-d{latent_dim}-e{epochs}-b{batch_size}"
    if stem.with_suffix(".npy").exists():
        return PartyDecoder.from_bytes(stem.with_suffix(".dec").read_bytes()), np.load(stem.with_suffix(".npy"))
    source = cache / f"{name}.parquet"
    joined[SPLIT[name]].to_parquet(source, index=False)
    table = load_party(name, str(source))
    config = FedtabConfig(latent_dim=latent_dim)
    plan = fit_party_plan(table, seed=0, options=encoder_options(config))
    encoded = plan.encode(table.frame, numpy_rng(0, "encode", name))
    decoder, _ = train_autoencoder(plan, encoded, party=name, seed=0, epochs=epochs, batch_size=batch_size, privacy=None,
                                   options=autoencoder_options(latent_dim, config.latent_hidden))
    latents = row_latents(decoder, encoded)
    stem.with_suffix(".dec").write_bytes(decoder.to_bytes())
    np.save(stem.with_suffix(".npy"), latents)
    return decoder, latents


def run_levers(joined: pd.DataFrame, test: pd.DataFrame, args: argparse.Namespace) -> list[dict]:
    """The no-DP levers one at a time on shared party latents: the server's latent model and its options."""
    from fedtab import FedtabConfig
    from fedtab.federation.vertical_coordinator import fit_latent_model, latent_names, sample_latents, party_slice
    from fedtab.federation.vertical_party import decode_party

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    party = {p: lever_latents(joined, p, latent_dim=args.latent_dim, epochs=args.ae_epochs or args.epochs,
                              batch_size=args.batch_size, cache=cache) for p in SPLIT}
    party_s = time.perf_counter() - started
    frame = pd.concat([pd.DataFrame(z, columns=latent_names(p, z.shape[1])) for p, (_, z) in party.items()], axis=1)
    config = FedtabConfig(model=args.model, rounds=args.epochs, seed=0, batch_size=args.batch_size,
                          model_options=json.loads(args.model_options))
    started = time.perf_counter()
    model = fit_latent_model(frame, config)
    server_s = time.perf_counter() - started
    latents = sample_latents(model, len(joined), seed=1)
    synthetic = pd.concat([decode_party(party[p][0], party_slice(latents, p), seed=1) for p in SPLIT], axis=1)
    label = (f"lever: server {args.model} {args.model_options}, latent {args.latent_dim}, "
             f"AE epochs {args.ae_epochs or args.epochs}")
    return [{"contender": label, "fit_s": party_s + server_s, "server_s": server_s, **scores(joined, synthetic, test)}]


LINK = {"demographics": "relationship", "work": "education", "money": "income"}
"""Design (c)'s link columns: one categorical per party whose cross-party joint is released under DP."""


def run_dp_link(joined: pd.DataFrame, test: pd.DataFrame, args: argparse.Namespace, epsilon: float) -> list[dict]:
    """Design (c) measured with an ideal functionality: per-party DP models joined by one DP cross-party marginal.

    Each party trains argn under DP-SGD on its own columns (its link column first, so it can sample given
    it). The noised joint count of the link columns (Gaussian on the count table, L2 sensitivity 1) is
    what a secure-computation protocol would release; here the examiner computes it on the joined rows,
    so this row is the design's ceiling, not a federated run. The link's Gaussian is composed into each
    party's accountant and its noise solved so that the composed ε meets the budget.
    """
    from fedtab import FedtabConfig, FederatedSynthesizer
    from fedtab.federation.privacy_run import PrivacyRun
    from fedtab.privacy.accountant import PartyAccountant
    from fedtab.privacy.planning import default_delta

    delta, started, models, accountants = default_delta(len(joined)), time.perf_counter(), {}, {}
    for party, columns in SPLIT.items():
        config = FedtabConfig(model="argn", rounds=args.dp_epochs, seed=0, batch_size=args.batch_size, delta=delta,
                              epsilon=epsilon * (1 - args.link_share), encoder_share=0.1,
                              model_options={"order": "fixed", "first_columns": LINK[party]})
        models[party] = FederatedSynthesizer(config, engine="local").fit({party: joined[columns]})
        accountants[party] = PrivacyRun.from_dict(models[party].state_.privacy).accountants[party]
    sigma = max(link_noise(a, epsilon, delta) for a in accountants.values())
    spent = {}
    for party, accountant in accountants.items():
        composed = PartyAccountant.from_state_dict(accountant.state_dict())
        composed.record_gaussian(noise_multiplier=sigma, mechanism="link")
        spent[party] = round(composed.epsilon(delta), 3)
    from fedtab.transformers.values import RARE_TOKEN

    vocab = {p: [str(v) for v in next(c for c in models[p].state_.plan.encoded_columns if c.name == LINK[p]).vocabulary
                 if v != RARE_TOKEN] for p in LINK}  # rows of a category DP left out are not in the link table
    counts = joined[list(LINK.values())].astype(str).value_counts()
    cells = pd.MultiIndex.from_product([vocab[p] for p in LINK], names=list(LINK.values()))
    noised = counts.reindex(cells, fill_value=0).to_numpy(float)
    noised = np.clip(noised + np.random.default_rng(7).normal(0, sigma, noised.shape), 0, None)
    rng = np.random.default_rng(1)
    drawn = cells[rng.choice(len(cells), size=len(joined), p=noised / noised.sum())].to_frame(index=False)
    fit_s, setting = time.perf_counter() - started, f"{args.dp_epochs} epochs, link share {args.link_share:g}"
    synthetic = pd.concat([conditional_rows(models[p], LINK[p], drawn[LINK[p]]) for p in SPLIT], axis=1)
    row = {"contender": f"design (c) ceiling: DP argn per party + DP link marginal (ideal functionality), ε = {epsilon:g}"
                        f" ({setting})", "fit_s": fit_s, "ledger": spent, "link_sigma": sigma,
           **scores(joined, synthetic, test), "attack_auc": attack_auc(joined, synthetic, test)}
    apart = pd.DataFrame({c: drawn[c].to_numpy()[np.random.default_rng(3 + i).permutation(len(drawn))]
                          for i, c in enumerate(drawn.columns)})  # each link column shuffled on its own: joint broken
    control = pd.concat([conditional_rows(models[p], LINK[p], apart[LINK[p]]) for p in SPLIT], axis=1)
    return [row, {"contender": f"control for (c): the same DP models, link values drawn apart, ε = {epsilon:g} ({setting})",
                  "fit_s": fit_s, "ledger": spent, **scores(joined, control, test)}]


def link_noise(accountant, epsilon: float, delta: float) -> float:  # noqa: ANN001 - a PartyAccountant
    """The smallest Gaussian noise (over sensitivity 1) whose composition with the party's spend stays within ε."""
    from fedtab.privacy.accountant import PartyAccountant

    low, high = 0.3, 200.0
    for _ in range(30):
        middle = (low * high) ** 0.5
        trial = PartyAccountant.from_state_dict(accountant.state_dict())
        trial.record_gaussian(noise_multiplier=middle, mechanism="link")
        low, high = (low, middle) if trial.epsilon(delta) <= epsilon else (middle, high)
    return high


def conditional_rows(model, column: str, codes: pd.Series) -> pd.DataFrame:  # noqa: ANN001 - a fitted argn synthesizer
    """The party's synthetic rows for the drawn link values, each generated given its value, in the drawn order."""
    out = [None] * len(codes)
    for index, (value, where) in enumerate(codes.groupby(codes, sort=True).groups.items()):
        rows = model.sample(len(where), seed=10 + index, conditions={column: value})
        for position, (_, record) in zip(where, rows.iterrows()):
            out[position] = record
    return pd.DataFrame(out).reset_index(drop=True)


def run_sdv(joined: pd.DataFrame, test: pd.DataFrame, args: argparse.Namespace) -> dict:
    import torch
    from sdv.single_table import CTGANSynthesizer

    torch.manual_seed(0)  # SDV has no seed argument; this benchmark process owns its global state
    synthesizer = CTGANSynthesizer(metadata(joined, TABLE), epochs=args.epochs)
    started = time.perf_counter()
    synthesizer.fit({TABLE.name: joined})
    fit_s = time.perf_counter() - started
    return {"contender": "SDV CTGAN central on the joined rows", "fit_s": fit_s,
            **scores(joined, synthesizer.sample(len(joined))[TABLE.name], test)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--model", default="argn", help="the server's latent model (a horizontal plugin; argn measured best)")
    parser.add_argument("--latent-dim", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--encoder-share", type=float, default=0.5)
    parser.add_argument("--only", default="fedtab,sdv,dp3,dp1", help="comma-separated: fedtab, sdv, dp3, dp1")
    parser.add_argument("--attack", action="store_true", help="also score the attack without DP")
    parser.add_argument("--ae-epochs", type=int, default=None, help="levers: the party autoencoders' epochs (default --epochs)")
    parser.add_argument("--model-options", default="{}", help="levers: the server model's options as JSON")
    parser.add_argument("--dp-epochs", type=int, default=5, help="design (c): each party's DP argn epochs")
    parser.add_argument("--link-share", type=float, default=0.3, help="design (c): the share of ε left for the link")
    parser.add_argument("--rows", type=int, default=None, help="use only this many intersection rows (a quick check)")
    parser.add_argument("--cache", default="/tmp/fedtab-vertical-levers", help="levers: where party latents are cached")
    parser.add_argument("--out", type=Path, default=HERE / "adult_vertical.jsonl")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    train, test = TABLE.load()
    parties, joined = party_tables(train)
    if args.rows:
        joined = joined.head(args.rows)
    print(f"intersection: {len(joined)} people; parties hold {[len(p) for p in parties.values()]}", flush=True)
    wanted = args.only.split(",")
    runs = {"fedtab": lambda: run_fedtab(parties, joined, test, args, None), "sdv": lambda: [run_sdv(joined, test, args)],
            "dp3": lambda: run_fedtab(parties, joined, test, args, 3.0), "dp1": lambda: run_fedtab(parties, joined, test, args, 1.0),
            "levers": lambda: run_levers(joined, test, args),
            "link3": lambda: run_dp_link(joined, test, args, 3.0), "link1": lambda: run_dp_link(joined, test, args, 1.0)}
    for name in wanted:
        for row in runs[name]():
            row.update(load=os.getloadavg()[0], epochs=args.epochs, model=args.model, latent_dim=args.latent_dim,
                       batch_size=args.batch_size, encoder_share=args.encoder_share)
            print(json.dumps(row), flush=True)
            with args.out.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
    if args.rows:
        return
    write_results([json.loads(line) for line in args.out.read_text(encoding="utf-8").splitlines() if line.strip()],
                  HERE / "RESULTS_VERTICAL.md", "levers" if "levers" in wanted else "table")


def write_results(rows: list[dict], path: Path, section: str = "table") -> None:
    """The table of every run recorded so far (the JSON lines file), rewritten whole between its section's markers."""
    def figure(value: object, digits: int = 3) -> str:
        return "–" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    lines = ["| contender | quality | shapes | pairs (all) | cross-party pairs | within-party pairs | TSTR ROC-AUC (GB) "
             "| attack AUC | ε spent per party | fit s | load (1 min) |", "|" + "---|" * 11]
    for r in rows:
        ledger = "–" if not r.get("ledger") else ", ".join(f"{p} {e:.2f}" for p, e in r["ledger"].items())
        name = r["contender"]
        if name.startswith(("fedtab vertical", "control:")):
            name += f" [latent model {r.get('model', 'tvae')}, width {r.get('latent_dim', 8)}]"
        lines.append(f"| {name} | {figure(r['quality'])} | {figure(r['shapes'])} | {figure(r['pairs'])} | "
                     f"{figure(r['cross_pairs'])} | {figure(r['within_pairs'])} | {figure(r['tstr_auc'])} | "
                     f"{figure(r.get('attack_auc'))} | {ledger} | {figure(r['fit_s'], 0)} | {figure(r['load'], 1)} |")
    trtr = next((r["trtr_auc"] for r in rows if r.get("trtr_auc") is not None), None)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    marker = f"<!-- {section}: benchmarks/adult_vertical.py writes it -->"
    head, _, tail = text.partition(marker)
    end = f"<!-- end {section} -->"
    tail = tail.split(end, 1)[1] if end in tail else ""
    table = "\n".join(lines) + f"\n\nTRTR ROC-AUC (real intersection rows, same classifier): {figure(trtr)}.\n"
    path.write_text(f"{head}{marker}\n{table}{end}{tail}", encoding="utf-8")


if __name__ == "__main__":
    main()
