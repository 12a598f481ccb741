"""Vertical alignment by PSI: exact intersection, one agreed order, no key on the wire, clear refusals."""

from __future__ import annotations

import json
import struct

import numpy as np
import pandas as pd
import pytest

from fedtab.errors import ConfigError, FederationError, PartyError, SchemaError
from fedtab.federation import keys
from fedtab.federation.alignment import (ALIGN_MESSAGES, LocalAlignment, align_parties, aligned_rows, canonical_keys,
                                         shared_secret)
from fedtab.federation.payload import Payload
from fedtab.privacy import psi

KEY = ("person_id",)
PEOPLE = 90


def _split(seed: int = 0, *, ids: str = "text", people: int = PEOPLE, share: float = 0.8) -> dict[str, pd.DataFrame]:
    """Three parties, each with a different random share of the people, rows shuffled per party."""
    rng = np.random.default_rng(seed)
    universe = [f"person-{i:06d}" for i in range(100, 100 + people)] if ids == "text" else \
        [4_000_000_000 + 7919 * i for i in range(people)]
    tables = {}
    for k, party in enumerate(("bank", "insurer", "registry")):
        held = rng.permutation(people)[: int(share * people)]
        tables[party] = pd.DataFrame({
            "person_id": [universe[i] for i in held],
            f"value_{k}": [float(i) * (k + 1) for i in held],
        })
    return tables


def _run(tables: dict[str, pd.DataFrame], *, seed: int = 7, min_rows: int = 1, key: tuple[str, ...] = KEY,
         tap=None, leader: str | None = None, **kwargs) -> tuple[int, LocalAlignment]:
    transport = LocalAlignment(tables, key, tap=tap, **kwargs)
    return align_parties(transport, key, min_rows=min_rows, seed=seed, leader=leader), transport


def _expected(tables: dict[str, pd.DataFrame]) -> set:
    merged = tables["bank"].merge(tables["insurer"], on="person_id").merge(tables["registry"], on="person_id")
    return set(merged["person_id"])


def _ids_in_order(tables: dict[str, pd.DataFrame], transport: LocalAlignment, party: str) -> list:
    """The keys behind a party's aligned rows (test only: a party's own table shows them)."""
    return list(tables[party]["person_id"].to_numpy()[transport.states[party]["align.rows"]])


@pytest.mark.parametrize("ids", ["text", "integer"])
def test_intersection_is_exact_and_every_party_has_the_same_order(ids: str) -> None:
    tables = _split(1, ids=ids)
    size, transport = _run(tables)
    expected = _expected(tables)
    assert size == len(expected) > 0
    orders = [_ids_in_order(tables, transport, p) for p in tables]
    assert set(orders[0]) == expected
    assert orders[0] == orders[1] == orders[2]
    for k, party in enumerate(tables):
        rows = transport.aligned(party)
        assert list(rows.columns) == [f"value_{k}"]
        assert list(rows.index) == list(range(size))
        # the value columns were made from the same person index: aligned rows describe the same person
        np.testing.assert_allclose(rows[f"value_{k}"] / (k + 1), transport.aligned("bank")["value_0"])
    assert len({shared_secret(transport.states[p]) for p in tables}) == 1
    # no scalar, private key or peer key outlives the protocol
    assert all(set(transport.states[p]) == {"align.rows", "align.fingerprint", "align.shared"} for p in tables)


def test_order_is_stable_for_a_seed_and_changes_with_it() -> None:
    tables = _split(2)
    _, first = _run(tables, seed=11)
    _, again = _run(tables, seed=11)
    _, other = _run(tables, seed=12)
    assert _ids_in_order(tables, first, "insurer") == _ids_in_order(tables, again, "insurer")
    assert _ids_in_order(tables, first, "insurer") != _ids_in_order(tables, other, "insurer")
    assert sorted(_ids_in_order(tables, first, "insurer")) == sorted(_ids_in_order(tables, other, "insurer"))


