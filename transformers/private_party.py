"""The party side of a private encoder fit: every statistic leaves through a Gaussian release.

A ``release`` is duck-typed (``fedtab.privacy.mechanisms.GaussianRelease`` in a run; importing it
here would import Opacus into the transformers). Each of its calls adds noise and charges one
Gaussian release to the party's accountant before it returns, so nothing below can leave unnoised.

Sensitivity, per column and per release: a row adds 1 to exactly one bin of each histogram
released below (one row, one bin, L2 sensitivity 1), so every call is one release at the
release's own noise multiplier. Per party and fit, the releases are (``release_count``):

- numerical/datetime column: 1 fine histogram, plus 1 histogram on the fixed bounds grid when the
  schema declares no bounds;
- categorical/boolean column with public categories (declared, or the two booleans): 1 histogram
  over [categories..., missing];
- categorical column without: 1 partition selection (labels whose noisy count passes the
  threshold, with those counts) and 1 histogram over [present, missing], from which the server
  estimates the rare bucket. The selection also spends its ``threshold_delta``;
- with a declared target whose 2-way marginals the model reads: 1 cross table per other column
  (``transformers.pairs``).

The count depends on the schema only, never on the data, so the server can plan the noise first.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np
import pandas as pd

from fedtab.errors import PrivacyBudgetError, SchemaError
from fedtab.schema import ColumnKind, PartyTable, TableSchema
from fedtab.transformers import protocol as p
from fedtab.transformers.pairs import pair_releases, pair_shape, padding_problems, party_pairs
from fedtab.transformers.plan import DISCRETE_KINDS, NUMERIC_KINDS
from fedtab.transformers.private_grid import GRID_WIDTH, grid_for
from fedtab.transformers.values import category_labels
from fedtab.transformers.vocabulary import BOOLEAN_VOCABULARY


class CategoryRelease(Protocol):
    categories: tuple[Hashable, ...]
    noisy_counts: np.ndarray


class StatisticsRelease(Protocol):
    """What a party's privatizer must offer (``GaussianRelease`` does)."""

    noise_multiplier: float

    def histogram(self, bin_index: np.ndarray, n_bins: int, *, column: str = ...) -> np.ndarray: ...

    def select_categories(self, values: Any, *, threshold_delta: float, column: str = ...) -> CategoryRelease: ...


class EncoderReleases(NamedTuple):
    """How many Gaussian releases a party makes, and how many of them are partition selections."""

    encoder_releases: int
    partition_selections: int


def release_count(schema: TableSchema, target: str | None = None) -> EncoderReleases:
    """The releases of a whole private fit of ``schema`` per party (what ``plan_noise`` needs); ``target``: the
    2-way marginals of that column are released too."""
    numeric = [c for c in schema if c.kind in NUMERIC_KINDS]
    discrete = [c for c in schema if c.kind in DISCRETE_KINDS]
    selected = sum(1 for c in discrete if public_categories(c.kind, c.categories) is None)
    bounds = sum(1 for c in numeric if c.bounds is None)
    return EncoderReleases(len(numeric) + bounds + len(discrete) + selected + pair_releases(schema, target), selected)


def request_releases(request: p.StatsRequest) -> EncoderReleases:
    """The releases answering one private request will charge (for a party to check against its plan)."""
    if request.stage == p.STAGE_PAIRS:
        return EncoderReleases(len(request.config.get(p.CFG_PAIR_COLUMNS, [])), 0)
    if request.stage == p.STAGE_HISTOGRAM:
        return EncoderReleases(len(request.config.get(p.CFG_NUMERICAL, [])), 0)
    declared = json.loads(str(request.config.get(p.CFG_DECLARED, "[]")))
    selected = sum(1 for d in declared if d is None)
    return EncoderReleases(len(request.config.get(p.CFG_NUMERICAL, [])) + len(declared) + selected, selected)


def public_categories(kind: ColumnKind, categories: Sequence[str] | None) -> tuple[str, ...] | None:
    """Categories known without looking at the data: the two booleans, or the declared ones."""
    if kind is ColumnKind.BOOLEAN:
        return BOOLEAN_VOCABULARY
    return None if categories is None else tuple(categories)


