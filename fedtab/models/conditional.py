"""Conditional vectors and training-by-sampling over the *global* vocabulary.

Every party uses the same condition layout (from the plan), so the generator and discriminator
inputs agree across parties even when a party lacks some categories. Central CTGAN draws a
category by the log-frequency of its count, then one of its rows: each row of category c is drawn
at the rate log(1 + N_c) / N_c. A party draws its own rows at that same global rate (its share of
c's rows scales c's log-frequency), so the parties' row-weighted average trains as the central fit
would; a party holding 5 of 5,000 defaulters no longer shows those 5 rows in half its batches
(credit, Dirichlet split: the averaged model wrote ``default`` on those rows' kind). Generation
conditions follow the global frequencies.

With a declared target, training conditions on the target column in ``target_share`` of the rows
(the others on the remaining columns uniformly; CTGAN's option, 1.0 by default, ``TARGET_SHARE`` here), and generation always conditions on the target
drawn by its global frequencies: the synthetic table is then P(target) · G(features | target), so
the feature–target relation is what the generator learnt under that condition.
"""

from __future__ import annotations

import numpy as np

from fedtab.errors import ConfigError
from fedtab.schema import ColumnKind, TableSchema
from fedtab.transformers import TransformPlan

TARGET_SHARE = 0.5