def test_several_key_columns_and_number_forms_combine() -> None:
    """12 and 12.0 are one key; a two-column key matches on both columns."""
    a = pd.DataFrame({"branch": [1, 1, 2, 2, 3], "account": [10, 11, 10, 11, 10], "x": range(5)})
    b = pd.DataFrame({"branch": [2.0, 1.0, 3.0, 1.0], "account": [10.0, 11.0, 11.0, 12.0], "y": range(4)})
    key = ("branch", "account")
    size, transport = _run({"a": a, "b": b}, key=key)
    assert size == 2
    left, right = transport.aligned("a"), transport.aligned("b")
    rows_a = transport.states["a"]["align.rows"]
    assert {(int(a.branch[i]), int(a.account[i])) for i in rows_a} == {(1, 11), (2, 10)}
    y_of = {(1, 11): 1, (2, 10): 0}
    assert [y_of[(int(a.branch[i]), int(a.account[i]))] for i in rows_a] == list(right["y"])
    assert list(left.columns) == ["x"] and list(right.columns) == ["y"]


# ---------------------------------------------------------------- nothing in the clear


def _needles(values: list) -> dict[bytes, str]:
    """Every form a key could take on the wire: text (UTF-8, UTF-32 as numpy stores it), int64, float64."""
    found: dict[bytes, str] = {}
    for value in values:
        text = str(value)
        found[text.encode()] = text
        found[text.encode("utf-32-le")] = text
        if isinstance(value, (int, np.integer)):
            found[struct.pack("<q", int(value))] = text
            found[struct.pack("<d", float(value))] = text
    return found


class Inspector:
    """Taps every message in both directions and searches its arrays' bytes and its config for keys."""

    def __init__(self, values: list) -> None:
        self.needles = _needles(values)
        self.messages: list[tuple[str, str, str]] = []
        self.hits: list[tuple[str, str, str, str]] = []

    def __call__(self, direction: str, party: str, message_type: str, payload: Payload) -> None:
        self.messages.append((direction, party, message_type))
        blobs = [np.ascontiguousarray(a).tobytes() for a in payload.arrays.values()]
        blobs.append(json.dumps(payload.config, default=str).encode())
        blobs.append(json.dumps(payload.metrics).encode())
        for blob in blobs:
            for needle, text in self.needles.items():
                if needle in blob:
                    self.hits.append((direction, party, message_type, text))


@pytest.mark.parametrize("ids", ["text", "integer"])
def test_every_message_is_inspected_and_carries_no_key(ids: str) -> None:
    tables = _split(3, ids=ids)
    every_key = sorted({v for t in tables.values() for v in t["person_id"].tolist()}, key=str)
    inspector = Inspector(every_key)
    _run(tables, tap=inspector)
    types = {m[2] for m in inspector.messages}
    assert types == set(ALIGN_MESSAGES)
    assert {d for d, _, _ in inspector.messages} == {"sent", "reply"}
    # 3 checks, 3 opens, 2 answers, 2 narrows, 2 orders: each sent and replied
    assert len(inspector.messages) == 2 * 12
    assert inspector.hits == []


@pytest.mark.parametrize("ids", ["text", "integer"])
def test_positive_control_the_inspector_finds_keys_sent_plainly(ids: str) -> None:
    """A naive alignment that sends keys as config text, numpy strings, int64 or float64 is caught."""
    tables = _split(3, ids=ids)
    values = tables["bank"]["person_id"].tolist()
    inspector = Inspector(values)
    plain = [Payload(config={"keys": [str(v) for v in values[:3]]}),
             Payload(arrays={"keys": np.array([str(v) for v in values[3:6]])})]
    if ids == "integer":
        plain += [Payload(arrays={"keys": np.array(values[6:9], dtype=np.int64)}),
                  Payload(arrays={"keys": np.array(values[9:12], dtype=np.float64)})]
    for payload in plain:
        inspector("reply", "bank", "naive", payload)
    assert len({hit[3] for hit in inspector.hits}) == 3 * len(plain)


