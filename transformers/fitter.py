"""The server side of the federated encoder fit: a small, transport-agnostic request/merge protocol.

Stages, one message round each across all parties:

1. ``summary`` — row and missing counts, numerical bounds (and moments in exact mode), bounded
   top-k category counts. The server fixes bounds and vocabularies.
2. ``histogram`` — a fine histogram per numerical column over the global bounds. The server fits
   every mixture on the summed histograms; in ``histogram`` mode that is the final fit (the path
   differential privacy takes: noised histograms, then post-processing only). The plan keeps the
   summed histograms (under DP the post-processed ones) for the quantile maps models may read
   (``transformers.quantile``): in every mode a statistic already computed, so nothing new is sent
   or charged.
3. ``em`` (exact mode) — federated variational-Bayes EM: parties return per-component sufficient
   statistics, the server runs the M-step. One round per iteration for all columns at once, until
   every column's lower bound per row moves less than 1e-3 or ``max_em_rounds`` is reached.

``private`` mode (differential privacy) runs the first two stages with requests marked private:
parties answer through their Gaussian release only (``private_party``) — noisy histograms on a
fixed grid instead of min/max, partition-selected labels with noisy counts, noisy missing counts,
no row count, no moments — and the server only post-processes (``private_server``) with the
parties' encoder noise multiplier. Bounds and categories the schema declares are public and free.
No EM rounds: each would be another release. ``release_plan(schema)`` says what a party will
charge, before any round, so the noise can be planned.

With a ``target`` a last stage, ``pairs``, asks every party for the target's cross table with every
other column over the plan fitted so far (``transformers.pairs``); the plan keeps them, summed (and,
under DP, made non-negative and raked to the released 1-way counts).

A transport calls ``next_request`` / ``local_statistics`` on each party / ``merge`` until
``next_request`` returns None, then ``finalize``. ``fit_plan`` does that in one process.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

import numpy as np

from fedtab.errors import ConfigError, FederationError, NotFittedError, PartyError, SchemaError
from fedtab.schema import ColumnKind, PartyTable, TableSchema
from fedtab.transformers import mixture
from fedtab.transformers import protocol as p
from fedtab.transformers.assemble import PlanInputs, build_plan
from fedtab.transformers.dtypes import dtype_problems, is_textual
from fedtab.transformers.numeric_server import (
    HistogramLayout,
    Standardisation,
    fit_histograms,
    histogram_layout,
    pin_edge_spikes,
    histogram_moments,
    merge_moments,
    observed_steps,
    standardise,
)
from fedtab.transformers.pairs import consistent_table, pair_request, pair_shape, pair_width
from fedtab.transformers.plan import DISCRETE_KINDS, NUMERIC_KINDS, TransformPlan
from fedtab.transformers.private_party import (
    EncoderReleases,
    StatisticsRelease,
    private_shapes,
    public_categories,
    release_count,
)
from fedtab.transformers.private_server import (
    bounds_from_grid,
    denoise_histograms,
    private_vocabulary,
    schema_steps,
    snap_outward,
)
from fedtab.transformers.vocabulary import Vocabulary, merge_vocabulary

Mode = Literal["exact", "histogram", "private"]
MODES = ("exact", "histogram", "private")
EM_TOLERANCE = 1e-3
_STAGE_DONE = "done"


class PlanFitter:
    """Builds a TransformPlan from statistics that parties compute on their own rows.

    ``noise_multiplier`` (private mode only, required there) is the σ of the parties' encoder
    releases (``PrivacyPlan.encoder_noise_multiplier``); the server uses it to tell signal from
    noise when it picks bounds. If parties' σ differ, pass their root mean square. ``target`` (a categorical
    column) adds the last stage, ``pairs``: its cross table with every other column.
    """

    def __init__(
        self,
        schema: TableSchema,
        *,
        num_components: int = 10,
        sample_cap: int = 20_000,
        max_em_rounds: int = 20,
        max_categories: int = 1000,
        min_category_count: int = 1,
        mode: Mode = "exact",
        seed: int = 0,
        histogram_bins: int = 256,
        noise_multiplier: float | None = None,
        target: str | None = None,
    ) -> None:
        _check_int("num_components", num_components, 1, 50)
        _check_int("sample_cap", sample_cap, 1)
        _check_int("max_em_rounds", max_em_rounds, 1)
        _check_int("max_categories", max_categories, 2)
        _check_int("min_category_count", min_category_count, 1)
        _check_int("seed", seed, 0)
        _check_int("histogram_bins", histogram_bins, 2)
        if mode not in MODES:
            raise ConfigError(f"The 'mode' parameter of PlanFitter must be one of {MODES}. Got {mode!r} instead.")
        _check_noise(mode, noise_multiplier)
        problems = dtype_problems(schema)
        if problems:
            raise SchemaError("The schema handed to PlanFitter has columns it cannot decode into:", problems)
        _check_target(schema, target)
        self.schema, self.target = schema, target
        self.num_components, self.sample_cap, self.max_em_rounds = num_components, sample_cap, max_em_rounds
        self.max_categories, self.min_category_count = max_categories, min_category_count
        self.mode, self.seed, self.histogram_bins = mode, seed, histogram_bins
        self.noise_multiplier = noise_multiplier
        self.rounds_used = 0
        self.em_rounds = 0
        self._stage = p.STAGE_SUMMARY
        self._numeric = [c for c in schema if c.kind in NUMERIC_KINDS]
        self._discrete = [c for c in schema if c.kind in DISCRETE_KINDS]
        self._summary: dict[str, np.ndarray] = {}
        self._vocabularies: dict[str, Vocabulary] = {}
        self._fitted = np.zeros(0, dtype=np.int64)
        self._steps = np.zeros(len(self._numeric))
        self._layout: HistogramLayout | None = None
        self._space: Standardisation | None = None
        self._state: mixture.MixtureState | None = None
        self._active = np.zeros(0, dtype=bool)
        self._bound = np.zeros(0)
        self._private_bounds: tuple[np.ndarray, np.ndarray] | None = None
        self._histograms: np.ndarray | None = None
        self._fitted_plan: TransformPlan | None = None
        self._pair_request: p.StatsRequest | None = None
        self._pairs: dict[str, np.ndarray] = {}
        self._pair_noise = 0.0

    @staticmethod
    def release_plan(schema: TableSchema, target: str | None = None) -> EncoderReleases:
        """(encoder_releases, partition_selections) each party charges in a private fit of ``schema`` (with the
        2-way marginals of ``target`` when given).

        Fixed by the schema alone (kinds, declared bounds and categories), so ``plan_noise`` can take
        it before any round; the party's accountant records exactly this many after the fit.
        """
        return release_count(schema, target)

    # -- requests -------------------------------------------------------------------------------

    def next_request(self) -> p.StatsRequest | None:
        """The request every party must answer next; None once the plan is ready."""
        if self._stage == p.STAGE_SUMMARY:
            if self.mode == "private":
                return p.StatsRequest(p.STAGE_SUMMARY, {}, self._private_summary_config())
            return p.StatsRequest(p.STAGE_SUMMARY, {}, self._summary_config())
        if self._stage == p.STAGE_HISTOGRAM:
            assert self._layout is not None
            arrays = {p.REQ_LOW: self._layout.low.copy(), p.REQ_WIDTH: self._layout.width.copy()}
            config = self._numeric_config(self._fitted) | {p.CFG_BINS: self.histogram_bins}
            if self.mode == "private":
                config[p.CFG_PRIVATE] = True
            return p.StatsRequest(p.STAGE_HISTOGRAM, arrays, config)
        if self._stage == p.STAGE_EM:
            return self._em_request()
        if self._stage == p.STAGE_PAIRS:
            return self._pair_request
        return None

    def _summary_config(self) -> dict[str, p.ConfigValue]:
        return self._numeric_config(np.arange(len(self._numeric))) | {
            p.CFG_DISCRETE: [c.name for c in self._discrete],
            p.CFG_BOOLEAN: [c.name for c in self._discrete if c.kind is ColumnKind.BOOLEAN],
            p.CFG_MAX_CATEGORIES: self.max_categories,
            p.CFG_MOMENTS: self.mode == "exact",
        }

    def _private_summary_config(self) -> dict[str, p.ConfigValue]:
        """Bounds-grid histograms for columns without declared bounds; every discrete column's labels."""
        public = [public_categories(c.kind, c.categories) for c in self._discrete]
        width = max([self.max_categories, *(len(c) for c in public if c is not None)])
        return self._numeric_config(self._undeclared_bounds()) | {
            p.CFG_PRIVATE: True,
            p.CFG_DISCRETE: [c.name for c in self._discrete],
            p.CFG_BOOLEAN: [c.name for c in self._discrete if c.kind is ColumnKind.BOOLEAN],
            p.CFG_DECLARED: json.dumps([None if c is None else list(c) for c in public]),
            p.CFG_MAX_CATEGORIES: width,
        }

    def _undeclared_bounds(self) -> np.ndarray:
        """Numerical columns whose bounds parties must estimate (the schema declares none)."""
        return np.array([j for j, c in enumerate(self._numeric) if c.bounds is None], dtype=np.int64)

    def _numeric_config(self, index: np.ndarray) -> dict[str, p.ConfigValue]:
        columns = [self._numeric[i] for i in index]
        return {
            p.CFG_NUMERICAL: [c.name for c in columns],
            p.CFG_NUMERICAL_KINDS: [c.kind.value for c in columns],
            p.CFG_DATETIME_FORMATS: [c.datetime_format or "" for c in columns],
            p.CFG_DISCRETE: [],
            p.CFG_BOOLEAN: [],
        }

    def _em_request(self) -> p.StatsRequest:
        assert self._state is not None and self._space is not None
        active = np.flatnonzero(self._active)
        state, space = self._state.take(active), self._space.take(active)
        arrays = {key: getattr(state, name) for name, key in p.REQ_STATE.items()}
        arrays |= {p.REQ_LOC: space.loc, p.REQ_SCALE: space.scale, p.REQ_POPULATION: self._population()[active]}
        config = self._numeric_config(self._fitted[active]) | {p.CFG_SAMPLE_CAP: self.sample_cap, p.CFG_SEED: self.seed}
        return p.StatsRequest(p.STAGE_EM, arrays, config)

    def _population(self) -> np.ndarray:
        return self._summary[p.NUM_COUNT][self._fitted]

    # -- merging --------------------------------------------------------------------------------

    def merge(self, party_stats: Sequence[dict[str, np.ndarray]]) -> None:
        """Sum every party's reply to the current request and move to the next stage."""
        request = self.next_request()
        if request is None:
            raise FederationError("merge() was called after the plan was ready; call finalize() instead.")
        if not party_stats:
            raise FederationError(
                f"No party replied to the '{request.stage}' request (round {self.rounds_used + 1}); "
                "expected one reply per party. Check that the parties are connected."
            )
        if self.mode == "private":
            _refuse_extra_keys(party_stats, request, self._expected_shapes(request))
        replies = [_checked(reply, i, request, self._expected_shapes(request)) for i, reply in enumerate(party_stats)]
        if self.mode == "private":
            merge = {p.STAGE_SUMMARY: self._merge_private_summary, p.STAGE_HISTOGRAM: self._merge_private_histogram,
                     p.STAGE_PAIRS: self._merge_pairs}
        else:
            merge = {p.STAGE_SUMMARY: self._merge_summary, p.STAGE_HISTOGRAM: self._merge_histogram,
                     p.STAGE_EM: self._merge_em, p.STAGE_PAIRS: self._merge_pairs}
        merge[request.stage](replies)
        self.rounds_used += 1

    def _expected_shapes(self, request: p.StatsRequest) -> dict[str, tuple[int, ...]]:
        if self.mode == "private":
            return private_shapes(request)
        if request.stage == p.STAGE_PAIRS:
            return pair_shape(request)
        if request.stage == p.STAGE_SUMMARY:
            n_num, n_cat, width = len(self._numeric), len(self._discrete), self.max_categories
            shapes = {p.ROWS: (1,), p.CAT_LABELS: (n_cat, width), p.CAT_COUNTS: (n_cat, width)}
            shapes |= {k: (n_num,) for k in (p.NUM_COUNT, p.NUM_MISSING, p.NUM_MIN, p.NUM_MAX)}
            shapes[p.NUM_OFF_GRID] = (n_num, len(p.GRID_STEPS))
            shapes |= {k: (n_cat,) for k in (p.CAT_MISSING, p.CAT_REST, p.CAT_REST_DISTINCT)}
            if request.config[p.CFG_MOMENTS]:
                shapes |= {p.NUM_SUM: (n_num,), p.NUM_M2: (n_num,)}
            return shapes
        if request.stage == p.STAGE_HISTOGRAM:
            return {p.HIST_COUNTS: (len(self._fitted), self.histogram_bins)}
        n_active = int(self._active.sum())
        shapes = {k: (n_active, self.num_components) for k in (p.EM_NK, p.EM_S1, p.EM_S2)}
        return shapes | {p.EM_ENTROPY: (n_active,), p.EM_TOTAL: (n_active,)}

    def _merge_summary(self, replies: list[dict[str, np.ndarray]]) -> None:
        summed = {k: sum(r[k] for r in replies) for k in (p.ROWS, p.NUM_COUNT, p.NUM_MISSING, p.NUM_OFF_GRID)}
        if summed[p.ROWS][0] <= 0:
            raise PartyError("The parties hold no rows at all; expected at least one row. Check the parties' tables.")
        summed[p.NUM_MIN] = np.min([r[p.NUM_MIN] for r in replies], axis=0, initial=np.inf)
        summed[p.NUM_MAX] = np.max([r[p.NUM_MAX] for r in replies], axis=0, initial=-np.inf)
        self._summary = summed
        self._vocabularies = self._merge_vocabularies(replies)
        self._fitted = np.flatnonzero(summed[p.NUM_COUNT] > 0)
        if self.mode == "exact":
            moments = merge_moments([r[p.NUM_COUNT] for r in replies], [r[p.NUM_SUM] for r in replies],
                                    [r[p.NUM_M2] for r in replies])
            self._space = standardise(moments).take(self._fitted)
        low, high = self._bounds()
        is_datetime = np.array([c.kind is ColumnKind.DATETIME for c in self._numeric], dtype=bool)
        self._steps = observed_steps(summed[p.NUM_OFF_GRID], summed[p.NUM_COUNT], is_datetime)
        f = self._fitted
        self._layout = histogram_layout(low[f], high[f], self._steps[f], self.histogram_bins)
        self._stage = p.STAGE_HISTOGRAM if len(self._fitted) else self._last_stage()

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Declared (public) bounds where the schema has them, else the observed (or DP-estimated) range."""
        if self._private_bounds is not None:
            low, high = (b.copy() for b in self._private_bounds)
        else:
            low, high = self._summary[p.NUM_MIN].copy(), self._summary[p.NUM_MAX].copy()
        for j, column in enumerate(self._numeric):
            if column.bounds is not None:
                low[j], high[j] = column.bounds
        return low, high

    def _merge_vocabularies(self, replies: list[dict[str, np.ndarray]]) -> dict[str, Vocabulary]:
        out = {}
        for j, column in enumerate(self._discrete):
            out[column.name] = merge_vocabulary(
                column,
                np.concatenate([r[p.CAT_LABELS][j] for r in replies]),
                np.concatenate([r[p.CAT_COUNTS][j] for r in replies]),
                missing=float(sum(r[p.CAT_MISSING][j] for r in replies)),
                rest=float(sum(r[p.CAT_REST][j] for r in replies)),
                rest_distinct=float(sum(r[p.CAT_REST_DISTINCT][j] for r in replies)),
                max_categories=self.max_categories,
                min_category_count=self.min_category_count,
                textual=is_textual(column.dtype),
            )
        return out

    def _merge_histogram(self, replies: list[dict[str, np.ndarray]]) -> None:
        assert self._layout is not None
        counts = np.clip(sum(r[p.HIST_COUNTS] for r in replies), 0.0, None)
        self._histograms = counts
        if self.mode == "histogram":
            self._space = standardise(histogram_moments(self._layout, counts))
        assert self._space is not None
        self._state = fit_histograms(self._layout, counts, self._space, self.num_components)
        self._active = ~self._lossless_histograms()
        self._bound = np.full(len(self._fitted), -np.inf)
        self._stage = p.STAGE_EM if self.mode == "exact" and self._active.any() else self._last_stage()

    def _lossless_histograms(self) -> np.ndarray:
        """Columns whose unit-bin histogram holds every value exactly: EM on rows would add nothing."""
        assert self._layout is not None
        low, high = self._bounds()
        f = self._fitted
        inside = (self._summary[p.NUM_MIN][f] >= low[f]) & (self._summary[p.NUM_MAX][f] <= high[f])
        return self._layout.unit & inside

    # -- private merging (post-processing of noisy sums only) -----------------------------------

    def _noise_std(self, parties: int) -> float:
        """Standard deviation of the noise on a count summed over ``parties`` replies."""
        return float(self.noise_multiplier or 0.0) * float(np.sqrt(parties))

    def _merge_private_summary(self, replies: list[dict[str, np.ndarray]]) -> None:
        n_num = len(self._numeric)
        self._summary = {p.NUM_COUNT: np.ones(n_num), p.NUM_MISSING: np.zeros(n_num)}
        self._vocabularies = self._private_vocabularies(replies)
        self._fitted = np.arange(n_num)
        self._steps = schema_steps(self._numeric)
        undeclared = self._undeclared_bounds()
        is_datetime = np.array([self._numeric[j].kind is ColumnKind.DATETIME for j in undeclared], dtype=bool)
        estimated = bounds_from_grid(sum(r[p.NUM_BOUND_COUNTS] for r in replies), is_datetime,
                                     self._noise_std(len(replies)))
        low, high = np.zeros(n_num), np.zeros(n_num)
        low[undeclared], high[undeclared] = snap_outward(*estimated, self._steps[undeclared])
        self._private_bounds = (low, high)
        low, high = self._bounds()
        self._layout = histogram_layout(low, high, self._steps, self.histogram_bins)
        self._stage = p.STAGE_HISTOGRAM if n_num else self._last_stage()

    def _private_vocabularies(self, replies: list[dict[str, np.ndarray]]) -> dict[str, Vocabulary]:
        out = {}
        for j, column in enumerate(self._discrete):
            out[column.name] = private_vocabulary(
                column,
                np.concatenate([r[p.CAT_LABELS][j] for r in replies]),
                np.concatenate([r[p.CAT_COUNTS][j] for r in replies]),
                public=public_categories(column.kind, column.categories),
                present=float(sum(r[p.CAT_PRESENT][j] for r in replies)),
                missing=float(sum(r[p.CAT_MISSING][j] for r in replies)),
                noise_std=self._noise_std(len(replies)),
                max_categories=self.max_categories,
                min_category_count=self.min_category_count,
                textual=is_textual(column.dtype),
            )
        return out

    def _merge_private_histogram(self, replies: list[dict[str, np.ndarray]]) -> None:
        assert self._layout is not None
        counts = denoise_histograms(sum(r[p.HIST_COUNTS] for r in replies), self._layout, *self._bounds(),
                                    noise_std=self._noise_std(len(replies)))
        self._histograms = counts
        self._space = standardise(histogram_moments(self._layout, counts))
        fitted = fit_histograms(self._layout, counts, self._space, self.num_components)
        low, high = self._bounds()
        self._state = pin_edge_spikes(fitted, self._layout, self._space, low[self._fitted], high[self._fitted])
        self._stage = self._last_stage()

    def _merge_em(self, replies: list[dict[str, np.ndarray]]) -> None:
        assert self._state is not None and self._space is not None
        active = np.flatnonzero(self._active)
        state = self._state.take(active)
        stats = mixture.SufficientStats(
            nk=sum(r[p.EM_NK] for r in replies), s1=sum(r[p.EM_S1] for r in replies),
            s2=sum(r[p.EM_S2] for r in replies), entropy=sum(r[p.EM_ENTROPY] for r in replies),
            total=sum(r[p.EM_TOTAL] for r in replies), centre=state.mean,
        )
        updated = mixture.m_step(stats, self._space.take(active).prior, point_masses=True)
        bound = mixture.lower_bound(updated, stats)
        self._state = self._state.put(active, updated)
        converged = np.abs(bound - self._bound[active]) < EM_TOLERANCE
        self._bound[active] = bound
        self._active[active[converged]] = False
        self.em_rounds += 1
        if not self._active.any() or self.em_rounds >= self.max_em_rounds:
            self._stage = self._last_stage()

    def _last_stage(self) -> str:
        """After the encoders: the 2-way marginals when a target is declared, over the plan fitted so far."""
        if self.target is None:
            return _STAGE_DONE
        self._fitted_plan = self._plan()
        self._pair_request = pair_request(self._fitted_plan, self.target, private=self.mode == "private")
        return p.STAGE_PAIRS

    def _merge_pairs(self, replies: list[dict[str, np.ndarray]]) -> None:
        """Sum the cross tables; under DP make each one non-negative and consistent with the released 1-way counts."""
        assert self._fitted_plan is not None and self._pair_request is not None and self.target is not None
        request = self._pair_request
        summed = sum(r[p.PAIR_COUNTS] for r in replies)
        target = self._fitted_plan.column(self.target)
        for j, name in enumerate(request.config[p.CFG_PAIR_COLUMNS]):
            column = self._fitted_plan.column(name)
            table = summed[j, :, :pair_width(column)]
            if self.mode == "private":
                margin = column.counts if column.vocabulary else None
                table = consistent_table(table, target.counts, margin)
            self._pairs[str(name)] = table
        self._pair_noise = self._noise_std(len(replies)) if self.mode == "private" else 0.0
        self._stage = _STAGE_DONE

    # -- the plan -------------------------------------------------------------------------------

    def finalize(self) -> TransformPlan:
        """The fitted plan; every request must have been answered and merged first."""
        if self._stage != _STAGE_DONE:
            raise NotFittedError(
                f"The plan is not ready: the '{self._stage}' request has not been merged yet "
                f"(after {self.rounds_used} rounds). Keep calling next_request()/merge() until next_request() "
                "returns None, then call finalize()."
            )
        plan = self._fitted_plan or self._plan()
        if self.target is None:
            return plan
        columns = tuple(replace(c, pair_counts=tuple(map(tuple, self._pairs[c.name].tolist()))) if c.name in self._pairs
                        else c for c in plan.columns)
        return replace(plan, columns=columns, target=self.target, pair_noise=self._pair_noise)

    def _plan(self) -> TransformPlan:
        low, high = self._bounds()
        return build_plan(
            PlanInputs(
                schema=self.schema,
                summary=self._summary,
                low=low,
                high=high,
                steps=self._steps,
                fitted=self._fitted,
                space=self._space,
                state=self._state,
                vocabularies=self._vocabularies,
                layout=self._layout,
                histograms=self._histograms,
            )
        )


def _check_noise(mode: str, noise_multiplier: object) -> None:
    """Private mode needs the parties' encoder noise multiplier (to tell signal from noise); others refuse one."""
    given = noise_multiplier is not None
    if mode != "private" and given:
        raise ConfigError(
            f"The 'noise_multiplier' parameter of PlanFitter is only used with mode='private'; got "
            f"{noise_multiplier!r} with mode={mode!r}. Drop it, or fit with mode='private'."
        )
    number = isinstance(noise_multiplier, (int, float)) and not isinstance(noise_multiplier, bool)
    ok = number and bool(np.isfinite(noise_multiplier) and noise_multiplier > 0)  # type: ignore[operator]
    if mode == "private" and not ok:
        raise ConfigError(
            "The 'noise_multiplier' parameter of PlanFitter must be a finite number > 0 with mode='private' "
            f"(the parties' encoder noise multiplier, PrivacyPlan.encoder_noise_multiplier). Got {noise_multiplier!r} "
            "instead."
        )


