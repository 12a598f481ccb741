"""What a deployment-engine message pays to start the ClientApp: a fresh interpreter importing the entry module.

Flower starts ``flwr-clientapp`` afresh for every message. Before the light entry (``node_app``) the
ClientApp lived in ``fedtab.federation.apps``, which still imports everything (the ServerApp side, the
full workers, torch, Opacus): it stands for the old start. Runs alternate so load drifts hit both alike.

    nice -n 10 python benchmarks/client_app_start.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

ENTRIES = {"before: fedtab.federation.apps": "fedtab.federation.apps",
           "after: fedtab.federation.node_app": "fedtab.federation.node_app",
           "after + a PSI message's modules": "fedtab.federation.node_app, fedtab.federation.alignment, fedtab.privacy.psi"}


def start(modules: str) -> tuple[float, float]:
    """Wall and CPU seconds of one fresh interpreter importing ``modules``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {modules}"], check=True)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in ENTRIES}
    load = os.getloadavg()[0]
    for _ in range(args.repeats):
        for name, modules in ENTRIES.items():
            times[name].append(start(modules))
    print(f"load {load:.1f} -> {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores, median of {args.repeats}")
    for name, runs in times.items():
        print(f"{name:40s} wall {statistics.median(w for w, _ in runs):5.2f} s   cpu {statistics.median(c for _, c in runs):5.2f} s")


if __name__ == "__main__":
    main()