# ---------------------------------------------------------------- refusals


def _refused(tables, error, match, **kwargs) -> pytest.ExceptionInfo:
    with pytest.raises(error, match=match) as info:
        _run(tables, **kwargs)
    return info


def test_missing_key_column_names_party_and_column() -> None:
    tables = _split(4)
    tables["insurer"] = tables["insurer"].rename(columns={"person_id": "customer"})
    info = _refused(tables, SchemaError, r"Party 'insurer'.*Key column 'person_id' is missing at party 'insurer'")
    assert "customer" not in str(info.value)  # the party's other column names stay in its own log


def test_missing_key_values_are_refused_before_anything_leaves() -> None:
    tables = _split(4)
    tables["registry"].loc[3, "person_id"] = None
    inspector = Inspector([])
    _refused(tables, PartyError, r"Key column 'person_id' of party 'registry' has missing \(or blank\) values",
             tap=inspector)
    assert {m[2] for m in inspector.messages} == {keys.ALIGN_CHECK}


def test_duplicate_keys_within_a_party_are_refused() -> None:
    tables = _split(4)
    bank = tables["bank"]
    tables["bank"] = pd.concat([bank, bank.iloc[[0]]], ignore_index=True)
    _refused(tables, PartyError, r"Key column\(s\) \['person_id'\] of party 'bank' repeat .*withheld")


def test_twelve_and_twelve_point_zero_are_duplicates_but_text_twelve_is_another_type() -> None:
    a = pd.DataFrame({"person_id": [12, 13], "x": [0, 1]})
    dup = pd.DataFrame({"person_id": [12.0, 12], "y": [0, 1]}, dtype=object)
    _refused({"a": a, "b": dup}, PartyError, r"party 'b' repeat")
    text = pd.DataFrame({"person_id": ["12", "13"], "y": [0, 1]})
    _refused({"a": a, "b": text}, SchemaError, r"key column 'person_id' holds number at 'a'; text at 'b'")


def test_mixed_types_within_a_party_are_refused() -> None:
    a = pd.DataFrame({"person_id": [12, 13], "x": [0, 1]})
    mixed = pd.DataFrame({"person_id": pd.Series([12, "13"], dtype=object), "y": [0, 1]})
    _refused({"a": a, "b": mixed}, SchemaError, r"Key column 'person_id' of party 'b' mixes types \(int, str\)")


def test_empty_intersection_is_refused_naming_parties_and_column() -> None:
    tables = _split(5)
    tables["registry"]["person_id"] = tables["registry"]["person_id"].str.replace("person", "patient")
    _refused(tables, PartyError, r"No key in column\(s\) \['person_id'\] is held by all of parties "
                                 r"\['bank', 'insurer', 'registry'\].*empty")


def test_intersection_below_the_minimum_is_refused_and_members_learn_nothing() -> None:
    tables = _split(5)
    inspector = Inspector([])
    expected = len(_expected(tables))
    _refused(tables, PartyError, rf"Only {expected} keys in column\(s\) \['person_id'\].*at least {expected + 1}",
             min_rows=expected + 1, tap=inspector)
    assert keys.ALIGN_ORDER not in {m[2] for m in inspector.messages}


def test_key_columns_declared_differently_are_refused() -> None:
    _refused(_split(6), ConfigError, r"aligns on key columns \['person_id'\] but party 'registry' declared \['id'\]",
             declared={"registry": ("id",)})


def test_aligned_rows_refuses_before_alignment_and_on_another_table() -> None:
    tables = _split(6)
    with pytest.raises(Exception, match="run align_parties"):
        aligned_rows(tables["bank"], {}, KEY)
    _, transport = _run(tables)
    changed = tables["bank"].assign(person_id=tables["bank"]["person_id"] + "x")
    with pytest.raises(PartyError, match="differs from the one the alignment ran on"):
        aligned_rows(changed, transport.states["bank"], KEY)


