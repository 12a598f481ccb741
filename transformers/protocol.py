"""The party side of the encoder fit: what a request carries and what a party sends back.

Everything a party returns is an aggregate whose size depends only on the schema and the request
(never on the party's row count), held as flat string keys → numpy arrays, so a transport can ship
it and a privatizer can clip and noise it before it leaves. Keys are the constants below; the
server (``fitter``) and every transport read them from here.

A request whose config holds ``CFG_PRIVATE: True`` is answered by ``private_party`` through the
party's Gaussian release only; a party that holds a release answers nothing else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fedtab.errors import ConfigError, PartyError, PrivacyBudgetError
from fedtab.rng import numpy_rng
from fedtab.schema import PartyTable
from fedtab.transformers import mixture, pairs, private_party
from fedtab.transformers.values import category_labels, numeric_values
from fedtab.transformers.vocabulary import party_top_values

ConfigValue = int | float | str | bool | list[str]

STAGE_SUMMARY = "summary"
STAGE_HISTOGRAM = "histogram"
STAGE_EM = "em"
STAGE_PAIRS = "pairs"
STAGES = (STAGE_SUMMARY, STAGE_HISTOGRAM, STAGE_EM, STAGE_PAIRS)
PRIVATE_STAGES = (STAGE_SUMMARY, STAGE_HISTOGRAM, STAGE_PAIRS)

# Request config keys.
CFG_NUMERICAL = "numerical"
CFG_NUMERICAL_KINDS = "numerical_kinds"
CFG_DATETIME_FORMATS = "datetime_formats"
CFG_DISCRETE = "discrete"
CFG_BOOLEAN = "boolean"
CFG_MAX_CATEGORIES = "max_categories"
CFG_MOMENTS = "moments"
CFG_BINS = "bins"
CFG_SAMPLE_CAP = "sample_cap"
CFG_SEED = "seed"
CFG_PRIVATE = "private"
CFG_DECLARED = "declared_categories"
CFG_TARGET = "pairs.target"
CFG_PAIR_COLUMNS = "pairs.columns"
CFG_PAIR_PLAN = "pairs.plan"

# Request array keys.
REQ_LOW = "hist.low"
REQ_WIDTH = "hist.width"
REQ_LOC = "em.loc"
REQ_SCALE = "em.scale"
REQ_POPULATION = "em.population"
REQ_STATE = {name: f"em.state.{name}" for name in mixture.STATE_FIELDS}

# Reply keys.
ROWS = "rows"
NUM_COUNT = "num.count"
NUM_MISSING = "num.missing"
NUM_MIN = "num.min"
NUM_MAX = "num.max"
NUM_SUM = "num.sum"
NUM_M2 = "num.m2"
NUM_OFF_GRID = "num.off_grid"
CAT_LABELS = "cat.labels"
CAT_COUNTS = "cat.counts"
CAT_MISSING = "cat.missing"
CAT_REST = "cat.rest"
CAT_REST_DISTINCT = "cat.rest_distinct"
CAT_PRESENT = "cat.present"
NUM_BOUND_COUNTS = "num.bound_counts"
HIST_COUNTS = "hist.counts"
EM_NK = "em.nk"
EM_S1 = "em.s1"
EM_S2 = "em.s2"
EM_ENTROPY = "em.entropy"
EM_TOTAL = "em.total"
PAIR_COUNTS = "pairs.counts"

DATETIME_KIND = "datetime"
# Grids a column may sit on: whole numbers, and for dates whole minutes, hours and days (in seconds).
GRID_STEPS = (1.0, 60.0, 3600.0, 86400.0)


@dataclass(frozen=True)
class StatsRequest:
    """One message from the server to every party: the stage, the arrays it needs, plain settings."""

    stage: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    config: dict[str, ConfigValue] = field(default_factory=dict)


def local_statistics(
    table: PartyTable,
    request: StatsRequest,
    *,
    seed: int = 0,
    release: private_party.StatisticsRelease | None = None,
    threshold_delta: float | None = None,
) -> dict[str, np.ndarray]:
    """Answer a request from this party's rows with aggregate statistics only (never a row).

    ``release`` (the party's ``GaussianRelease``) and ``threshold_delta`` (its plan's partition
    selection δ) are required for private requests; a party given a release refuses any other.
    """
    absent = [c for c in _requested_columns(request) if c not in table.frame.columns]
    if absent:
        raise PartyError(
            f"Party '{table.name}' has no column(s) {absent} that the '{request.stage}' request asks for; it "
            f"has {list(table.frame.columns)}. Give every party the same schema (or rename its columns)."
        )
    if bool(request.config.get(CFG_PRIVATE, False)):
        if request.stage not in PRIVATE_STAGES:
            raise ConfigError(
                f"Private statistics have stages {PRIVATE_STAGES}; got {request.stage!r}. "
                "Update the server."
            )
        return private_party.private_statistics(table, request, release, threshold_delta)
    if release is not None:
        raise PrivacyBudgetError(
            f"Party '{table.name}' releases only differentially private statistics, but the server sent a "
            f"non-private '{request.stage}' request (exact counts, bounds or moments). Run the server's encoder "
            "fit with mode='private', or run the party without a privacy budget."
        )
    if request.stage == STAGE_SUMMARY:
        return _summary(table, request)
    if request.stage == STAGE_HISTOGRAM:
        return _histogram(table, request)
    if request.stage == STAGE_EM:
        return _em(table, request, seed)
    if request.stage == STAGE_PAIRS:
        return pairs.party_pairs(table, request)
    raise ConfigError(f"Unknown statistics stage {request.stage!r}; expected one of {STAGES}. Update the party.")


def _requested_columns(request: StatsRequest) -> list[str]:
    target = [str(request.config[CFG_TARGET])] if CFG_TARGET in request.config else []
    return (list(request.config.get(CFG_NUMERICAL, [])) + list(request.config.get(CFG_DISCRETE, []))
            + target + list(request.config.get(CFG_PAIR_COLUMNS, [])))


def numeric_columns(table: PartyTable, request: StatsRequest) -> list[np.ndarray]:
    """Every numerical column the request names, as floats (epoch seconds for dates; NaN = missing)."""
    names = list(request.config[CFG_NUMERICAL])
    kinds = list(request.config[CFG_NUMERICAL_KINDS])
    formats = list(request.config[CFG_DATETIME_FORMATS])
    return [
        numeric_values(
            table.frame[name], column=name, party=table.name,
            is_datetime=kind == DATETIME_KIND, datetime_format=fmt or None,
        )
        for name, kind, fmt in zip(names, kinds, formats)
    ]


def _summary(table: PartyTable, request: StatsRequest) -> dict[str, np.ndarray]:
    out = {ROWS: np.array([float(table.num_rows)])}
    out.update(_numeric_summary(numeric_columns(table, request), bool(request.config[CFG_MOMENTS])))
    out.update(_discrete_summary(table, request))
    return out


def _numeric_summary(columns: list[np.ndarray], moments: bool) -> dict[str, np.ndarray]:
    count, missing, low, high, total, m2 = (np.zeros(len(columns)) for _ in range(6))
    off_grid = np.zeros((len(columns), len(GRID_STEPS)))
    for j, values in enumerate(columns):
        finite = values[~np.isnan(values)]
        count[j], missing[j] = len(finite), len(values) - len(finite)
        low[j] = finite.min() if len(finite) else np.inf
        high[j] = finite.max() if len(finite) else -np.inf
        total[j] = finite.sum()
        m2[j] = ((finite - finite.mean()) ** 2).sum() if len(finite) else 0.0
        steps = np.asarray(GRID_STEPS)
        off_grid[j] = np.count_nonzero(finite[:, None] != np.round(finite[:, None] / steps) * steps, axis=0)
    out = {NUM_COUNT: count, NUM_MISSING: missing, NUM_MIN: low, NUM_MAX: high, NUM_OFF_GRID: off_grid}
    if moments:
        out.update({NUM_SUM: total, NUM_M2: m2})
    return out


def _discrete_summary(table: PartyTable, request: StatsRequest) -> dict[str, np.ndarray]:
    names = list(request.config[CFG_DISCRETE])
    booleans = set(request.config[CFG_BOOLEAN])
    width = int(request.config[CFG_MAX_CATEGORIES])
    labels = np.full((len(names), width), "", dtype=object)
    counts = np.zeros((len(names), width))
    missing, rest, rest_distinct = (np.zeros(len(names)) for _ in range(3))
    for j, name in enumerate(names):
        codes, uniques = category_labels(table.frame[name], column=name, party=table.name, boolean=name in booleans)
        top = party_top_values(codes, uniques, width)
        labels[j], counts[j] = top.labels, top.counts
        missing[j], rest[j], rest_distinct[j] = np.count_nonzero(codes < 0), top.rest, top.rest_distinct
    return {
        CAT_LABELS: labels.astype(str),
        CAT_COUNTS: counts,
        CAT_MISSING: missing,
        CAT_REST: rest,
        CAT_REST_DISTINCT: rest_distinct,
    }


def _histogram(table: PartyTable, request: StatsRequest) -> dict[str, np.ndarray]:
    bins = int(request.config[CFG_BINS])
    low, width = request.arrays[REQ_LOW], request.arrays[REQ_WIDTH]
    columns = numeric_columns(table, request)
    counts = np.zeros((len(columns), bins))
    for j, values in enumerate(columns):
        finite = values[~np.isnan(values)]
        index = np.clip(np.floor((finite - low[j]) / width[j]), 0, bins - 1).astype(np.int64)
        counts[j] = np.bincount(index, minlength=bins)
    return {HIST_COUNTS: counts}


def _em(table: PartyTable, request: StatsRequest, seed: int) -> dict[str, np.ndarray]:
    """E-step on a seeded sample of ceil(sample_cap · n_party / N) rows per column, the same every round."""
    names = list(request.config[CFG_NUMERICAL])
    state = mixture.MixtureState(**{f: np.asarray(request.arrays[k], dtype=np.float64) for f, k in REQ_STATE.items()})
    loc, scale = request.arrays[REQ_LOC], request.arrays[REQ_SCALE]
    population, cap = request.arrays[REQ_POPULATION], int(request.config[CFG_SAMPLE_CAP])
    parts = []
    for j, (name, values) in enumerate(zip(names, numeric_columns(table, request))):
        finite = values[~np.isnan(values)]
        size = math.ceil(cap * len(finite) / max(population[j], 1.0))
        if size < len(finite):
            rng = numpy_rng(seed, request.config[CFG_SEED], "em-sample", table.name, name)
            finite = finite[np.sort(rng.choice(len(finite), size=size, replace=False))]
        z = (finite - loc[j]) / scale[j]
        parts.append(mixture.e_step(z, np.ones_like(z), state.take(j)))
    return {
        EM_NK: _stack([p.nk for p in parts], state.mean.shape),
        EM_S1: _stack([p.s1 for p in parts], state.mean.shape),
        EM_S2: _stack([p.s2 for p in parts], state.mean.shape),
        EM_ENTROPY: np.array([float(p.entropy) for p in parts]),
        EM_TOTAL: np.array([float(p.total) for p in parts]),
    }


def _stack(rows: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    return np.stack(rows) if rows else np.zeros(shape)