def _check_target(schema: TableSchema, target: object) -> None:
    """A target for 2-way marginals is one categorical (or boolean) column of the schema."""
    if target is None:
        return
    column = next((c for c in schema if c.name == target), None)
    if column is None or column.kind not in DISCRETE_KINDS:
        what = "not a column" if column is None else f"a {column.kind.value} column"
        raise ConfigError(f"The 'target' parameter of PlanFitter must name a categorical column of the schema; {target!r} "
                          f"is {what} (columns {schema.names}). Declare a categorical target, or pass none.")


def _check_int(name: str, value: object, low: int, high: int | None = None) -> None:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= low
    ok = ok and (high is None or value <= high)
    if not ok:
        upper = "inf)" if high is None else f"{high}]"
        raise ConfigError(
            f"The '{name}' parameter of PlanFitter must be an int in [{low}, {upper}. Got {value!r} instead."
        )


def _refuse_extra_keys(
    party_stats: Sequence[dict[str, np.ndarray]], request: p.StatsRequest, shapes: dict[str, tuple[int, ...]]
) -> None:
    """A private fit takes only private statistics; anything more means a party released it unnoised."""
    for index, reply in enumerate(party_stats):
        extra = sorted(set(reply) - set(shapes))
        if extra:
            raise FederationError(
                f"Reply {index} to the private '{request.stage}' request also carries {extra}, which are not private "
                f"statistics (expected only {sorted(shapes)}). That party answered without differential privacy: "
                "run it with its privacy plan and the same fedtab version."
            )


