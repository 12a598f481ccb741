"""A rich progress display fed by the coordinator's progress callback."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from fedtab.federation.coordinator import Progress as ProgressCallback


@contextmanager
def round_progress(console: Console, rounds: int, *, enabled: bool = True) -> Iterator[ProgressCallback]:
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.fields[losses]}")]
    with Progress(*columns, console=console, disable=not enabled, transient=False) as bar:
        encoders = bar.add_task("encoder statistics", total=None, losses="")
        training = bar.add_task("training rounds", total=rounds, losses="", start=False)

        def update(stage: str, done: int, total: int, record: Mapping[str, float]) -> None:
            if stage == "encoders":
                bar.update(encoders, completed=done, description=f"encoder statistics (round {done})")
                return
            if not bar.tasks[training].started:
                bar.update(encoders, total=bar.tasks[encoders].completed)
                bar.start_task(training)
            losses = "  ".join(f"{k} {record[k]:+.3f}" for k in ("loss_g", "loss_d") if k in record)
            bar.update(training, completed=done, losses=losses)

        yield update