def private_statistics(
    table: PartyTable, request: p.StatsRequest, release: StatisticsRelease | None, threshold_delta: float | None
) -> dict[str, np.ndarray]:
    """Answer a private request; every array comes out of ``release`` (or is a sum of what did)."""
    if release is None:
        raise PrivacyBudgetError(
            f"Party '{table.name}' got a private '{request.stage}' request but no release to noise it with; "
            "expected a GaussianRelease charged to the party's accountant. Pass release= (the party's "
            "encoder release from fedtab.privacy.encoders) — statistics are never released unnoised."
        )
    if request.stage == p.STAGE_SUMMARY:
        return _summary(table, request, release, threshold_delta)
    if request.stage == p.STAGE_PAIRS:
        return party_pairs(table, request, release)
    return {p.HIST_COUNTS: _fine_histograms(table, request, release)}


def _summary(
    table: PartyTable, request: p.StatsRequest, release: StatisticsRelease, threshold_delta: float | None
) -> dict[str, np.ndarray]:
    declared = [None if d is None else tuple(d) for d in json.loads(str(request.config[p.CFG_DECLARED]))]
    names = list(request.config[p.CFG_DISCRETE])
    if any(d is None for d in declared) and threshold_delta is None:
        raise PrivacyBudgetError(
            f"Party '{table.name}' must select the categories of {[n for n, d in zip(names, declared) if d is None]} "
            "by partition selection but was given no threshold_delta; expected the party plan's threshold_delta. "
            "Pass threshold_delta= (PrivacyPlan.threshold_delta)."
        )
    delta = threshold_delta or 0.0  # only read for selected columns, where it was just checked
    booleans = set(request.config[p.CFG_BOOLEAN])
    coded = [category_labels(table.frame[n], column=n, party=table.name, boolean=n in booleans) for n in names]
    indices = [None if d is None else _declared_index(table.name, n, c, d) for n, c, d in zip(names, coded, declared)]
    out = {p.NUM_BOUND_COUNTS: _bound_histograms(table, request, release)}
    width = int(request.config[p.CFG_MAX_CATEGORIES])
    labels = np.full((len(names), width), "", dtype=object)
    counts = np.zeros((len(names), width))
    present, missing = np.zeros(len(names)), np.zeros(len(names))
    for j, (name, (codes, uniques), known, index) in enumerate(zip(names, coded, declared, indices)):
        if known is None:
            chosen, chosen_counts, present[j], missing[j] = _selected(release, name, codes, uniques, delta)
            order = np.lexsort((np.asarray(chosen, dtype=str), -chosen_counts))[:width]
            labels[j, : len(order)] = np.asarray(chosen, dtype=object)[order]
            counts[j, : len(order)] = chosen_counts[order]
        else:
            noisy = release.histogram(index, len(known) + 1, column=name)
            labels[j, : len(known)], counts[j, : len(known)] = known, noisy[:-1]
            present[j], missing[j] = noisy[:-1].sum(), noisy[-1]
    out |= {p.CAT_LABELS: labels.astype(str), p.CAT_COUNTS: counts, p.CAT_PRESENT: present, p.CAT_MISSING: missing}
    return out


def _declared_index(party: str, name: str, coded: tuple[np.ndarray, np.ndarray], known: tuple[str, ...]) -> np.ndarray:
    """Each row's position among the public categories; missing rows go to the last bin."""
    codes, uniques = coded
    position = _positions(known, uniques)
    unknown = position < 0
    if unknown.any():
        shown = ", ".join(repr(v) for v in uniques[unknown][:3])
        raise SchemaError(
            f"Column '{name}' of party '{party}' holds values outside its public categories ({shown}); expected "
            f"only {list(known)[:10]}. Add them to the declared categories or clean those rows."
        )
    return np.append(position, len(known))[codes]  # code −1 (missing) picks the appended last bin


def _positions(known: tuple[str, ...], uniques: np.ndarray) -> np.ndarray:
    return pd.Index(known, dtype=object).get_indexer(pd.Index(uniques.astype(str), dtype=object))


