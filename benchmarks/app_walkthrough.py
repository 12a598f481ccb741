"""The app's upload path on the full credit-default table, in headless Chromium: a screenshot per step.

The same walkthrough as tests/integration/test_app_browser.py (fedtab.app.browser), on the whole UCI
table (30,000 rows, ``ID`` dropped) split at random (seed 0) into three banks of 10,000 rows. The
screenshots go to benchmarks/app_walkthrough/ as small palette PNGs, the downloads and the party
files to benchmarks/out/ (git-ignored).

    nice -n 10 python benchmarks/app_walkthrough.py [--rounds 3] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from fedtab.app.browser import Walk, serve, walk

HERE = Path(__file__).resolve().parent
DATASETS = Path(os.environ.get("FEDTAB_DATASETS", HERE.parents[1] / "shared" / "datasets"))
TARGET = "default_payment_next_month"


def split_credit(folder: Path, seed: int = 0) -> tuple[Path, ...]:
    """Three banks from the full table: row i goes to bank (permutation(seed)[i] mod 3)."""
    table = pd.read_csv(DATASETS / "credit_default_taiwan.csv.gz").drop(columns="ID")
    bank = np.random.default_rng(seed).permutation(len(table)) % 3
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(("bank_a", "bank_b", "bank_c")):
        paths.append(folder / f"{name}.csv")
        table[bank == i].to_csv(paths[-1], index=False)
    return tuple(paths)


def small_png(target, path: Path) -> None:  # noqa: ANN001 - a Playwright page or element
    """A screenshot as a 64-colour palette PNG: a tenth of the size, still legible."""
    target.screenshot(path=str(path))
    Image.open(path).convert("RGB").quantize(colors=64).save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    parties = split_credit(HERE / "out" / "credit3")
    steps = Walk(parties=parties, target=TARGET, kind=("EDUCATION", "numerical"), rounds=args.rounds, epochs=args.epochs,
                 timeout_s=1800)
    shots = HERE / "app_walkthrough"
    for old in shots.glob("*.png"):
        old.unlink()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="walkthrough-") as tmp, serve(Path(tmp)) as url:
        files = walk(url, steps, shots, HERE / "out" / "app_walkthrough_downloads", chromium=args.chromium, shot=small_png)
    print(f"walkthrough: {time.monotonic() - start:.0f} s, {args.rounds} rounds × {args.epochs} epochs, load {os.getloadavg()}")
    for name, path in files.items():
        print(f"  {name}: {path.stat().st_size:,} bytes")
    written = pd.read_csv(files["synthetic.csv"])
    print(f"  synthetic.csv: {len(written):,} rows × {written.shape[1]} columns; {TARGET} shares "
          f"{written[TARGET].value_counts(normalize=True).round(3).to_dict()}")
    for png in sorted(shots.glob("*.png")):
        print(f"  {png.relative_to(HERE.parent)}: {png.stat().st_size:,} bytes")


if __name__ == "__main__":
    sys.exit(main())
