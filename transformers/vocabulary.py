"""Category vocabularies: bounded top-k counts on each party, merged into one vocabulary on the server.

A party sends its ``max_categories`` most frequent labels (padded to exactly that many, so the
payload says nothing about how many distinct values it holds) and the count of everything else.
The server keeps labels whose summed count reaches ``min_category_count``, at most
``max_categories`` of them, and folds the rest into one rare bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedtab.errors import SchemaError
from fedtab.schema import ColumnKind, ColumnSchema
from fedtab.transformers.values import MISSING_TOKEN, RARE_TOKEN, RESERVED_TOKENS

BOOLEAN_VOCABULARY = ("False", "True")


@dataclass(frozen=True)
class PartyTopValues:
    """One party's bounded report on one column; arrays have exactly ``max_categories`` entries."""

    labels: np.ndarray
    counts: np.ndarray
    rest: float
    rest_distinct: float


def party_top_values(codes: np.ndarray, labels: np.ndarray, max_categories: int) -> PartyTopValues:
    """The most frequent labels (ties by label) and the size of what is left out."""
    counts = np.bincount(codes[codes >= 0], minlength=len(labels)).astype(np.float64)
    order = np.lexsort((labels.astype(str), -counts))[:max_categories]
    top_labels = np.full(max_categories, "", dtype=object)
    top_counts = np.zeros(max_categories)
    top_labels[: len(order)] = labels[order]
    top_counts[: len(order)] = counts[order]
    return PartyTopValues(
        labels=top_labels,
        counts=top_counts,
        rest=float(counts.sum() - top_counts.sum()),
        rest_distinct=float(len(labels) - len(order)),
    )


@dataclass(frozen=True)
class Vocabulary:
    """A column's merged vocabulary (tokens included) with summed counts, and what to tell the user."""

    labels: tuple[str, ...]
    counts: tuple[float, ...]
    note: str | None


def merge_vocabulary(
    column: ColumnSchema,
    labels: np.ndarray,
    counts: np.ndarray,
    *,
    missing: float,
    rest: float,
    rest_distinct: float,
    max_categories: int,
    min_category_count: int,
    textual: bool,
) -> Vocabulary:
    """Merge every party's (labels, counts) rows for one column; noisy negative counts clip at 0."""
    present = counts > 0
    unique, inverse = np.unique(labels[present].astype(str), return_inverse=True)
    summed = np.bincount(inverse, weights=counts[present], minlength=len(unique))
    reject_reserved(column.name, unique)
    kept, kept_counts, dropped = _choose(column, unique, summed, max_categories, min_category_count)
    rare_count = float(summed[dropped].sum()) + max(rest, 0.0)
    rare_distinct = int(dropped.sum()) + int(max(rest_distinct, 0.0))
    vocab, vocab_counts = list(kept), list(kept_counts)
    note = None
    if rare_distinct > 0 or rare_count > 0:
        vocab.append(RARE_TOKEN)
        vocab_counts.append(rare_count)
        exact = rest_distinct <= 0
        note = _rare_note(column.name, rare_distinct, exact, rare_count, max_categories, min_category_count, textual)
    if column.has_missing or missing > 0:
        vocab.append(MISSING_TOKEN)
        vocab_counts.append(max(missing, 0.0))
    return Vocabulary(tuple(vocab), tuple(float(c) for c in vocab_counts), note)


def _choose(
    column: ColumnSchema, unique: np.ndarray, summed: np.ndarray, max_categories: int, min_category_count: int
) -> tuple[list[str], list[float], np.ndarray]:
    """Kept labels in vocabulary order, their counts, and a mask of the labels sent to the rare bucket."""
    declared = BOOLEAN_VOCABULARY if column.kind is ColumnKind.BOOLEAN else column.categories
    if declared is not None:
        lookup = dict(zip(unique.tolist(), summed.tolist()))
        return list(declared), [lookup.get(label, 0.0) for label in declared], ~np.isin(unique, declared)
    order = np.lexsort((unique, -summed))
    order = order[summed[order] >= min_category_count][:max_categories]
    dropped = np.ones(len(unique), dtype=bool)
    dropped[order] = False
    return unique[order].tolist(), summed[order].tolist(), dropped


def reject_reserved(name: str, unique: np.ndarray) -> None:
    clash = [t for t in RESERVED_TOKENS if t in set(unique.tolist())]
    if clash:
        raise SchemaError(
            f"Column '{name}' holds the value(s) {clash}, which fedtab reserves for its rare and missing "
            "buckets. Rename those values before fitting."
        )


def _rare_note(
    name: str, distinct: int, exact: bool, rows: float, max_categories: int, min_count: int, textual: bool
) -> str:
    shown = f"'{RARE_TOKEN}'" if textual else "missing values"
    how_many = f"{distinct}" if exact else f"up to {distinct}"
    return (
        f"Column '{name}': {how_many} distinct values ({rows:.0f} rows) are not in the vocabulary "
        f"(seen fewer than {min_count} times, beyond the {max_categories} most frequent, or not declared) "
        f"and share one rare bucket; synthetic rows show them as {shown}."
    )
