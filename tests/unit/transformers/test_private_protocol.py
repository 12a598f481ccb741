"""What leaves a party in private mode: only what its release produced, counted exactly as planned."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from private_fakes import SentinelRelease, gaussian_releases, multiples_of_sentinel
from transformer_tables import MIXED_SCHEMA, mixed_frame, split_parties

from fedtab.errors import ConfigError, FederationError, PrivacyBudgetError, SchemaError
from fedtab.privacy.accountant import PartyAccountant
from fedtab.privacy.mechanisms import GaussianRelease
from fedtab.schema import ColumnKind, ColumnSchema, PartyTable, TableSchema
from fedtab.transformers import PlanFitter, StatsRequest, local_statistics
from fedtab.transformers import protocol as p
from fedtab.transformers.private_party import private_reply_problems, request_releases

DELTA = 1e-6


def _run(tables: list[PartyTable], releases: list, sigma: float = 1.0, schema: TableSchema = MIXED_SCHEMA,
         **options: object) -> list[tuple[StatsRequest, list[dict[str, np.ndarray]]]]:
    """A whole private fit; every request with every party's reply."""
    fitter = PlanFitter(schema, mode="private", noise_multiplier=sigma, **options)  # type: ignore[arg-type]
    rounds = []
    while (request := fitter.next_request()) is not None:
        replies = [local_statistics(t, request, release=r, threshold_delta=DELTA) for t, r in zip(tables, releases)]
        rounds.append((request, replies))
        fitter.merge(replies)
    fitter.finalize()
    return rounds


@pytest.fixture(scope="module")
def tables() -> list[PartyTable]:
    return split_parties(mixed_frame(1200, seed=2), MIXED_SCHEMA, 3)


def test_every_number_a_party_sends_came_out_of_its_release(tables: list[PartyTable]) -> None:
    releases = [SentinelRelease() for _ in tables]
    rounds = _run(tables, releases)
    assert [request.stage for request, _ in rounds] == ["summary", "histogram"]
    for request, replies in rounds:
        for reply in replies:
            assert private_reply_problems(request, reply) == []
            for key, array in reply.items():
                if array.dtype.kind == "f":
                    assert multiples_of_sentinel(array), (request.stage, key)
            if request.stage == p.STAGE_SUMMARY:
                named = set(reply[p.CAT_LABELS].ravel()) - {""}
                assert named <= {"red", "green", "blue", "teal", "plum", "1", "2", "3", "False", "True"}


def test_releases_charged_equal_the_release_plan(tables: list[PartyTable]) -> None:
    planned = PlanFitter.release_plan(MIXED_SCHEMA)
    assert planned == (13, 2)  # 4 numerical × 2, colour and grade × 2 (1 selection each), member × 1
    releases = gaussian_releases(tables, sigma=2.0)
    rounds = _run(tables, releases, sigma=2.0)
    assert sum(request_releases(request).encoder_releases for request, _ in rounds) == planned.encoder_releases
    for release in releases:
        accountant = release.accountant
        assert accountant.steps("encoder") == accountant.steps() == planned.encoder_releases
        assert accountant.threshold_delta() == pytest.approx(planned.partition_selections * DELTA)
    sentinel = SentinelRelease()
    _run(tables[:1], [sentinel])
    assert len(sentinel.calls) == planned.encoder_releases
    assert sum(kind == "select" for kind, _, _ in sentinel.calls) == planned.partition_selections


def test_declared_bounds_and_categories_release_less() -> None:
    declared = TableSchema(tuple(
        ColumnSchema(c.name, c.kind, c.dtype, is_integer=c.is_integer, has_missing=c.has_missing,
                     bounds=(0.0, 50.0) if c.name == "visits" else None,
                     categories=("1", "2", "3") if c.name == "grade" else None)
        for c in MIXED_SCHEMA
    ))
    assert PlanFitter.release_plan(declared) == (11, 1)


def test_huge_noise_buries_every_count(tables: list[PartyTable]) -> None:
    """At σ = 10⁶ nothing a party sends is near its true value, and no label passes selection."""
    table = tables[0]
    noisy = _run([table], gaussian_releases([table], sigma=1e6), sigma=1e6)
    exact = PlanFitter(MIXED_SCHEMA, mode="histogram")
    truth = {}
    while (request := exact.next_request()) is not None:
        truth[request.stage] = local_statistics(table, request)
        exact.merge([truth[request.stage]])
    summary = noisy[0][1][0]
    assert set(summary[p.CAT_LABELS].ravel()) <= {"", "False", "True"}  # booleans are public
    assert np.all(np.abs(summary[p.CAT_MISSING] - truth["summary"][p.CAT_MISSING]) > 100)
    assert np.all(np.abs(summary[p.NUM_BOUND_COUNTS][:, :100]) > 100)
    histogram = noisy[1][1][0][p.HIST_COUNTS]
    assert np.mean(np.abs(histogram) > 1000) > 0.99


