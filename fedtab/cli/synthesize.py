"""`fedtab synthesize`: parties in, a synthetic table out, with live progress and a summary.

The SDK, the federation and the evaluators (torch, scikit-learn, Flower: seconds to import) load when the
command runs, not when the CLI starts, so ``fedtab --help`` and every other command answer at once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from fedtab.config import PARTY_EPSILON_HELP, FedtabConfig
from fedtab.connectors.inference import CODED_NOTE
from fedtab.connectors.sdv_metadata import PERSONAL_NOTE, read_schema
from fedtab.connectors.public_domain import read_public_domain
from fedtab.errors import ConfigError
from fedtab.federation.round_record import BYTES_RECEIVED, BYTES_SENT, reported_metrics
from fedtab.progress import metric_value

if TYPE_CHECKING:
    from fedtab.synthesizer import FederatedSynthesizer

_out = Console()


def parse_party(text: str) -> tuple[str, str]:
    name, sep, source = text.partition("=")
    if not sep or not name.strip() or not source.strip():
        raise ConfigError(f"--party must look like NAME=PATH_OR_URL (e.g. clinic_a=data/a.csv); got '{text}'.")
    return name.strip(), source.strip()


def parse_party_budgets(texts: list[str] | None) -> dict[str, float] | None:
    """``--party-budget NAME=EPS`` flags as a mapping; None when none was given (the config's stay)."""
    budgets: dict[str, float] = {}
    for text in texts or []:
        name, sep, value = text.partition("=")
        try:
            epsilon: float | None = float(value)
        except ValueError:
            epsilon = None
        if not sep or not name.strip() or epsilon is None:
            raise ConfigError(f"--party-budget must look like NAME=EPSILON (e.g. clinic_a=1.0); got '{text}'.")
        budgets[name.strip()] = epsilon
    return budgets or None


def _default(name: str) -> str:
    """The config's default for a flag left unset, shown in --help."""
    return str(getattr(FedtabConfig(), name))


def parse_columns(texts: list[str]) -> dict[str, str]:
    """``--column SEX=categorical`` flags as column -> kind; FedtabConfig checks the kind words."""
    kinds: dict[str, str] = {}
    for text in texts:
        name, sep, kind = text.partition("=")
        if not sep or not name.strip() or not kind.strip():
            raise ConfigError(f"--column must look like NAME=KIND (e.g. SEX=categorical); got '{text}'.")
        kinds[name.strip()] = kind.strip()
    return kinds


def parse_conditions(texts: list[str]) -> dict[str, str]:
    """``--condition sex=Female`` flags as column -> value; the sampler checks them against the plan."""
    fixed: dict[str, str] = {}
    for text in texts:
        name, sep, value = text.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ConfigError(f"--condition must look like NAME=VALUE (e.g. sex=Female); got '{text}'.")
        fixed[name.strip()] = value.strip()
    return fixed


def synthesize(
    party: Annotated[Optional[list[str]], typer.Option("--party", help="NAME=PATH_OR_URL, once per party.")] = None,
    model: Annotated[Optional[str], typer.Option(help="Model: argn (autoregressive; the best fidelity and utility measured), ctgan (conditional GAN), tvae (variational autoencoder) or fedtabdiff (diffusion). See the README's Models.", show_default=_default("model"))] = None,
    rounds: Annotated[Optional[int], typer.Option(help="Federated training rounds.", show_default=_default("rounds"))] = None,
    local_epochs: Annotated[Optional[float], typer.Option("--local-epochs", help="Local epochs per round on each party.", show_default=_default("local_epochs"))] = None,
    rows: Annotated[Optional[int], typer.Option(help="Synthetic rows to write.", show_default="as many as the parties hold")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed: same seed, same rows.", show_default=_default("seed"))] = None,
    epsilon: Annotated[Optional[float], typer.Option(help="Record-level DP budget per party (ε); omit for no DP.", show_default="no DP")] = None,
    delta: Annotated[Optional[float], typer.Option(help="DP δ per party.", show_default="min(1e-5, 0.1/n) of the largest party")] = None,
    encoder_share: Annotated[Optional[float], typer.Option("--encoder-share", help="Share of ε spent on encoder statistics.", show_default=_default("encoder_share"))] = None,
    party_epsilon: Annotated[Optional[float], typer.Option("--party-epsilon", help=PARTY_EPSILON_HELP)] = None,
    party_delta: Annotated[Optional[float], typer.Option("--party-delta", help="Party-level δ (far below 1/parties).", show_default="1e-5")] = None,
    party_clip: Annotated[Optional[float], typer.Option("--party-clip", help="Party-level DP: L2 bound on one party's update per round.", show_default=_default("party_clip"))] = None,
    party_budget: Annotated[Optional[list[str]], typer.Option("--party-budget", help="NAME=EPS: that party's own ε, which it enforces itself (default: --epsilon); once per party.")] = None,
    require_dp: Annotated[Optional[bool], typer.Option("--require-dp/--no-require-dp", help="Parties refuse requests without a privacy plan (default: on for parties with a budget).")] = None,
    party_state_dir: Annotated[Optional[Path], typer.Option("--party-state-dir", help="Folder where each party keeps its privacy record of the run (default: the checkpoint's folder).")] = None,
    public_domain: Annotated[Optional[Path], typer.Option("--public-domain", help="JSON/TOML of bounds and categories known without the data (a code book); DP spends nothing on them.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output file, .parquet or .csv.", show_default="synthetic.parquet (--demo: out/demo_synthetic.parquet)")] = None,
    save_model: Annotated[Optional[Path], typer.Option("--save-model", help="Also save the trained synthesizer here.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="A fedtab.toml with the run's settings.")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", help="Write a checkpoint here after the encoders and every round.")] = None,
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Continue the run a checkpoint holds (its settings unless --config); same parties.")] = None,
    evaluate: Annotated[bool, typer.Option("--evaluate", help="Score the result federatedly; write an HTML report and JSON next to --out.")] = False,
    target: Annotated[Optional[str], typer.Option(help="A categorical column the synthetic table must keep predictable: the model conditions on it, and --evaluate scores utility on it.")] = None,
    holdout_share: Annotated[Optional[float], typer.Option("--holdout-share", help="Share of each party's rows held out for --evaluate.", show_default="0.2")] = None,
    engine: Annotated[str, typer.Option(help="simulation (Flower, default) or local (in-process).")] = "simulation",
    demo: Annotated[bool, typer.Option("--demo", help="Run the shipped 3-party demo federation.")] = False,
    output_format: Annotated[str, typer.Option("--format", help="Summary as 'text' or 'json'.")] = "text",
    metadata: Annotated[Optional[Path], typer.Option("--metadata", help="SDV metadata JSON (SDV 1.x or 2.x) or a fedtab schema: every column's kind, checked against each party instead of inferred.")] = None,
    column: Annotated[Optional[list[str]], typer.Option("--column", help="NAME=KIND sets a column's kind (categorical, numerical, boolean, datetime, id) at every party; repeatable.")] = None,
    aggregation: Annotated[Optional[str], typer.Option("--aggregation", help="fedavg, similarity, similarity-softmax, or a robust rule for hostile parties: median, trimmed-mean, krum.", show_default=_default("aggregation"))] = None,
    min_parties: Annotated[Optional[int], typer.Option("--min-parties", help="Usable updates a training round needs to go on without parties that failed or were rejected; below it the run stops with a resumable checkpoint.", show_default="max(2, half the parties)")] = None,
    update_checks: Annotated[Optional[bool], typer.Option("--update-checks/--no-update-checks", help="Check every update before aggregation (finite, length, row claims).", show_default="on")] = None,
    update_bits: Annotated[Optional[int], typer.Option("--update-bits", help="Bits per value of model updates on the wire: 32, 16 or 8.", show_default=_default("update_bits"))] = None,
    vertical: Annotated[bool, typer.Option("--vertical", help="Parties hold different columns about the same people, joined on --key by private set intersection.")] = False,
    key: Annotated[Optional[list[str]], typer.Option("--key", help="Vertical runs: a key column every party identifies people by (never modelled or written); repeatable.")] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda (an error without a GPU) or auto (a GPU if there is one, else the CPU, with a warning): where training and sampling run.", show_default=_default("device"))] = None,
    secure_aggregation: Annotated[Optional[bool], typer.Option("--secure-aggregation", help="The server sees only sums of the encoder statistics and of the training updates (SecAgg+; FedAvg only), and each party adds a share of the DP noise so the sum carries it once. Needs --epsilon and declared categories (--public-domain); trusts an honest-but-curious server and at most --secure-dropouts colluding or lost parties.")] = None,
    secure_dropouts: Annotated[Optional[int], typer.Option("--secure-dropouts", help="Parties that may drop out of a secure sum or collude with the server (fewer than half); each party adds σ/√(P − T).", show_default="1 with 3+ parties")] = None,
    condition: Annotated[Optional[list[str]], typer.Option("--condition", help="NAME=VALUE fixes a column in every synthetic row and generates the rest given it (model argn); repeatable.")] = None,
) -> None:
    """Fit encoders and a model across parties that keep their rows, then write a synthetic table."""
    from fedtab.demo import demo_config, demo_parties
    from fedtab.evaluation_run import EvaluationRequest
    from fedtab.export import export_table
    from fedtab.progress import round_progress
    from fedtab.synthesizer import FederatedSynthesizer, load_checkpoint

    resumed = load_checkpoint(resume) if resume else None
    base = FedtabConfig.from_toml(config) if config else (
        resumed.config if resumed else demo_config() if demo else FedtabConfig())
    settings = base.replace(model=model, rounds=rounds, local_epochs=local_epochs, rows=rows, seed=seed,
                            epsilon=epsilon, delta=delta, encoder_share=encoder_share, holdout_share=holdout_share,
                            party_epsilon=party_epsilon, party_delta=party_delta, party_clip=party_clip,
                            public_domain=read_public_domain(public_domain) if public_domain else None,
                            checkpoint=str(checkpoint) if checkpoint else None,
                            party_budgets=parse_party_budgets(party_budget), require_dp=require_dp,
                            party_state_dir=str(party_state_dir) if party_state_dir else None, target=target,
                            aggregation=aggregation, min_parties=min_parties, update_checks=update_checks, update_bits=update_bits,
                            device=device, secure_aggregation=secure_aggregation, secure_dropouts=secure_dropouts)
    if column:
        settings = settings.replace(columns={**settings.columns, **parse_columns(column)})
    if vertical or key:
        settings = settings.replace(vertical=vertical or None, key_columns=tuple(key) if key else None)
    sources: dict[str, object] = dict(demo_parties()) if demo else {}
    for text in party or []:
        name, source = parse_party(text)
        if name in sources:
            raise ConfigError(f"Party '{name}' is given twice; every --party needs its own name.")
        sources[name] = source
    if not sources:
        raise ConfigError("No parties given. Pass --party NAME=PATH once per party, or --demo.")
    out_path = out or Path("out/demo_synthetic.parquet" if demo else "synthetic.parquet")
    if out_path.suffix.lower() not in (".parquet", ".pq", ".csv"):
        raise ConfigError(f"--out must end in .parquet or .csv; got '{out_path}'.")

    if settings.vertical:
        _synthesize_vertical(settings, sources, out_path, save_model, output_format, engine, evaluate)
        return
    started = time.perf_counter()
    synthesizer = FederatedSynthesizer(settings, engine=engine)  # type: ignore[arg-type]
    with round_progress(_out, settings.rounds, enabled=output_format == "text") as progress:
        request = EvaluationRequest(target=settings.target) if evaluate else None
        declared = read_schema(metadata) if metadata else None
        synthesizer.fit(sources, progress=progress, evaluate=request, resume_from=resumed, metadata=declared)  # type: ignore[arg-type]
    sample_started = time.perf_counter()
    frame = synthesizer.sample(conditions=parse_conditions(condition or []))
    sample_seconds = time.perf_counter() - sample_started
    export_table(frame, out_path, schema=synthesizer.state_.plan.schema)
    if save_model:
        synthesizer.save(save_model)
    summary = _summary(synthesizer, out_path, len(frame), time.perf_counter() - started, sample_seconds, save_model)
    if synthesizer.report_ is not None:
        summary["evaluation"] = _write_report(synthesizer.report_, out_path)
    if output_format == "json":
        typer.echo(json.dumps(summary, indent=2))
    else:
        _print_summary(summary, frame)


def _synthesize_vertical(settings: FedtabConfig, sources: dict[str, object], out_path: Path, save_model: Path | None,
                         output_format: str, engine: str, evaluate: bool) -> None:
    """A vertical run through the SDK (``VerticalSynthesizer``); ``evaluate``: each party scores its own columns
    (cross-party pairs are reported as unavailable, never computed by moving rows)."""
    from fedtab.export import export_table
    from fedtab.vertical_synthesizer import VerticalSynthesizer

    started = time.perf_counter()
    synthesizer = VerticalSynthesizer(settings, engine=engine).fit(sources, evaluate=evaluate)  # type: ignore[arg-type]
    sample_started = time.perf_counter()
    frame = synthesizer.sample()
    sample_seconds = time.perf_counter() - sample_started
    export_table(frame, out_path, schema=synthesizer.schema_)
    if save_model:
        synthesizer.save(save_model)
    fit = synthesizer.fit_
    summary = {"output": str(out_path), "rows": len(frame), "columns": len(frame.columns), "vertical": True,
               "intersection_rows": fit.rows, "parties": {p: list(info.columns) for p, info in fit.parties.items()},
               "latent_model": settings.model, "timings_s": {**{k: round(v, 2) for k, v in fit.timings.items()},
                                                            "sampling_s": round(sample_seconds, 2),
                                                            "total_s": round(time.perf_counter() - started, 2)},
               "model_folder": str(save_model) if save_model else None,
               "privacy": fit.ledger or "none: no differential privacy (pass --epsilon to add it)"}
    if synthesizer.report_ is not None:
        summary["evaluation"] = _write_vertical_report(synthesizer.report_, out_path)
    if output_format == "json":
        typer.echo(json.dumps(summary, indent=2))
        return
    table = Table(title="fedtab synthesize --vertical", show_header=False, title_justify="left")
    table.add_row("output", f"{out_path} ({len(frame)} rows × {len(frame.columns)} columns)")
    table.add_row("parties", "; ".join(f"{p}: {', '.join(c)}" for p, c in summary["parties"].items()))
    table.add_row("aligned", f"{fit.rows} people in every party's table (private set intersection)")
    table.add_row("privacy", summary["privacy"] if isinstance(summary["privacy"], str) else _privacy_text(summary["privacy"]))
    if "evaluation" in summary:
        e = summary["evaluation"]
        scores = "; ".join(f"{p}: shapes {_score(s['column_shapes'])}, pairs within {_score(s['pair_trends'])}"
                           for p, s in e["parties"].items())
        table.add_row("evaluation", f"{scores}; cross-party pairs unavailable (never computed by moving rows); report {e['report']}")
    _out.print(table)
    _out.print(frame.head(5).to_string(max_colwidth=14))


def _score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _write_vertical_report(report, out_path: Path) -> dict:  # type: ignore[no-untyped-def]
    html = report.to_html(out_path.with_suffix(".report.html"))
    scores = report.to_json(out_path.with_suffix(".scores.json"))
    parties = report.to_dict()["parties"]  # NaN (a party with one column has no pair) as null
    return {"report": str(html), "scores": str(scores), "cross_party_pairs": "unavailable",
            "parties": {p["party"]: {"column_shapes": p["column_shapes"], "pair_trends": p["pair_trends"]} for p in parties}}


def _write_report(report, out_path: Path) -> dict:  # type: ignore[no-untyped-def]
    html = report.to_html(out_path.with_suffix(".report.html"))
    scores = report.to_json(out_path.with_suffix(".scores.json"))
    return {"report": str(html), "scores": str(scores), "verdicts": {v.area: v.level for v in report.verdicts},
            **key_figures(report)}


def key_figures(report) -> dict:  # type: ignore[no-untyped-def]
    """Quality and, with a target, each classifier's train-on-synthetic score beside its train-on-real one."""
    figures: dict = {"quality": round(float(report.fidelity.quality_score), 3)}
    utility = report.utility
    if utility is not None:
        metric = utility.primary_metric
        figures["utility"] = {"target": utility.target, "metric": metric,
                              "tstr": {m.model: m.tstr.get(metric) for m in utility.models},
                              "trtr": {m.model: m.trtr.get(metric) for m in utility.models}}
    return figures


def _figures_text(evaluation: dict) -> str:
    text = f"quality {evaluation['quality']:.3f}"
    utility = evaluation.get("utility")
    if utility:
        def scores(by_model: dict) -> str:
            return " / ".join("n/a" if v is None else f"{v:.3f}" for v in by_model.values())
        text += (f"; {utility['metric']} on '{utility['target']}' ({' / '.join(utility['tstr'])}): trained on synthetic "
                 f"{scores(utility['tstr'])}, on real {scores(utility['trtr'])}")
    return text


def _noted(synthesizer: FederatedSynthesizer, start: str) -> list[str]:
    """Columns whose local note (inference or metadata on the parties here) starts with ``start``, in schema order."""
    notes = synthesizer.local_notes_
    return [c.name for c in synthesizer.state_.plan.schema if notes.get(c.name, "").startswith(start)]


def _summary(synthesizer: FederatedSynthesizer, target: Path, rows: int, total_s: float, sample_s: float, model_path: Path | None) -> dict:
    state = synthesizer.state_
    last = state.history[-1] if state.history else {}
    return {
        "output": str(target),
        "rows": rows,
        "columns": len(state.plan.schema),
        "parties": dict(sorted(state.parties.items())),
        "model": state.config.model,
        "rounds": state.config.rounds,
        "final_losses": reported_metrics(last),
        "timings_s": {**{k: round(v, 2) for k, v in state.timings.items()}, "sampling_s": round(sample_s, 2), "total_s": round(total_s, 2)},
        "notes": list(state.plan.notes),
        "coded_categorical": _noted(synthesizer, CODED_NOTE),
        "personal_data": _noted(synthesizer, PERSONAL_NOTE),
        "warnings": list(state.warnings),
        "model_file": str(model_path) if model_path else None,
        "resumed_at": list(state.resumed_at),
        "wire": wire_summary(state.history, state.config.update_bits),
        "privacy": state.ledger or "none: no differential privacy (pass --epsilon and/or --party-epsilon to add it)",
    }


def _print_summary(summary: dict, frame) -> None:  # type: ignore[no-untyped-def]
    table = Table(title="fedtab synthesize", show_header=False, title_justify="left")
    table.add_row("output", f"{summary['output']} ({summary['rows']} rows × {summary['columns']} columns)")
    table.add_row("parties", ", ".join(f"{k} ({plural(v, 'row')})" for k, v in summary["parties"].items()))
    table.add_row("model", f"{summary['model']}, {plural(summary['rounds'], 'round')}; final " + ", ".join(f"{k} {metric_value(k, v)}" for k, v in summary["final_losses"].items()))
    if summary["coded_categorical"]:
        table.add_row("kinds", f"{', '.join(summary['coded_categorical'])}: few small integers, read as categories. "
                      "To model one as a number: --column NAME=numerical")
    if summary["personal_data"]:
        table.add_row("[bold yellow]personal data[/]", f"{', '.join(summary['personal_data'])}: not modelled (the "
                      "metadata marks them personal data); synthetic rows get fresh values. To model one: --column NAME=categorical")
    t = summary["timings_s"]
    table.add_row("time", f"encoders {t.get('encoders_s', 0):.1f} s, training {t.get('training_s', 0):.1f} s, sampling {t['sampling_s']:.1f} s, total {t['total_s']:.1f} s")
    if summary["wire"]:
        table.add_row("on the wire", _wire_text(summary["wire"]))
    if summary["resumed_at"]:
        table.add_row("resumed", "from a checkpoint after round " + ", ".join(str(r) for r in summary["resumed_at"]))
    table.add_row("privacy", _privacy_text(summary["privacy"]))
    if summary["model_file"]:
        table.add_row("model file", summary["model_file"])
    if "evaluation" in summary:
        e = summary["evaluation"]
        table.add_row("evaluation", ", ".join(f"{k}: {v}" for k, v in e["verdicts"].items()) + f"; {_figures_text(e)}; "
                      f"report {e['report']}")
    for note in summary["notes"]:
        table.add_row("note", note)
    for warning in summary["warnings"]:
        table.add_row("[yellow]warning[/]", warning)
    _out.print(table)
    _out.print(frame.head(5).to_string(max_colwidth=14))


def wire_summary(history: list[dict[str, float]], bits: int) -> dict:
    """Bytes per training round (mean over rounds), in total and per party; empty when the transport measured none."""
    rounds = [r for r in history if BYTES_SENT in r]
    if not rounds:
        return {}

    def mean(key: str) -> float:
        return float(sum(r.get(key, 0.0) for r in rounds) / len(rounds))

    parties = sorted({k.split(".", 1)[1] for r in rounds for k in r if k.startswith(BYTES_SENT + ".")})
    return {"update_bits": bits, "rounds": len(rounds), "sent_per_round": mean(BYTES_SENT),
            "received_per_round": mean(BYTES_RECEIVED),
            "per_party": {p: {"sent": mean(f"{BYTES_SENT}.{p}"), "received": mean(f"{BYTES_RECEIVED}.{p}")} for p in parties}}


def _wire_text(wire: dict) -> str:
    parties = ", ".join(f"{p} {v['sent'] / 1e3:.0f}/{v['received'] / 1e3:.0f} kB" for p, v in wire["per_party"].items())
    return (f"per training round {wire['sent_per_round'] / 1e3:.0f} kB sent, {wire['received_per_round'] / 1e3:.0f} kB "
            f"received (updates at {wire['update_bits']} bits); per party sent/received: {parties}")


def plural(count: int, word: str) -> str:
    """'1 round', '3 rounds'."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _privacy_text(privacy: dict | str) -> str:
    if isinstance(privacy, str):
        return privacy
    from fedtab.privacy.ledger import PrivacyLedger

    return "\n".join(PrivacyLedger.from_dict(privacy).summary_lines())


def register(app: typer.Typer) -> None:
    app.command("synthesize")(synthesize)
