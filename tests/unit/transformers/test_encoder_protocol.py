"""What leaves a party is bounded aggregates; the protocol rejects bad input with useful words."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
from transformer_tables import MIXED_SCHEMA, mixed_frame, split_parties

from fedtab.errors import ConfigError, FederationError, NotFittedError, PartyError, SchemaError
from fedtab.schema import ColumnKind, ColumnSchema, PartyTable, TableSchema
from fedtab.transformers import RARE_TOKEN, PlanFitter, StatsRequest, fit_plan, local_statistics
from fedtab.transformers import protocol as p


def _requests(tables: list[PartyTable], **options: object) -> list[StatsRequest]:
    """Every request of a full exact fit, in order (the fit driven by ``tables``)."""
    fitter = PlanFitter(MIXED_SCHEMA, **options)  # type: ignore[arg-type]
    requests = []
    while (request := fitter.next_request()) is not None:
        requests.append(request)
        fitter.merge([local_statistics(t, request) for t in tables])
    return requests


def test_payload_size_does_not_grow_with_rows() -> None:
    big = PartyTable("big", mixed_frame(10_000, seed=1), MIXED_SCHEMA)
    small = PartyTable("small", mixed_frame(100, seed=2), MIXED_SCHEMA)
    requests = _requests([big, small], sample_cap=500, max_categories=40)
    assert [r.stage for r in requests][:3] == ["summary", "histogram", "em"]
    for request in requests:
        from_big, from_small = local_statistics(big, request), local_statistics(small, request)
        assert sorted(from_big) == sorted(from_small)
        for key in from_big:
            assert from_big[key].shape == from_small[key].shape, (request.stage, key)
            assert from_big[key].dtype.kind in "fU", key
        assert sum(a.size for a in from_big.values()) < 2_000


def test_replies_hold_no_rows(mixed: pd.DataFrame) -> None:
    """No reply array has a row axis: nothing is as long as the party's table."""
    table = PartyTable("a", mixed.head(777), MIXED_SCHEMA)
    for request in _requests([table], sample_cap=10_000):
        assert all(777 not in array.shape for array in local_statistics(table, request).values())


def test_category_labels_are_padded_to_max_categories(mixed: pd.DataFrame) -> None:
    table = PartyTable("a", mixed.head(50), MIXED_SCHEMA)
    reply = local_statistics(table, _requests([table], max_categories=12)[0])
    assert reply[p.CAT_LABELS].shape == (3, 12)
    assert reply[p.CAT_LABELS].dtype.kind == "U"
    colour = dict(zip(reply[p.CAT_LABELS][0], reply[p.CAT_COUNTS][0]))
    assert colour[""] == 0 and sum(colour.values()) == mixed.head(50)["colour"].notna().sum()


WIDE_SCHEMA = TableSchema(
    (
        ColumnSchema("city", ColumnKind.CATEGORICAL, "object"),
        ColumnSchema("x", ColumnKind.NUMERICAL, "float64"),
    )
)


def _wide_frame(offset: int) -> pd.DataFrame:
    """50,000 one-off values per party (100,000 across two) plus five common ones."""
    rng = np.random.default_rng(offset)
    unique = np.char.add("town_", np.arange(offset, offset + 50_000).astype(str)).astype(object)
    common = rng.choice(np.array(["north", "south", "east", "west", "centre"], dtype=object), 10_000)
    values = np.concatenate([unique, common])
    return pd.DataFrame({"city": values, "x": rng.normal(size=len(values))})


def test_a_hundred_thousand_distinct_values_stay_bounded() -> None:
    tables = [PartyTable(f"p{i}", _wide_frame(i * 50_000), WIDE_SCHEMA) for i in range(2)]
    fitter = PlanFitter(WIDE_SCHEMA, max_categories=100, min_category_count=2, mode="histogram")
    tracemalloc.start()
    request = fitter.next_request()
    replies = [local_statistics(t, request) for t in tables]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 100 * 2**20  # a dense 60,000 × 50,000 one-hot would need ~12 GB
    assert replies[0][p.CAT_LABELS].shape == (1, 100)
    assert replies[0][p.CAT_REST_DISTINCT][0] == 50_000 + 5 - 100
    fitter.merge(replies)
    while (request := fitter.next_request()) is not None:
        fitter.merge([local_statistics(t, request) for t in tables])
    plan = fitter.finalize()
    city = plan.columns[0]
    assert set(city.vocabulary[:-1]) == {"centre", "east", "north", "south", "west"}
    assert city.vocabulary[-1] == RARE_TOKEN
    assert city.counts[-1] == 100_000
    assert any("'city'" in n and "100000 rows" in n and RARE_TOKEN in n for n in plan.notes)
    encoded = plan.encode(tables[0].frame, np.random.default_rng(0))
    assert encoded.shape[1] == plan.output_dim <= 6 + 12
    decoded = plan.decode(encoded[:60_000:10_000], np.random.default_rng(0))
    assert decoded["city"].iloc[0] == RARE_TOKEN


def test_rare_values_of_a_numeric_coded_category_decode_as_missing() -> None:
    schema = TableSchema((ColumnSchema("code", ColumnKind.CATEGORICAL, "int64"),))
    frame = pd.DataFrame({"code": [1] * 5 + [2] * 5 + [9]})
    plan = fit_plan([PartyTable("a", frame, schema)], min_category_count=2)
    assert plan.columns[0].dtype == "Int64"
    decoded = plan.decode(plan.encode(frame, np.random.default_rng(0)), np.random.default_rng(0))
    assert decoded["code"].tolist()[:10] == [1] * 5 + [2] * 5 and pd.isna(decoded["code"].iloc[10])
    assert any("missing values" in n for n in plan.notes)