def test_no_release_no_statistics_and_a_private_party_answers_nothing_else(tables: list[PartyTable]) -> None:
    request = PlanFitter(MIXED_SCHEMA, mode="private", noise_multiplier=1.0).next_request()
    with pytest.raises(PrivacyBudgetError, match="never released unnoised"):
        local_statistics(tables[0], request)
    with pytest.raises(PrivacyBudgetError, match="threshold_delta"):
        local_statistics(tables[0], request, release=SentinelRelease())
    exact_request = PlanFitter(MIXED_SCHEMA).next_request()
    with pytest.raises(PrivacyBudgetError, match="releases only differentially private statistics"):
        local_statistics(tables[0], exact_request, release=SentinelRelease(), threshold_delta=DELTA)


def test_noise_zero_cannot_be_released() -> None:
    with pytest.raises(ConfigError, match="must be a finite number > 0"):
        GaussianRelease(noise_multiplier=0.0, accountant=PartyAccountant("a"), rng=np.random.default_rng(0))


@pytest.mark.parametrize(("options", "words"), [
    ({"mode": "private"}, "'noise_multiplier' parameter of PlanFitter must be a finite number > 0"),
    ({"mode": "private", "noise_multiplier": 0.0}, "must be a finite number > 0 with mode='private'"),
    ({"mode": "exact", "noise_multiplier": 1.0}, "only used with mode='private'"),
])
def test_noise_multiplier_option_is_checked(options: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        PlanFitter(MIXED_SCHEMA, **options)


def test_payload_sizes_do_not_grow_with_rows() -> None:
    big = PartyTable("big", mixed_frame(10_000, seed=1), MIXED_SCHEMA)
    small = PartyTable("small", mixed_frame(60, seed=2), MIXED_SCHEMA)
    rounds = _run([big, small], gaussian_releases([big, small], sigma=1.0), max_categories=20)
    for request, (from_big, from_small) in rounds:
        assert sorted(from_big) == sorted(from_small)
        for key in from_big:
            assert from_big[key].shape == from_small[key].shape, (request.stage, key)
        assert sum(a.size for a in from_big.values()) < 4_000


def test_the_server_refuses_statistics_sent_without_privacy(tables: list[PartyTable]) -> None:
    fitter = PlanFitter(MIXED_SCHEMA, mode="private", noise_multiplier=1.0)
    request = fitter.next_request()
    reply = local_statistics(tables[0], request, release=SentinelRelease(), threshold_delta=DELTA)
    reply[p.ROWS] = np.array([float(tables[0].num_rows)])
    with pytest.raises(FederationError, match=r"also carries \['rows'\], which are not private statistics"):
        fitter.merge([reply])


def test_reply_inspection_names_leaks(tables: list[PartyTable]) -> None:
    request = PlanFitter(MIXED_SCHEMA, mode="private", noise_multiplier=1.0).next_request()
    reply = local_statistics(tables[0], request, release=SentinelRelease(), threshold_delta=DELTA)
    assert private_reply_problems(request, reply) == []
    padded = {**reply, p.CAT_COUNTS: reply[p.CAT_COUNTS] + (reply[p.CAT_LABELS] == "")}
    assert "padding entries (label '') carry a non-zero count" in private_reply_problems(request, padded)[0]
    leaked = {**reply, p.NUM_MIN: np.zeros(3)}
    assert private_reply_problems(request, leaked) == [
        "key 'num.min' is not a private statistic of the 'summary' stage"]


def test_a_value_outside_public_categories_is_refused_before_any_release() -> None:
    schema = TableSchema((ColumnSchema("tier", ColumnKind.CATEGORICAL, "object", categories=("gold", "silver")),
                          ColumnSchema("city", ColumnKind.CATEGORICAL, "object")))
    table = PartyTable("p", pd.DataFrame({"tier": ["gold", "bronze"], "city": ["a", "b"]}), schema)
    release = gaussian_releases([table], sigma=1.0)[0]
    request = PlanFitter(schema, mode="private", noise_multiplier=1.0).next_request()
    words = r"Column 'tier' of party 'p' holds values outside its public categories \('bronze'\)"
    with pytest.raises(SchemaError, match=words):
        local_statistics(table, request, release=release, threshold_delta=DELTA)
    assert release.accountant.steps() == 0
