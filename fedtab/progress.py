"""A rich progress display fed by the coordinator's progress callback, for the CLI and the SDK's ``progress=True``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager, nullcontext
from typing import ContextManager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from fedtab.federation.round_record import Progress as ProgressCallback
from fedtab.federation.round_record import reported_metrics

SHOWN_METRICS = 4
"""At most this many of a round's metrics are shown next to the bar."""


def metrics_text(record: Mapping[str, float], sep: str = "  ") -> str:
    """A round's numbers, whatever the model reports (losses first): 'loss_d -0.412  loss_g +1.203'."""
    numbers = {k: v for k, v in reported_metrics(record).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    ordered = sorted(numbers, key=lambda k: (not k.startswith("loss"), k))[:SHOWN_METRICS]
    return sep.join(f"{k} {metric_value(k, numbers[k])}" for k in ordered)


def metric_value(name: str, value: float) -> str:
    """Losses keep their sign (a critic's loss is often negative); counts such as steps read as counts."""
    if name.startswith("loss"):
        return f"{float(value):+.3f}"
    return f"{int(value):,}" if float(value).is_integer() else f"{float(value):.3f}"


def progress_display(progress: ProgressCallback | bool | None, rounds: int) -> ContextManager[ProgressCallback | None]:
    """``True``: a rich bar on the terminal; a callable: itself; ``None``/``False``: nothing."""
    if progress is True:
        return round_progress(Console(stderr=True), rounds)
    return nullcontext(progress or None)


@contextmanager
def round_progress(console: Console, rounds: int, *, enabled: bool = True) -> Iterator[ProgressCallback]:
    """Yields a callback; the bars appear only once the federation reports, so input errors print alone."""
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.fields[losses]}")]
    with ExitStack() as stack:
        tasks: dict[str, TaskID] = {}
        bar = Progress(*columns, console=console, disable=not enabled, transient=False)

        def start() -> None:
            stack.enter_context(bar)
            tasks["encoders"] = bar.add_task("encoder statistics", total=None, losses="")
            tasks["training"] = bar.add_task("training rounds", total=rounds, losses="", start=False)

        def update(stage: str, done: int, total: int, record: Mapping[str, float]) -> None:
            if not tasks:
                start()
            if stage == "encoders":
                bar.update(tasks["encoders"], completed=done, description=f"encoder statistics (round {done})")
                return
            if not bar.tasks[tasks["training"]].started:
                bar.update(tasks["encoders"], total=bar.tasks[tasks["encoders"]].completed)
                bar.start_task(tasks["training"])
            bar.update(tasks["training"], completed=done, total=total, losses=metrics_text(record))

        yield update
