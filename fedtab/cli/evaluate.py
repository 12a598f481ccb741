"""`fedtab evaluate`: score a synthetic table against real rows, write the HTML report and the JSON.

The evaluators (torch, scikit-learn, SDMetrics) load when the command runs, not when the CLI starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from fedtab.errors import ConfigError

if TYPE_CHECKING:
    from fedtab.evaluators import EvaluationReport
    from fedtab.evaluators.context import Progress as ProgressCallback

STAGES = {
    "prepare": "fit on the synthetic table",
    "tstr": "train models on synthetic rows",
    "fidelity": "column statistics",
    "trtr": "train models on real rows",
    "privacy": "distances and attacks",
    "sdmetrics": "SDMetrics reports",
}
STYLES = {"green": "bold green", "amber": "bold yellow", "red": "bold red", "grey": "bold"}


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_command)


def evaluate_command(
    real: Annotated[Path, typer.Option("--real", help="The real rows the generator was trained on (CSV or Parquet).")],
    synthetic: Annotated[Path, typer.Option("--synthetic", help="The synthetic table to evaluate (CSV or Parquet).")],
    holdout: Annotated[Optional[Path], typer.Option("--holdout", help="Real rows the generator never saw; needed for utility and membership risk.")] = None,
    target: Annotated[Optional[str], typer.Option("--target", help="Column to predict for utility (classification or regression).")] = None,
    report: Annotated[Path, typer.Option("--report", help="Where to write the HTML report.")] = Path("report.html"),
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Where to write every figure as JSON.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the samples and models: same seed, same figures.")] = 0,
) -> None:
    """Fidelity, utility and membership risk of a synthetic table, as an HTML report and JSON."""
    if report.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"--report must end in .html; got '{report}'. Pass e.g. --report report.html.")
    if json_path is not None and json_path.suffix.lower() != ".json":
        raise ConfigError(f"--json must end in .json; got '{json_path}'. Pass e.g. --json scores.json.")
    from fedtab.evaluators import evaluate
    from fedtab.evaluators.files import read_table

    console = Console()
    frames = {"real": read_table(real, "real"), "synthetic": read_table(synthetic, "synthetic")}
    frames["holdout"] = read_table(holdout, "holdout") if holdout is not None else None
    with stage_progress(console) as progress:
        result = evaluate(frames["real"], frames["synthetic"], holdout=frames["holdout"], target=target, seed=seed, progress=progress)
    for path in (report, json_path):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
    result.to_html(report)
    if json_path is not None:
        result.to_json(json_path)
    print_summary(console, result, report, json_path)


@contextmanager
def stage_progress(console: Console) -> Iterator[ProgressCallback]:
    """A bar per slow stage, added the first time the evaluation reports that stage."""
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    tasks: dict[str, TaskID] = {}
    with Progress(*columns, console=console, transient=False) as bars:

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(STAGES.get(stage, stage), total=total)
            bars.update(tasks[stage], completed=done, total=total)

        yield update


def print_summary(console: Console, result: EvaluationReport, report: Path, json_path: Path | None) -> None:
    table = Table(title="fedtab evaluation", show_header=True, header_style="bold")
    table.add_column("area")
    table.add_column("verdict")
    table.add_column("why")
    for verdict in result.verdicts:
        table.add_row(verdict.area, f"[{STYLES[verdict.colour]}]{verdict.headline}[/]", verdict.explanation)
    console.print(table)
    console.print(_figures(result))
    console.print(f"report: {report}" + (f"   figures: {json_path}" if json_path else ""))


def _figures(result: EvaluationReport) -> str:
    f, u, p = result.fidelity, result.utility, result.privacy
    parts = [f"quality {f.quality_score:.3f} (shapes {f.column_shapes:.3f}, pair trends {f.column_pair_trends:.3f})"]
    if u is not None:
        parts.append(f"relative utility {u.relative_utility:.3f}")
    if p is not None and p.has_holdout:
        parts.append(f"attack AUC {p.attack_auc:.3f}, DCR share {p.dcr_share:.3f}")
    return " · ".join(parts)