class ConditionalSampler:
    """Draws condition vectors and the real rows that match them, vectorised over a batch."""

    def __init__(self, plan: TransformPlan, data: np.ndarray | None = None, *, target: str | None = None,
                 target_share: float = TARGET_SHARE) -> None:
        spans = list(plan.discrete_spans)
        self.target_index = target_span_index(plan, target)
        if not 0 <= target_share <= 1:
            raise ConfigError(f"Model 'ctgan' option 'target_share' must be a share in [0, 1]; got {target_share!r}. "
                              "Fix [model.options] in the config.")
        self.target_share = float(target_share)
        self.data_starts = np.array([s.start for s in spans], dtype=np.int64)
        self.dims = np.array([s.dim for s in spans], dtype=np.int64)
        self.cond_offsets = np.concatenate([[0], np.cumsum(self.dims)[:-1]]).astype(np.int64) if spans else np.zeros(0, np.int64)
        self.cond_dim = int(self.dims.sum())
        self.global_probs = [normalise(np.asarray(s.counts, dtype=np.float64)) for s in spans]
        self._log_counts = [np.log1p(np.clip(np.asarray(s.counts, dtype=np.float64), 0, None)) for s in spans]
        self._orders: list[np.ndarray] = []
        self._starts: list[np.ndarray] = []
        self._local_counts: list[np.ndarray] = []
        self.train_probs: list[np.ndarray] = []
        if data is not None:
            self._index_rows(data)

    @property
    def num_columns(self) -> int:
        return len(self.dims)

    def _columns(self, batch: int, rng: np.random.Generator) -> np.ndarray:
        """The condition column of each row: uniform, or the target in ``target_share`` of rows."""
        if self.target_index is None or self.num_columns == 1:
            return rng.integers(self.num_columns, size=batch) if self.target_index is None else np.zeros(batch, np.int64)
        others = np.delete(np.arange(self.num_columns), self.target_index)
        columns = others[rng.integers(others.size, size=batch)]
        columns[rng.random(batch) < self.target_share] = self.target_index
        return columns

    def _index_rows(self, data: np.ndarray) -> None:
        for j in range(self.num_columns):
            start, dim = self.data_starts[j], self.dims[j]
            categories = data[:, start : start + dim].argmax(axis=1)
            counts = np.bincount(categories, minlength=dim)
            self._orders.append(np.argsort(categories, kind="stable"))
            self._starts.append(np.concatenate([[0], np.cumsum(counts)[:-1]]))
            self._local_counts.append(counts)
            self.train_probs.append(normalise(self._row_rate_weights(j, counts)))

    def _row_rate_weights(self, j: int, counts: np.ndarray) -> np.ndarray:
        """Each held category's log-frequency times this party's share of its global rows (at most 1)."""
        log_counts = np.maximum(self._log_counts[j], 1e-3)
        global_counts = np.maximum(np.expm1(self._log_counts[j]), counts)
        return np.where(counts > 0, log_counts * counts / np.maximum(global_counts, 1.0), 0.0)

    def sample_train(self, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Condition vectors, their column masks, and indices of real rows that satisfy them."""
        columns = self._columns(batch, rng)
        categories = np.zeros(batch, dtype=np.int64)
        rows = np.zeros(batch, dtype=np.int64)
        for j in np.unique(columns):
            where = np.flatnonzero(columns == j)
            cats = rng.choice(self.dims[j], size=where.size, p=self.train_probs[j])
            offsets = np.floor(rng.random(where.size) * self._local_counts[j][cats]).astype(np.int64)
            categories[where] = cats
            rows[where] = self._orders[j][self._starts[j][cats] + offsets]
        return self._one_hot(columns, categories), self._mask(columns), rows

    def sample_generation(self, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Conditions for generation: a column uniformly (the target, if declared), then a category by its global frequency."""
        if self.target_index is None:
            columns = rng.integers(self.num_columns, size=batch)
        else:
            columns = np.full(batch, self.target_index, dtype=np.int64)
        categories = np.zeros(batch, dtype=np.int64)
        for j in np.unique(columns):
            where = np.flatnonzero(columns == j)
            categories[where] = rng.choice(self.dims[j], size=where.size, p=self.global_probs[j])
        return self._one_hot(columns, categories), self._mask(columns)

    def sample_fake(self, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Conditions for fakes under DP: columns as training picks them, categories by their global frequencies."""
        columns = self._columns(batch, rng)
        categories = np.zeros(batch, dtype=np.int64)
        for j in np.unique(columns):
            where = np.flatnonzero(columns == j)
            categories[where] = rng.choice(self.dims[j], size=where.size, p=self.global_probs[j])
        return self._one_hot(columns, categories), self._mask(columns)

    def write_target(self, rows: np.ndarray, cond: np.ndarray) -> None:
        """Generated rows take their condition's target category, so the table is P(target) · G(features | target).

        The generator's own target output follows the condition only as far as training taught it
        to; the written label must be the one the features were generated for.
        """
        if self.target_index is None:
            return
        j = self.target_index
        start, dim, offset = self.data_starts[j], self.dims[j], self.cond_offsets[j]
        rows[:, start : start + dim] = cond[:, offset : offset + dim]

    def conditions_of(self, rows: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Each encoded row's own condition: a column as training picks it, its category from the row.

        Under DP the real rows are Poisson-sampled, not drawn by category, so the condition must
        follow the row (training-by-sampling would break the accountant's uniform sampling); the
        column choice never looks at the row.
        """
        columns = self._columns(len(rows), rng)
        categories = np.zeros(len(rows), dtype=np.int64)
        for j in np.unique(columns):
            where = np.flatnonzero(columns == j)
            start = self.data_starts[j]
            categories[where] = rows[where, start : start + self.dims[j]].argmax(axis=1)
        return self._one_hot(columns, categories), self._mask(columns)

    def _one_hot(self, columns: np.ndarray, categories: np.ndarray) -> np.ndarray:
        cond = np.zeros((columns.size, self.cond_dim), dtype=np.float32)
        cond[np.arange(columns.size), self.cond_offsets[columns] + categories] = 1.0
        return cond

    def _mask(self, columns: np.ndarray) -> np.ndarray:
        mask = np.zeros((columns.size, self.num_columns), dtype=np.float32)
        mask[np.arange(columns.size), columns] = 1.0
        return mask


def normalise(weights: np.ndarray) -> np.ndarray:
    """Non-negative weights as frequencies; uniform when nothing is left."""
    weights = np.clip(weights, 0, None)
    total = weights.sum()
    if total <= 0:
        return np.full(weights.size, 1.0 / max(weights.size, 1))
    return weights / total


def target_span_index(plan: TransformPlan, target: str | None) -> int | None:
    """Which condition column is the declared target (checked against the plan's schema first)."""
    if target is None:
        return None
    check_target(plan.schema, target)
    return [span.column for span in plan.discrete_spans].index(target)


def check_target(schema: TableSchema, target: str | None) -> None:
    """A declared target must be a categorical or boolean column; checked before any statistic leaves."""
    if target is None:
        return
    if target not in schema.names:
        raise ConfigError(f"The target {target!r} is not a column of the table; its columns are {schema.names}. "
                          "Pass one of them as --target (or FedtabConfig(target=...)), or drop it.")
    kind = schema[target].kind
    if kind not in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN):
        raise ConfigError(f"The target {target!r} is a {kind.value} column; a declared target must be categorical "
                          "or boolean (the model conditions on its categories). Declare it categorical with an "
                          f"override ({target}=categorical) if its values are codes, or drop the target.")