def test_tampered_sealed_secret_is_refused() -> None:
    """Positive control for the sealed channel: a relay that flips one ciphertext byte is caught."""
    tables = _split(7)

    class Tampering(LocalAlignment):
        def exchange(self, message_type, payloads):
            if message_type == keys.ALIGN_ORDER:
                sealed = payloads["insurer"].arrays[keys.ALIGN_SEALED].copy()
                sealed[-1] ^= 1
                payloads = {**payloads, "insurer": Payload(arrays={**payloads["insurer"].arrays, keys.ALIGN_SEALED: sealed},
                                                           config=payloads["insurer"].config)}
            return super().exchange(message_type, payloads)

    with pytest.raises(FederationError, match="Party .insurer. could not open the group sent to it as from .bank."):
        align_parties(Tampering(tables, KEY), KEY, min_rows=1, seed=0)


def test_requests_are_padded_so_the_narrowing_stays_hidden() -> None:
    """Every request the members (and the server) see is the leader's row count long, though the
    leader's set narrowed after the first member; unpadded, its length would tell the overlap."""
    tables = _split(8)
    requests: list[int] = []

    def tap(direction, party, message_type, payload):
        if direction == "sent" and message_type == keys.ALIGN_ANSWER:
            requests.append(len(payload.arrays[keys.ALIGN_REQUEST]))

    _run(tables, tap=tap)
    shared_with_first = len(set(tables["bank"]["person_id"]) & set(tables["insurer"]["person_id"]))
    assert shared_with_first < len(tables["bank"])
    assert len(requests) == 2 and requests[0] == requests[1]
    keys_of = list(map(str, tables["bank"]["person_id"]))
    unpadded, _ = psi.psi_request(keys_of[:shared_with_first])
    assert len(unpadded) < requests[1]


def test_errors_on_the_wire_carry_no_key_and_no_count() -> None:
    tables = _split(9)
    tables["bank"] = pd.concat([tables["bank"], tables["bank"].iloc[[0, 1]]], ignore_index=True)
    inspector = Inspector(sorted({v for t in tables.values() for v in t["person_id"]}))
    wire: list[str] = []
    info = _refused(tables, PartyError, "repeat", tap=lambda d, p, m, payload: (
        inspector(d, p, m, payload), wire.append(str(payload.config.get(keys.ERROR_MESSAGE, "")))))
    assert inspector.hits == []
    assert any("repeat [withheld" in w for w in wire) and not any("repeat 2 keys" in w for w in wire)
    assert "person-" not in str(info.value)


def test_a_named_leader_finds_the_same_intersection() -> None:
    tables = _split(10)
    size, transport = _run(tables, leader="registry")
    assert size == len(_expected(tables))
    assert _ids_in_order(tables, transport, "bank") == _ids_in_order(tables, transport, "registry")
    with pytest.raises(ConfigError, match="leader must be one of the parties"):
        _run(tables, leader="nobody")


def test_canonical_keys_unify_forms_of_one_key() -> None:
    composed, decomposed = "Jos\u00e9", "Jose\u0301"
    assert canonical_keys(pd.DataFrame({"k": [composed]}), ("k",), "a") == canonical_keys(
        pd.DataFrame({"k": [decomposed]}), ("k",), "b")
    numbers = pd.DataFrame({"k": [12, 13]}), pd.DataFrame({"k": [12.0, 13.0]}), pd.DataFrame({"k": [12, 13.0]}, dtype=object)
    assert {tuple(canonical_keys(t, ("k",), "a")) for t in numbers} == {("12", "13")}
    assert canonical_keys(pd.DataFrame({"k": [12.5]}), ("k",), "a") == ["12.5"]
    assert canonical_keys(pd.DataFrame({"k": pd.Categorical(["x", "y"])}), ("k",), "a") == ["x", "y"]
    stamps = pd.DataFrame({"k": pd.to_datetime(["2024-01-02 03:04:05"])})
    assert canonical_keys(stamps, ("k",), "a") == ["2024-01-02T03:04:05"]
    two = pd.DataFrame({"a": ["x", "x"], "b": [1, 2]})
    assert canonical_keys(two, ("a", "b"), "p") == ['["x","1"]', '["x","2"]']
    with pytest.raises(PartyError, match="missing \\(or blank\\)"):
        canonical_keys(pd.DataFrame({"k": ["a", " "]}), ("k",), "p")


