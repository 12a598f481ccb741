"""Cut the shipped demo federation from UCI Adult (CC BY 4.0): three parties, mildly non-IID.

Run once from the repo root: python benchmarks/make_demo_data.py ../shared/datasets/adult_train.csv.gz
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

SIZES = {"clinic_north": 2000, "clinic_south": 1500, "clinic_west": 1000}
HIGH_INCOME_SHARE = {"clinic_north": 0.24, "clinic_south": 0.12, "clinic_west": 0.40}


def main(source: str) -> None:
    frame = pd.read_csv(source, na_values=["?"], keep_default_na=True)
    rng = np.random.default_rng(7)
    high = frame.index[frame["income"] == ">50K"].to_numpy()
    low = frame.index[frame["income"] != ">50K"].to_numpy()
    rng.shuffle(high)
    rng.shuffle(low)
    out = Path(__file__).resolve().parents[1] / "fedtab" / "data" / "demo"
    out.mkdir(parents=True, exist_ok=True)
    for name, size in SIZES.items():
        n_high = int(round(size * HIGH_INCOME_SHARE[name]))
        rows = np.concatenate([high[:n_high], low[: size - n_high]])
        high, low = high[n_high:], low[size - n_high :]
        party = frame.loc[np.sort(rows)].reset_index(drop=True)
        party.to_parquet(out / f"{name}.parquet", index=False, compression="zstd")
        print(name, party.shape, (out / f"{name}.parquet").stat().st_size, "bytes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/datasets/adult_train.csv.gz")
