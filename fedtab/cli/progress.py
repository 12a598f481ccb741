"""A rich progress display fed by the coordinator's progress callback, shown from the first round on."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from fedtab.federation.coordinator import Progress as ProgressCallback
from fedtab.federation.coordinator import metrics_text


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
            bar.update(tasks["training"], completed=done, losses=metrics_text(record))

        yield update