def _selected(
    release: StatisticsRelease, name: str, codes: np.ndarray, uniques: np.ndarray, threshold_delta: float
) -> tuple[list[Hashable], np.ndarray, float, float]:
    """Partition selection over the present labels, then one [present, missing] histogram."""
    chosen = release.select_categories(uniques[codes[codes >= 0]], threshold_delta=threshold_delta, column=name)
    split = release.histogram((codes < 0).astype(np.int64), 2, column=name)
    return list(chosen.categories), np.asarray(chosen.noisy_counts, dtype=float), float(split[0]), float(split[1])


def _numeric(table: PartyTable, request: p.StatsRequest) -> list[tuple[str, bool, np.ndarray]]:
    """(name, is_datetime, finite values) of every numerical column the request names."""
    kinds = list(request.config[p.CFG_NUMERICAL_KINDS])
    names = list(request.config[p.CFG_NUMERICAL])
    columns = p.numeric_columns(table, request)
    return [(n, k == p.DATETIME_KIND, v[~np.isnan(v)]) for n, k, v in zip(names, kinds, columns)]


def _bound_histograms(table: PartyTable, request: p.StatsRequest, release: StatisticsRelease) -> np.ndarray:
    columns = _numeric(table, request)
    out = np.zeros((len(columns), GRID_WIDTH))
    for j, (name, is_datetime, finite) in enumerate(columns):
        grid = grid_for(is_datetime)
        out[j, : grid.bins] = release.histogram(grid.index(finite), grid.bins, column=name)
    return out


def _fine_histograms(table: PartyTable, request: p.StatsRequest, release: StatisticsRelease) -> np.ndarray:
    """Values clipped into the global bounds' bins: the clip that bounds each row's contribution."""
    bins = int(request.config[p.CFG_BINS])
    low, width = request.arrays[p.REQ_LOW], request.arrays[p.REQ_WIDTH]
    columns = _numeric(table, request)
    out = np.zeros((len(columns), bins))
    for j, (name, _, finite) in enumerate(columns):
        index = np.clip(np.floor((finite - low[j]) / width[j]), 0, bins - 1).astype(np.int64)
        out[j] = release.histogram(index, bins, column=name)
    return out


def private_reply_problems(request: p.StatsRequest, reply: dict[str, np.ndarray]) -> list[str]:
    """What in a reply to a private request could not have come out of a release (empty: nothing).

    Checks the keys (no row count, min, max, moments, off-grid counts, rest counts), the shapes
    (fixed by the request, never by the rows) and the padding (label '' with count exactly 0).
    """
    expected = private_shapes(request)
    extra = sorted(set(reply) - set(expected))
    problems = [f"key '{k}' is not a private statistic of the '{request.stage}' stage" for k in extra]
    problems += [f"key '{k}' is missing" for k in sorted(set(expected) - set(reply))]
    problems += [
        f"'{k}' has shape {np.shape(reply[k])}, expected {shape}"
        for k, shape in expected.items() if k in reply and np.shape(reply[k]) != shape
    ]
    if not problems and request.stage == p.STAGE_SUMMARY:
        labels, counts = np.asarray(reply[p.CAT_LABELS]).astype(str), np.asarray(reply[p.CAT_COUNTS])
        padded = (labels == "") & (counts != 0)
        if padded.any():
            problems.append(f"{int(padded.sum())} padding entries (label '') carry a non-zero count")
    if not problems and request.stage == p.STAGE_PAIRS:
        problems += padding_problems(request, np.asarray(reply[p.PAIR_COUNTS]))
    return problems


def private_shapes(request: p.StatsRequest) -> dict[str, tuple[int, ...]]:
    n_num = len(request.config.get(p.CFG_NUMERICAL, []))
    if request.stage == p.STAGE_PAIRS:
        return pair_shape(request)
    if request.stage == p.STAGE_HISTOGRAM:
        return {p.HIST_COUNTS: (n_num, int(request.config[p.CFG_BINS]))}
    n_cat, width = len(request.config.get(p.CFG_DISCRETE, [])), int(request.config.get(p.CFG_MAX_CATEGORIES, 0))
    return {
        p.NUM_BOUND_COUNTS: (n_num, GRID_WIDTH),
        p.CAT_LABELS: (n_cat, width),
        p.CAT_COUNTS: (n_cat, width),
        p.CAT_PRESENT: (n_cat,),
        p.CAT_MISSING: (n_cat,),
    }
