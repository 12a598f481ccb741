"""Encoder fit on Adult: fedtab's federated fit over 5 in-process parties vs ctgan's DataTransformer.

Run: ``python benchmarks/encoder_fit.py [--data PATH] [--parties 5] [--skip-ctgan]``. Prints both
fit times, the ratio, our encode/decode times and each numerical column's mean log-likelihood under
both mixtures (so speed is not bought with a worse fit).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from fedtab.schema import ColumnKind, ColumnSchema, PartyTable, TableSchema
from fedtab.transformers import PlanFitter, TransformPlan, local_statistics, mixture_log_likelihood

ADULT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "adult_train.csv.gz"
NUMERICAL = ("age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week")


def adult_schema(frame: pd.DataFrame) -> TableSchema:
    return TableSchema(
        tuple(
            ColumnSchema(name, ColumnKind.NUMERICAL, "int64", is_integer=True)
            if name in NUMERICAL
            else ColumnSchema(name, ColumnKind.CATEGORICAL, "object", has_missing=bool(frame[name].isna().any()))
            for name in frame.columns
        )
    )


def federated_fit(frame: pd.DataFrame, parties: int, mode: str) -> tuple[TransformPlan, float, int]:
    schema = adult_schema(frame)
    tables = [
        PartyTable(f"party{i}", frame.iloc[rows].reset_index(drop=True), schema)
        for i, rows in enumerate(np.array_split(np.arange(len(frame)), parties))
    ]
    started = time.perf_counter()
    fitter = PlanFitter(schema, mode=mode)  # type: ignore[arg-type]
    while (request := fitter.next_request()) is not None:
        fitter.merge([local_statistics(t, request) for t in tables])
    plan = fitter.finalize()
    return plan, time.perf_counter() - started, fitter.rounds_used


def ctgan_fit(frame: pd.DataFrame) -> tuple[object, float]:
    from ctgan.data_transformer import DataTransformer

    discrete = [c for c in frame.columns if c not in NUMERICAL]
    started = time.perf_counter()
    transformer = DataTransformer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        transformer.fit(frame, discrete)
    return transformer, time.perf_counter() - started


def ctgan_mixture(transformer: object, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    infos = transformer._column_transform_info_list  # type: ignore[attr-defined]
    info = next(i for i in infos if i.column_name == name)
    model = info.transform._bgm_transformer
    keep = info.transform.valid_component_indicator
    weights = model.weights_[keep] / model.weights_[keep].sum()
    return weights, model.means_[keep, 0], np.sqrt(model.covariances_[keep, 0, 0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=ADULT)
    parser.add_argument("--parties", type=int, default=5)
    parser.add_argument("--mode", choices=("exact", "histogram"), default="exact")
    parser.add_argument("--skip-ctgan", action="store_true")
    args = parser.parse_args()
    if not args.data.exists():
        raise SystemExit(f"{args.data} does not exist; pass --data with the Adult training CSV.")

    frame = pd.read_csv(args.data, na_values="?")
    plan, ours, rounds = federated_fit(frame, args.parties, args.mode)
    print(f"fedtab {args.mode} fit, {args.parties} parties: {ours:.2f} s in {rounds} rounds")

    rng = np.random.default_rng(0)
    started = time.perf_counter()
    encoded = plan.encode(frame, rng)
    encode_s = time.perf_counter() - started
    started = time.perf_counter()
    plan.decode(encoded, rng)
    print(f"encode {encoded.shape}: {encode_s:.3f} s, decode: {time.perf_counter() - started:.3f} s")

    if args.skip_ctgan:
        return
    transformer, theirs = ctgan_fit(frame.fillna("?"))
    print(f"ctgan DataTransformer.fit: {theirs:.2f} s")
    print(f"speed-up: {theirs / ours:.1f}x")
    print("mean log-likelihood per row (fedtab | ctgan):")
    for name in NUMERICAL:
        column = next(c for c in plan.columns if c.name == name)
        values = frame[name].to_numpy(dtype=float)
        mine = mixture_log_likelihood(values, np.array(column.weights), np.array(column.means), np.array(column.stds))
        theirs_mixture = ctgan_mixture(transformer, name)
        other = mixture_log_likelihood(values, *theirs_mixture)
        modes = f"{len(column.means)} | {len(theirs_mixture[0])} modes"
        print(f"  {name:15s} {mine:9.4f} | {other:9.4f}  ({modes})")


if __name__ == "__main__":
    main()
