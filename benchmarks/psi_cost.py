"""What vertical alignment costs: 3 parties, each holding a random 90 % of the people, over the in-process transport.

Times every message type (summed over parties), counts the bytes each carries, checks the intersection
against a pandas merge, and appends the figures with the machine's load to benchmarks/RESULTS_PSI.md.

    python benchmarks/psi_cost.py [--keys 100000 10000] [--seed 0] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fedtab.federation.alignment import LocalAlignment, align_parties
from fedtab.federation.payload import Payload

HERE = Path(__file__).resolve().parent
PARTIES = ("bank", "insurer", "registry")
KEY = ("person_id",)
TABLE_HEAD = ("| keys | intersection | exact / same order | wall | CPU | critical path | per message | bytes | load |\n"
              "|---|---|---|---|---|---|---|---|---|")


def tables(keys_per_party: int, seed: int, share: float = 0.9) -> dict[str, pd.DataFrame]:
    """Each party a different random ``share`` of one population, rows shuffled independently."""
    people = int(round(keys_per_party / share))
    rng = np.random.default_rng(seed)
    ids = np.array([f"person-{i:07d}" for i in range(people)], dtype=object)
    out = {}
    for k, party in enumerate(PARTIES):
        held = rng.permutation(people)[:keys_per_party]
        out[party] = pd.DataFrame({"person_id": ids[held], f"value_{k}": rng.normal(size=keys_per_party)})
    return out


def measure(keys_per_party: int, seed: int) -> dict:
    data = tables(keys_per_party, seed)
    sent: dict[str, int] = {}

    def tap(direction: str, party: str, message_type: str, payload: Payload) -> None:
        sent[message_type] = sent.get(message_type, 0) + payload.num_bytes

    transport = LocalAlignment(data, KEY, tap=tap)
    started, cpu = time.perf_counter(), time.process_time()
    size = align_parties(transport, KEY, min_rows=1, seed=seed)
    total, cpu = time.perf_counter() - started, time.process_time() - cpu
    merged = data["bank"].merge(data["insurer"], on="person_id").merge(data["registry"], on="person_id")
    orders = [data[p]["person_id"].to_numpy()[transport.states[p]["align.rows"]] for p in PARTIES]
    exact = size == len(merged) and set(orders[0]) == set(merged["person_id"])
    same_order = all(np.array_equal(orders[0], o) for o in orders[1:])
    return {"keys": keys_per_party, "intersection": size, "exact": exact, "same_order": same_order,
            "total_s": total, "cpu_s": cpu, "critical_path_s": transport.critical_path_s,
            "phases": dict(transport.timings), "bytes": sent}


def report(result: dict, load_before: str, load_after: str) -> str:
    phases = " · ".join(f"{name.split('.')[-1]} {seconds:.1f} s" for name, seconds in result["phases"].items())
    megabytes = sum(result["bytes"].values()) / 1e6
    return (f"| {result['keys']:,} | {result['intersection']:,} | {result['exact']} / {result['same_order']} | "
            f"**{result['total_s']:.1f} s** | {result['cpu_s']:.1f} s | {result['critical_path_s']:.1f} s | {phases} | "
            f"{megabytes:.1f} MB | {load_before} → {load_after} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, nargs="+", default=[100_000, 10_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rows = []
    for count in args.keys:
        before = "{:.2f}".format(os.getloadavg()[0])
        result = measure(count, args.seed)
        rows.append(report(result, before, "{:.2f}".format(os.getloadavg()[0])))
        print(rows[-1], flush=True)
    if not args.no_write:
        with open(HERE / "RESULTS_PSI.md", "a", encoding="utf-8") as out:
            out.write("\n".join([f"\n### {_run_label()}\n", TABLE_HEAD, *rows]) + "\n")


def _run_label() -> str:
    """When and on which commit the figures were taken."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=HERE, capture_output=True,
                           text=True).stdout.strip()
    return f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit or '?'}{' (modified)' if dirty else ''}"


if __name__ == "__main__":
    main()
