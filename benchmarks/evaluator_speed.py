"""How long a full evaluation of 32,561 × 15 synthetic rows against Adult train and holdout takes, and where.

Run: ``python benchmarks/evaluator_speed.py``. The synthetic table is a 2 % jittered copy of the
train rows (same size and columns as a real generator's output). Prints the split by stage and
the machine's load, since the build machine is shared.
"""

from __future__ import annotations

import os
import time

import numpy as np

from evaluator_scenarios import adult, jittered
from fedtab.evaluators import evaluate


def main() -> None:
    train, test = adult()
    synthetic = jittered(train, 0.02, np.random.default_rng(0))
    stages: dict[str, float] = {}
    last = [time.perf_counter(), ""]

    def progress(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if last[1]:
            stages[last[1]] = stages.get(last[1], 0.0) + now - last[0]
        last[0], last[1] = now, stage

    load = os.getloadavg()[0]
    started = time.perf_counter()
    report = evaluate(train, synthetic, holdout=test, target="income", seed=0, progress=progress)
    total = time.perf_counter() - started
    stages[last[1]] = stages.get(last[1], 0.0) + time.perf_counter() - last[0]
    print(f"synthetic {report.rows['synthetic']:,} x {len(report.columns)}, train {report.rows['real']:,}, holdout {report.rows['holdout']:,}")
    print(f"load average before: {load:.2f} on {os.cpu_count()} cores")
    print(f"total: {total:.1f} s  ({'under' if total < 60 else 'OVER'} the 60 s budget)")
    print("by stage (from progress callbacks):")
    for stage, seconds in stages.items():
        print(f"  {stage:<10} {seconds:6.1f} s")
    print("by area (the report's own timings):")
    for name, seconds in report.timings.items():
        print(f"  {name:<48} {seconds:6.1f} s")


if __name__ == "__main__":
    main()