def _checked(
    reply: dict[str, np.ndarray], index: int, request: p.StatsRequest, shapes: dict[str, tuple[int, ...]]
) -> dict[str, np.ndarray]:
    """The reply with every expected key present and shaped as the request implies."""
    for key, shape in shapes.items():
        if key not in reply:
            raise FederationError(
                f"Reply {index} to the '{request.stage}' request lacks '{key}'; expected keys {sorted(shapes)}. "
                "Make sure every party runs the same fedtab version."
            )
        if np.shape(reply[key]) != shape:
            raise FederationError(
                f"Reply {index} to the '{request.stage}' request has '{key}' of shape {np.shape(reply[key])}; "
                f"expected {shape}. Make sure every party runs the same fedtab version and schema."
            )
    return {key: np.asarray(reply[key]) for key in shapes}


def fit_plan(
    tables: Sequence[PartyTable],
    *,
    schema: TableSchema | None = None,
    seed: int = 0,
    releases: Sequence[StatisticsRelease] | None = None,
    threshold_delta: float | None = None,
    **options: object,
) -> TransformPlan:
    """Run the whole protocol in this process (tests, benchmarks, single-machine use).

    With ``mode="private"``, ``releases`` holds one release per table (in order) and
    ``threshold_delta`` the parties' partition-selection δ.
    """
    if not tables:
        raise PartyError("fit_plan needs at least one PartyTable; got none. Pass the parties' tables.")
    if releases is not None and len(releases) != len(tables):
        raise ConfigError(f"fit_plan needs one release per table; got {len(releases)} for {len(tables)} tables.")
    fitter = PlanFitter(schema or tables[0].schema, seed=seed, **options)  # type: ignore[arg-type]
    per_table = list(releases) if releases is not None else [None] * len(tables)
    while (request := fitter.next_request()) is not None:
        fitter.merge([
            p.local_statistics(table, request, seed=seed, release=release, threshold_delta=threshold_delta)
            for table, release in zip(tables, per_table)
        ])
    return fitter.finalize()
