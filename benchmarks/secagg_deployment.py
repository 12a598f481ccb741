"""The deployment engine with secure aggregation, once: the README's loopback deployment (TLS, SuperNode
authentication, 3 parties of 300 rows; tests/e2e/test_deployment.py's Stack), then a second run on the same
SuperLink and SuperNodes with ``secure-aggregation = true`` and Adult's code book added to its deploy.toml.
Prints both runs' wall time, Flower's bytes on the wire and the secure model's ledger mechanisms.

    python benchmarks/secagg_deployment.py FOLDER
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from test_deployment import Stack  # noqa: E402


def main(folder: Path) -> None:
    from fedtab.model_state import ModelState

    folder.mkdir(parents=True, exist_ok=True)
    stack = Stack(folder)
    try:
        started = time.monotonic()
        stack.run_readme()
        print(f"README run: {time.monotonic() - started:.1f} s; {stack.outputs[-1].stdout.strip().splitlines()[-1]}", flush=True)
        toml = (folder / "deploy.toml").read_text().replace("epsilon = 3.0\n", "epsilon = 3.0\nsecure-aggregation = true\n")
        toml += "\n" + (ROOT / "fedtab" / "data" / "demo" / "public_domain.toml").read_text()
        (folder / "deploy-secure.toml").write_text(toml)
        started = time.monotonic()
        done = stack.call(f"fedtab deploy run fedtab --run-config \"parties='bank-a,bank-b,bank-c' "
                          f"config-path='{folder / 'deploy-secure.toml'}' model-out='{folder / 'secure.fedtab'}'\"")
        lines = [line for line in done.stdout.splitlines() if line.startswith("fedtab:")]
        print(f"secure run: {time.monotonic() - started:.1f} s, exit {done.returncode}, load {os.getloadavg()[0]:.1f}",
              *lines, sep="\n", flush=True)
        ledger = ModelState.load(folder / "secure.fedtab").ledger
        print("mechanisms", sorted({m["mechanism"] for p in ledger["parties"] for m in p["mechanisms"]}))
    finally:
        stack.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
