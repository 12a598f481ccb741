"""Encode → decode round trips, the exact schema on the way out, spans, saving and determinism."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformer_tables import MIXED_SCHEMA, split_parties

from fedtab.errors import SchemaError
from fedtab.schema import ColumnKind, ColumnSchema, PartyTable, TableSchema
from fedtab.transformers import SpanInfo, TransformPlan, fit_plan
from fedtab.transformers.codecs import ALPHA_LIMIT

# alpha travels as float32, so a decoded value may differ from the original by 4σ_k · 2⁻²³ (≈ 5e-7 σ_k);
# we allow 1e-5 of the column's spread. Values CTGAN-clipped at |alpha| = 0.99 are not recoverable.
ROUND_TRIP_RTOL = 1e-5


@pytest.fixture(scope="module")
def plan(mixed: pd.DataFrame) -> TransformPlan:
    return fit_plan(split_parties(mixed, MIXED_SCHEMA, 3), seed=1)


@pytest.fixture(scope="module")
def encoded(plan: TransformPlan, mixed: pd.DataFrame) -> np.ndarray:
    return plan.encode(mixed, np.random.default_rng(0))


def _starts(plan: TransformPlan) -> dict[str, int]:
    out, start = {}, 0
    for column in plan.encoded_columns:
        out[column.name] = start
        start += column.width
    return out


def _unclipped(plan: TransformPlan, encoded: np.ndarray, name: str) -> np.ndarray:
    return np.abs(encoded[:, _starts(plan)[name]]) < np.float32(ALPHA_LIMIT)


def test_encoded_layout_follows_output_info(plan: TransformPlan, encoded: np.ndarray) -> None:
    assert encoded.dtype == np.float32
    assert encoded.shape == (5000, plan.output_dim)
    assert plan.output_dim == sum(span.dim for spans in plan.output_info for span in spans)
    assert [c.name for c in plan.encoded_columns] == [n for n in MIXED_SCHEMA.names if n != "rid"]
    start = 0
    for spans in plan.output_info:
        for span in spans:
            block = encoded[:, start : start + span.dim]
            if span.activation == "softmax":
                np.testing.assert_array_equal(block.sum(axis=1), 1.0)
                assert set(np.unique(block)) <= {0.0, 1.0}
            else:
                assert span.dim == 1 and np.abs(block).max() <= ALPHA_LIMIT + 1e-7
            start += span.dim


def test_numerical_spans_have_a_missing_flag_only_when_needed(plan: TransformPlan) -> None:
    by_name = {c.name: c for c in plan.columns}
    assert by_name["visits"].spans[-1] == SpanInfo(2, "softmax")
    assert len(by_name["bimodal"].spans) == 2
    assert by_name["rid"].spans == ()


def test_discrete_spans_point_at_the_one_hot_blocks(
    plan: TransformPlan, encoded: np.ndarray, mixed: pd.DataFrame
) -> None:
    spans = {s.column: s for s in plan.discrete_spans}
    assert list(spans) == ["colour", "grade", "member"]
    grade = spans["grade"]
    block = encoded[:, grade.start : grade.start + grade.dim]
    np.testing.assert_array_equal(block.sum(axis=0), grade.counts)
    assert grade.counts.sum() == len(mixed)


def test_round_trip_keeps_schema_categories_and_missing(
    plan: TransformPlan, encoded: np.ndarray, mixed: pd.DataFrame
) -> None:
    decoded = plan.decode(encoded, np.random.default_rng(0))
    assert list(decoded.columns) == MIXED_SCHEMA.names
    expected = {"visits": "Int64", "colour": "object", "grade": "int64", "member": "bool", "joined": "datetime64[ns]"}
    for name, dtype in expected.items():
        assert str(decoded[name].dtype) == dtype, name
    pd.testing.assert_series_equal(decoded["colour"], mixed["colour"], check_dtype=False)
    pd.testing.assert_series_equal(decoded["grade"], mixed["grade"])
    pd.testing.assert_series_equal(decoded["member"], mixed["member"])
    pd.testing.assert_series_equal(decoded["visits"].isna(), mixed["visits"].isna())


def test_round_trip_numbers_within_tolerance(plan: TransformPlan, encoded: np.ndarray, mixed: pd.DataFrame) -> None:
    decoded = plan.decode(encoded, np.random.default_rng(0))
    for name in ("bimodal", "trimodal", "visits", "joined"):
        present = mixed[name].notna().to_numpy()
        keep = _unclipped(plan, encoded, name) & present
        assert keep.sum() / present.sum() > 0.97, name
        original, back = mixed[name][keep], decoded[name][keep]
        if name == "joined":
            seconds = ((back - original) / pd.Timedelta(seconds=1)).abs()
            assert seconds.max() <= 2.0  # float32 alpha at epoch-seconds scale, rounded to whole seconds
        elif name == "visits":
            pd.testing.assert_series_equal(back, original)  # integers stay exact
        else:
            spread = original.max() - original.min()
            np.testing.assert_allclose(back, original, rtol=0, atol=ROUND_TRIP_RTOL * spread)
    clipped = ~_unclipped(plan, encoded, "bimodal")
    low, high = plan.columns[1].bounds
    assert decoded["bimodal"].between(low, high).all() and clipped.mean() < 0.03


def test_identifiers_come_back_fresh_and_unique(plan: TransformPlan, encoded: np.ndarray) -> None:
    decoded = plan.decode(encoded[:3], np.random.default_rng(0))
    assert decoded["rid"].tolist() == ["id_000001", "id_000002", "id_000003"]
    assert any("'rid'" in note and "identifier" in note for note in plan.notes)


def test_integer_identifier_counts_from_one() -> None:
    schema = TableSchema(
        (ColumnSchema("key", ColumnKind.IDENTIFIER, "int64"), ColumnSchema("x", ColumnKind.NUMERICAL, "float64"))
    )
    frame = pd.DataFrame({"key": [10, 20, 30], "x": [1.0, 2.0, 3.0]})
    plan = fit_plan([PartyTable("a", frame, schema)])
    decoded = plan.decode(plan.encode(frame, np.random.default_rng(0)), np.random.default_rng(0))
    assert decoded["key"].tolist() == [1, 2, 3] and decoded["key"].dtype == np.int64


def test_same_seed_same_encoding(plan: TransformPlan, mixed: pd.DataFrame, encoded: np.ndarray) -> None:
    np.testing.assert_array_equal(plan.encode(mixed, np.random.default_rng(0)), encoded)
    assert not np.array_equal(plan.encode(mixed, np.random.default_rng(1)), encoded)


def test_plan_survives_json(plan: TransformPlan, mixed: pd.DataFrame, encoded: np.ndarray) -> None:
    restored = TransformPlan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert restored == plan
    np.testing.assert_array_equal(restored.encode(mixed, np.random.default_rng(0)), encoded)


def test_decode_rejects_a_wrong_width(plan: TransformPlan) -> None:
    with pytest.raises(SchemaError, match=rf"shape \(n, {plan.output_dim}\)"):
        plan.decode(np.zeros((2, plan.output_dim + 1)), np.random.default_rng(0))


def test_encode_names_missing_columns_and_unseen_missing_values(plan: TransformPlan, mixed: pd.DataFrame) -> None:
    with pytest.raises(SchemaError, match="lacks columns \\['grade'\\]"):
        plan.encode(mixed.drop(columns="grade"), np.random.default_rng(0))
    gappy = mixed.head(5).copy()
    gappy["bimodal"] = [1.0, None, 2.0, 3.0, 4.0]
    with pytest.raises(SchemaError, match="'bimodal' has 1 missing values.*Refit"):
        plan.encode(gappy, np.random.default_rng(0))


def test_text_dates_come_back_in_their_format() -> None:
    schema = TableSchema((ColumnSchema("day", ColumnKind.DATETIME, "object", datetime_format="%d/%m/%Y"),))
    frame = pd.DataFrame({"day": ["01/02/2021", "15/03/2021", "28/02/2022", None]})
    plan = fit_plan([PartyTable("a", frame, schema)])
    decoded = plan.decode(plan.encode(frame, np.random.default_rng(0)), np.random.default_rng(0))
    assert decoded["day"].tolist()[:3] == ["01/02/2021", "15/03/2021", "28/02/2022"]
    assert pd.isna(decoded["day"].iloc[3])


@st.composite
def small_frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(min_value=2, max_value=40))
    floats = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, width=32)
    maybe_int = st.one_of(st.none(), st.integers(min_value=-50, max_value=5000))
    labels = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d d", "é"]))
    return pd.DataFrame(
        {
            "real": draw(st.lists(floats, min_size=n, max_size=n)),
            "count": pd.array(draw(st.lists(maybe_int, min_size=n, max_size=n)), dtype="Int64"),
            "label": pd.Series(draw(st.lists(labels, min_size=n, max_size=n)), dtype=object),
            "flag": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        }
    )


SMALL_SCHEMA = TableSchema(
    (
        ColumnSchema("real", ColumnKind.NUMERICAL, "float64"),
        ColumnSchema("count", ColumnKind.NUMERICAL, "int64", is_integer=True),
        ColumnSchema("label", ColumnKind.CATEGORICAL, "object"),
        ColumnSchema("flag", ColumnKind.BOOLEAN, "bool"),
    )
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=small_frames(), parties=st.integers(min_value=1, max_value=3))
def test_round_trip_property(frame: pd.DataFrame, parties: int) -> None:
    enough = len(frame) > 3 * parties * 7  # split_parties shifts cuts by 7 rows per party
    tables = split_parties(frame, SMALL_SCHEMA, parties) if enough else [PartyTable("a", frame, SMALL_SCHEMA)]
    plan = fit_plan(tables, num_components=4)
    encoded = plan.encode(frame, np.random.default_rng(0))
    decoded = plan.decode(encoded, np.random.default_rng(0))
    assert list(decoded.columns) == SMALL_SCHEMA.names
    assert [str(t) for t in decoded.dtypes] == [c.dtype for c in plan.columns]
    pd.testing.assert_series_equal(decoded["label"], frame["label"], check_dtype=False)
    pd.testing.assert_series_equal(decoded["flag"], frame["flag"])
    pd.testing.assert_series_equal(decoded["count"].isna(), frame["count"].isna())
    for name in ("real", "count"):
        keep = _unclipped(plan, encoded, name) & frame[name].notna().to_numpy()
        original = frame[name][keep].astype(float)
        spread = max(float(frame[name].max() - frame[name].min()), 1.0) if frame[name].notna().any() else 1.0
        np.testing.assert_allclose(decoded[name][keep].astype(float), original, rtol=0, atol=ROUND_TRIP_RTOL * spread)
        low, high = next(c for c in plan.columns if c.name == name).bounds
        assert decoded[name].dropna().between(low, high).all()