def test_a_tag_a_member_cannot_match_fails_the_run_instead_of_misaligning() -> None:
    """What a PSI false positive looks like to a member (a shared key it lacks): the run stops."""
    tables = _split(11)

    class Corrupting(LocalAlignment):
        def exchange(self, message_type, payloads):
            if message_type == keys.ALIGN_ORDER:
                payloads = {p: Payload(arrays={**m.arrays, keys.ALIGN_TAGS: np.concatenate(
                    [m.arrays[keys.ALIGN_TAGS], np.full((1, psi.KEY_BYTES), 7, dtype=np.uint8)])}, config=m.config)
                    for p, m in payloads.items()}
            return super().exchange(message_type, payloads)

    transport = Corrupting(tables, KEY)
    with pytest.raises(FederationError, match=r"Party 'insurer' holds no key for 1 of the \d+ shared keys"):
        align_parties(transport, KEY, min_rows=1, seed=0)
    assert "align.rows" not in transport.states["insurer"]


def test_a_relay_cannot_query_a_member_with_its_own_guesses() -> None:
    """A PSI server answers any request: unprotected, a relay that sends its own blinded guesses learns
    which guesses a member holds (the control). Sealed between leader and member, the member refuses."""
    tables = _split(12)
    member_keys = list(tables["insurer"]["person_id"])
    guesses = [member_keys[0], member_keys[1], "person-999999"]
    setup, server_key = psi.psi_setup(member_keys, client_keys=len(guesses))
    request, relay_key = psi.psi_request(guesses)
    found = psi.psi_intersection(relay_key, setup, psi.psi_response(server_key, request))
    assert list(found) == [0, 1]

    class Guessing(LocalAlignment):
        def exchange(self, message_type, payloads):
            if message_type == keys.ALIGN_ANSWER:
                payloads = {p: Payload(arrays={keys.ALIGN_REQUEST: psi.to_array(psi.psi_request(guesses)[0])},
                                       config=m.config) for p, m in payloads.items()}
            return super().exchange(message_type, payloads)

    with pytest.raises(FederationError, match="Party 'insurer' could not open the request sent to it as from 'bank'"):
        align_parties(Guessing(tables, KEY), KEY, min_rows=1, seed=0)


def test_the_protocol_survives_flowers_records_both_ways() -> None:
    """Every payload goes through Flower's RecordDict, and every party's state through the ArrayRecord a
    ClientApp keeps it in (as both engines do): same result."""
    from flwr.app.metadata import validate_message_type

    from fedtab.federation.records import from_record, from_state_record, to_record, to_state_record

    assert all(validate_message_type(m) for m in ALIGN_MESSAGES)

    class ThroughRecords(LocalAlignment):
        def exchange(self, message_type, payloads):
            sent = {p: from_record(to_record(m)) for p, m in payloads.items()}
            replies = {p: from_record(to_record(r)) for p, r in super().exchange(message_type, sent).items()}
            self.states = {p: from_state_record(to_state_record(s)) for p, s in self.states.items()}
            return replies

    tables = _split(13)
    transport = ThroughRecords(tables, KEY)
    assert align_parties(transport, KEY, min_rows=1, seed=3) == len(_expected(tables))
    assert _ids_in_order(tables, transport, "bank") == _ids_in_order(tables, transport, "registry")