def test_declared_categories_fix_the_vocabulary() -> None:
    schema = TableSchema((ColumnSchema("size", ColumnKind.CATEGORICAL, "object", categories=("S", "M", "L")),))
    frame = pd.DataFrame({"size": ["M", "M", "XL", "S"]})
    plan = fit_plan([PartyTable("a", frame, schema)])
    assert plan.columns[0].vocabulary == ("S", "M", "L", RARE_TOKEN)
    assert plan.columns[0].counts == (1.0, 2.0, 0.0, 1.0)


def test_summary_labels_agree_across_int_and_float_parties() -> None:
    schema = TableSchema((ColumnSchema("grade", ColumnKind.CATEGORICAL, "int64", has_missing=True),))
    ints = PartyTable("a", pd.DataFrame({"grade": [1, 2, 2]}), schema)
    floats = PartyTable("b", pd.DataFrame({"grade": [2.0, None, 3.0]}), schema)
    plan = fit_plan([ints, floats])
    assert plan.columns[0].vocabulary == ("2", "1", "3", "__missing__")


def test_text_in_a_numerical_column_is_named() -> None:
    schema = TableSchema((ColumnSchema("age", ColumnKind.NUMERICAL, "int64"),))
    table = PartyTable("clinic_b", pd.DataFrame({"age": ["41", "unknown", "37", "unknown"]}), schema)
    with pytest.raises(SchemaError, match=r"'age' of party 'clinic_b' holds text \('unknown' in 2 rows\)"):
        local_statistics(table, PlanFitter(schema).next_request())


def test_a_party_missing_a_column_is_named(mixed: pd.DataFrame) -> None:
    table = PartyTable("clinic_c", mixed.drop(columns=["colour"]), MIXED_SCHEMA)
    with pytest.raises(PartyError, match=r"Party 'clinic_c' has no column\(s\) \['colour'\]"):
        local_statistics(table, PlanFitter(MIXED_SCHEMA).next_request())


def test_reserved_tokens_in_the_data_are_rejected() -> None:
    schema = TableSchema((ColumnSchema("tag", ColumnKind.CATEGORICAL, "object"),))
    with pytest.raises(SchemaError, match="reserves"):
        fit_plan([PartyTable("a", pd.DataFrame({"tag": ["x", RARE_TOKEN]}), schema)])


def test_bad_booleans_are_named() -> None:
    schema = TableSchema((ColumnSchema("ok", ColumnKind.BOOLEAN, "bool"),))
    with pytest.raises(SchemaError, match="'ok' of party 'a' holds 'maybe'"):
        fit_plan([PartyTable("a", pd.DataFrame({"ok": ["yes", "maybe", "no"]}), schema)])


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("num_components", 0, r"'num_components' parameter of PlanFitter must be an int in \[1, 50\]. Got 0"),
        ("max_categories", 1.5, r"'max_categories' .* Got 1.5"),
        ("mode", "dp", r"'mode' parameter .* one of \('exact', 'histogram', 'private'\). Got 'dp'"),
        ("sample_cap", True, r"'sample_cap' .* Got True"),
    ],
)
def test_options_are_checked(option: str, value: object, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        PlanFitter(MIXED_SCHEMA, **{option: value})  # type: ignore[arg-type]


def test_unknown_dtype_is_a_schema_error() -> None:
    schema = TableSchema((ColumnSchema("x", ColumnKind.NUMERICAL, "floaty"),))
    with pytest.raises(SchemaError, match="'x': dtype 'floaty' is not a pandas dtype"):
        PlanFitter(schema)


def test_finalize_before_the_last_round_is_refused(mixed: pd.DataFrame) -> None:
    fitter = PlanFitter(MIXED_SCHEMA)
    with pytest.raises(NotFittedError, match="'summary' request has not been merged"):
        fitter.finalize()


def test_malformed_replies_are_federation_errors(mixed: pd.DataFrame) -> None:
    table = PartyTable("a", mixed.head(100), MIXED_SCHEMA)
    fitter = PlanFitter(MIXED_SCHEMA)
    reply = local_statistics(table, fitter.next_request())
    with pytest.raises(FederationError, match="No party replied"):
        fitter.merge([])
    with pytest.raises(FederationError, match=f"Reply 1 .* lacks '{p.NUM_MIN}'"):
        fitter.merge([reply, {k: v for k, v in reply.items() if k != p.NUM_MIN}])
    with pytest.raises(FederationError, match=f"'{p.CAT_COUNTS}' of shape \\(3, 7\\); expected \\(3, 1000\\)"):
        fitter.merge([reply | {p.CAT_COUNTS: np.zeros((3, 7))}])
    assert fitter.rounds_used == 0


def test_no_rows_anywhere_is_a_party_error() -> None:
    table = PartyTable("a", mixed_frame(0), MIXED_SCHEMA)
    fitter = PlanFitter(MIXED_SCHEMA)
    with pytest.raises(PartyError, match="no rows"):
        fitter.merge([local_statistics(table, fitter.next_request())])


def test_em_sample_is_capped_in_proportion(mixed: pd.DataFrame) -> None:
    tables = split_parties(mixed, MIXED_SCHEMA, 2)
    em = next(r for r in _requests(tables, sample_cap=1000) if r.stage == p.STAGE_EM)
    totals = [local_statistics(t, em)[p.EM_TOTAL] for t in tables]
    population = em.arrays[p.REQ_POPULATION]
    for table, total in zip(tables, totals):
        present = np.array([table.frame[c].notna().sum() for c in em.config[p.CFG_NUMERICAL]])
        np.testing.assert_array_equal(total, np.ceil(1000 * present / population))
