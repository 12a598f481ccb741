"""The TransformPlan: per column, its encoded spans and fitted parameters; what every model reads.

A plan is an immutable value made once by the server (``PlanFitter.finalize``) and broadcast. It
encodes a party's frame into the CTGAN layout and decodes model output back into a frame with
exactly the real schema. It holds only released statistics, never a row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from fedtab.errors import SchemaError
from fedtab.schema import ColumnKind, TableSchema
from fedtab.transformers import codecs
from fedtab.transformers.quantile import QuantileMap, quantile_map

PLAN_FORMAT_VERSION = 1
NUMERIC_KINDS = (ColumnKind.NUMERICAL, ColumnKind.DATETIME)
DISCRETE_KINDS = (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN)


@dataclass(frozen=True)
class SpanInfo:
    """One CTGAN output span: ``tanh`` for the scalar alpha, ``softmax`` for a one-hot block."""

    dim: int
    activation: str


@dataclass(frozen=True)
class DiscreteSpan:
    """Where a categorical column sits in the encoded row, with its global category counts.

    Models build conditional vectors and training-by-sampling from these.
    """

    column: str
    start: int
    dim: int
    counts: np.ndarray


@dataclass(frozen=True)
class ColumnPlan:
    """One column's encoding. Numerical fields are used by numerical/datetime columns only,
    vocabulary fields by categorical/boolean ones; identifiers have no spans at all.

    ``weights`` are the kept mixture components' weights renormalised to sum to 1; ``stds`` are
    the components' standard deviations (scikit-learn's ``sqrt(covariances_)``). ``step`` is the
    grid decoded values are rounded to (1 for integers, 86400 for whole-day dates, 0 for none). ``dtype`` is the
    pandas dtype decode emits: the schema's, made nullable when the column can be missing.
    """

    name: str
    kind: ColumnKind
    dtype: str
    spans: tuple[SpanInfo, ...] = ()
    means: tuple[float, ...] = ()
    stds: tuple[float, ...] = ()
    weights: tuple[float, ...] = ()
    bounds: tuple[float, float] | None = None
    is_integer: bool = False
    step: float = 0.0
    has_missing: bool = False
    missing_mode: int = 0
    missing_fill: float = 0.0
    vocabulary: tuple[str, ...] = ()
    counts: tuple[float, ...] = ()
    textual: bool = True
    datetime_format: str | None = None
    histogram: tuple[float, ...] = ()
    histogram_low: float = 0.0
    histogram_width: float = 0.0
    pair_counts: tuple[tuple[float, ...], ...] = ()
    """The released cross table with the plan's ``target`` (target classes × this column's vocabulary or
    mixture modes; ``transformers.pairs``); empty when none was released."""

    @property
    def width(self) -> int:
        return sum(span.dim for span in self.spans)

    def mixture_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.asarray(self.means), np.asarray(self.stds), np.asarray(self.weights)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["kind"] = self.kind.value
        out["spans"] = [[s.dim, s.activation] for s in self.spans]
        for key in ("means", "stds", "weights", "vocabulary", "counts", "histogram"):
            out[key] = list(out[key])
        out["bounds"] = None if self.bounds is None else list(self.bounds)
        out["pair_counts"] = [list(row) for row in self.pair_counts]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnPlan:
        data = dict(data)
        data["kind"] = ColumnKind(data["kind"])
        data["spans"] = tuple(SpanInfo(int(d), str(a)) for d, a in data["spans"])
        for key in ("means", "stds", "weights", "counts"):
            data[key] = tuple(float(v) for v in data[key])
        data["histogram"] = tuple(float(v) for v in data.get("histogram", ()))
        data["pair_counts"] = tuple(tuple(float(v) for v in row) for row in data.get("pair_counts", ()))
        data["vocabulary"] = tuple(str(v) for v in data["vocabulary"])
        data["bounds"] = None if data["bounds"] is None else (float(data["bounds"][0]), float(data["bounds"][1]))
        return cls(**data)


@dataclass(frozen=True)
class TransformPlan:
    """The fitted encoders of a table, in schema order (identifier columns included, spanless)."""

    schema: TableSchema
    columns: tuple[ColumnPlan, ...]
    notes: tuple[str, ...] = ()
    target: str | None = None
    """The column whose 2-way marginals with every other column the plan holds (``ColumnPlan.pair_counts``)."""
    pair_noise: float = 0.0
    """Standard deviation of the noise on each summed cell of those tables (0 when exact): how far to trust them."""

    def __post_init__(self) -> None:
        if [c.name for c in self.columns] != self.schema.names:
            raise SchemaError(
                f"A plan's columns must follow its schema; got {[c.name for c in self.columns]} for schema "
                f"{self.schema.names}. Build plans with PlanFitter rather than by hand."
            )

    @property
    def encoded_columns(self) -> list[ColumnPlan]:
        return [c for c in self.columns if c.spans]

    @property
    def output_info(self) -> list[list[SpanInfo]]:
        return [list(c.spans) for c in self.encoded_columns]

    @property
    def output_dim(self) -> int:
        return sum(c.width for c in self.columns)

    @property
    def discrete_spans(self) -> list[DiscreteSpan]:
        spans, start = [], 0
        for column in self.encoded_columns:
            if column.kind in DISCRETE_KINDS:
                spans.append(DiscreteSpan(column.name, start, column.width, np.asarray(column.counts)))
            start += column.width
        return spans

    def encode(self, frame: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
        """Rows → float32 array (n, output_dim); one uniform per row per numerical column from ``rng``."""
        absent = [c.name for c in self.encoded_columns if c.name not in frame.columns]
        if absent:
            raise SchemaError(
                f"The frame to encode lacks columns {absent} that the plan encodes; it has {list(frame.columns)}. "
                "Pass a frame with the plan's schema."
            )
        out = np.zeros((len(frame), self.output_dim), dtype=np.float32)
        start = 0
        for column in self.encoded_columns:
            block = np.zeros((len(frame), column.width))
            series = frame[column.name].reset_index(drop=True)
            if column.kind in NUMERIC_KINDS:
                codecs.encode_numerical(column, series, rng, block)
            else:
                codecs.encode_categorical(column, series, block)
            out[:, start : start + column.width] = block
            start += column.width
        return out

    def imputed(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with the gaps of every numerical or date column the plan keeps no missing span for
        filled with the column's fill value, row by row.

        Under DP a party's gaps in such a column are not released (the schema round does not say
        whether there are any), so the party fills them itself before encoding; the model never
        learns to emit them. Outside DP, ``encode`` refuses such gaps instead.
        """
        out = frame.copy()
        for column in self.encoded_columns:
            if column.kind not in NUMERIC_KINDS or column.has_missing or not out[column.name].isna().any():
                continue
            series = out[column.name]
            fill: object = column.missing_fill
            if pd.api.types.is_datetime64_any_dtype(series.dtype):
                stamp = pd.Timestamp(column.missing_fill, unit="s", tz="UTC")
                fill = stamp if series.dt.tz is not None else stamp.tz_localize(None)
            elif pd.api.types.is_integer_dtype(series.dtype):
                fill = int(round(column.missing_fill))
            out[column.name] = series.fillna(fill)
        return out

    def decode(self, data: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
        """Model output → a frame with exactly the schema's names, order and dtypes.

        Decoding is deterministic (argmax per softmax span); ``rng`` is accepted so models can pass
        their generator uniformly.
        """
        data = np.asarray(data)
        if data.ndim != 2 or data.shape[1] != self.output_dim:
            raise SchemaError(
                f"decode expects an array of shape (n, {self.output_dim}); got shape {data.shape}. "
                "Pass the model's raw output for this plan (plan.output_dim columns)."
            )
        decoded: dict[str, pd.Series] = {}
        start = 0
        for column in self.columns:
            block = data[:, start : start + column.width]
            start += column.width
            if column.kind is ColumnKind.IDENTIFIER:
                decoded[column.name] = codecs.fresh_identifiers(column, len(data))
            elif column.kind in NUMERIC_KINDS:
                decoded[column.name] = codecs.decode_numerical(column, block)
            else:
                decoded[column.name] = codecs.decode_categorical(column, block)
        return pd.DataFrame(decoded, columns=self.schema.names, copy=False)  # the columns are fresh: no second copy

    def column(self, name: str) -> ColumnPlan:
        """The plan of column ``name``."""
        for column in self.columns:
            if column.name == name:
                return column
        raise SchemaError(f"The plan has no column {name!r}; its columns are {self.schema.names}. Pass one of them.")

    def column_start(self, name: str) -> int:
        """Where column ``name``'s block starts in an encoded row."""
        start = 0
        for column in self.columns:
            if column.name == name:
                return start
            start += column.width
        raise SchemaError(f"The plan has no column {name!r}; its columns are {self.schema.names}. Pass one of them.")

    def quantile_map(self, name: str) -> QuantileMap:
        """The numerical column's quantile map, read off its released histogram (no new statistic, no ε)."""
        column = self.column(name)
        if column.kind not in NUMERIC_KINDS:
            raise SchemaError(f"Column {name!r} is {column.kind.value}; quantile maps exist for numerical and "
                              "datetime columns only. Read a categorical column's index from its one-hot block.")
        return quantile_map(column)

    def quantile_normal(self, name: str, values: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Values of a numerical column (data units; dates as epoch seconds) → quantile-normal values (NaN kept)."""
        return self.quantile_map(name).normal(values, rng)

    def from_quantile_normal(self, name: str, z: np.ndarray) -> np.ndarray:
        """Quantile-normal values → the column's values in data units (``encode_values`` writes them in the layout)."""
        return self.quantile_map(name).from_normal(z)

    def quantile_bins(self, name: str, k: int) -> np.ndarray:
        """Edges of ``k`` equal-mass bins of a numerical column (fewer where one value holds more than 1/k)."""
        return self.quantile_map(name).bin_edges(k)

    def block_values(self, name: str, encoded: np.ndarray) -> np.ndarray:
        """A numerical column's values (data units, unrounded; NaN where missing) from encoded rows."""
        column = self.column(name)
        start = self.column_start(name)
        return codecs.numerical_values(column, np.asarray(encoded)[:, start:start + column.width])

    def encode_values(self, name: str, values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A numerical column's block (n, width) for values in data units (NaN for missing), as ``encode`` writes it."""
        column = self.column(name)
        block = np.zeros((len(values), column.width))
        codecs.encode_values(column, np.asarray(values, dtype=np.float64), rng, block)
        return block

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": PLAN_FORMAT_VERSION,
            "schema": self.schema.to_dict(),
            "columns": [c.to_dict() for c in self.columns],
            "notes": list(self.notes),
            "target": self.target,
            "pair_noise": self.pair_noise,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TransformPlan:
        version = data.get("format_version")
        if version != PLAN_FORMAT_VERSION:
            raise SchemaError(
                f"Saved plan has format_version {version!r}; this fedtab reads version {PLAN_FORMAT_VERSION}. "
                "Refit the plan with this version of fedtab."
            )
        return cls(
            schema=TableSchema.from_dict(data["schema"]),
            columns=tuple(ColumnPlan.from_dict(c) for c in data["columns"]),
            notes=tuple(str(n) for n in data["notes"]),
            target=data.get("target"),
            pair_noise=float(data.get("pair_noise", 0.0)),
        )
