"""Vertical alignment: the parties find the people they all hold, and one row order, by private set intersection.

Roles. One party is the *leader* (the first by name unless the server names another); the others are
*members*. The server only relays. The leader is the PSI client against each member in turn (ECDH
PSI, ``fedtab.privacy.psi``), narrowing its key set to the keys shared so far; after the last member
it holds the intersection I, tags each key with an HMAC under a secret the parties share, sorts the
tags and sends them (through the server) to every member, who tags its own keys the same way and so
finds its rows of I in the agreed order.

Messages (``keys.ALIGN_*``), in order. Every PSI message is sealed from leader to member or back
(X25519 + ChaCha20-Poly1305 under the public keys pinned at ``align_open``), so the server can
neither read one nor inject its own guesses into a member's PSI (a PSI server answers any request).

1. ``align_check`` server → every party: the key columns. Reply: each column's type class (number,
   text, datetime...), the row count, a fresh X25519 public key. Keys are checked here, before
   anything derived from one leaves: missing column, missing values, duplicates, mixed types.
   The server refuses key types that differ across parties.
2. ``align_open`` server → leader: the members' public keys. Reply: its keys blinded (PSI request,
   shuffled) sealed for the first member, and the group secret sealed for each member. Server → each
   member: the leader's public key and row count. Reply: its compressed set (GCS) of its blinded
   keys (PSI setup), sealed for the leader.
3. per member, in name order: ``align_answer`` server → member: the leader's request. Reply: the
   PSI response. ``align_narrow`` server → leader: that member's setup and response. Reply: the
   next request for the next member (the keys shared so far, padded with random fillers to the
   leader's row count and shuffled), or after the last member the sorted tags of I.
4. ``align_order`` server → each member: the tags and its sealed group secret. Reply: the tag
   count once every tag matched one of its rows (otherwise an error).

What each role learns. The server: row counts, key type classes, |I| (the tag count), and opaque
bytes (ciphertexts, HMAC tags); the padding keeps every request the leader's row count long, so the
server does not learn how the intersection narrows (if it runs empty, the error says after which
member). A member: the leader's row count and, from the tags, which of its own keys are in I —
nothing about keys outside I. The leader: the members' row counts (a compressed set's size) and,
besides I, **the prefix intersections**: which of its keys the first member holds, which the first
two hold, and so on (with three parties, the leader learns which of its people the first member
has). That is the price of building an n-party intersection from two-party PSI without giving the
server the Venn counts; name as leader the party that may learn it. The server is trusted to relay
the X25519 public keys faithfully (honest but curious): one that swapped them from the start could
sit in the middle; compare key fingerprints out of band where that matters.

Keys. Several key columns combine into one canonical key (a JSON list of the columns' canonical
texts). A number's canonical text is its integer form when it is whole (``12`` and ``12.0`` are one
key, ``"12"`` — text — is another type and refused); text is NFC-normalised; date-times are ISO
8601. Keys are never modelled and ``aligned_rows`` drops them.

Row order. Sort by HMAC-SHA256 under a secret derived from the leader's whole table and the run's
seed: same data and seed, same order; another seed, another order; the server, lacking the table,
cannot recompute it.
"""

from __future__ import annotations

import hashlib
import json
import time
import unicodedata
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fedtab.errors import ConfigError, FederationError, NotFittedError, PartyError, SchemaError, private
from fedtab.federation import keys
from fedtab.federation.disclosure import error_reply
from fedtab.federation.payload import Payload
from fedtab.privacy import psi

if TYPE_CHECKING:
    from fedtab.federation.coordinator import Transport

State = dict[str, np.ndarray]
ALIGN_MESSAGES: frozenset[str] = frozenset(
    {keys.ALIGN_CHECK, keys.ALIGN_OPEN, keys.ALIGN_ANSWER, keys.ALIGN_NARROW, keys.ALIGN_ORDER}
)
LEADER, MEMBER = "leader", "member"
_X25519, _CLIENT, _SERVER = "align.x25519", "align.client_key", "align.server_key"
_REQUEST_ROWS = "align.request_rows"
ROWS, FINGERPRINT, SHARED = "align.rows", "align.fingerprint", "align.shared"


# ---------------------------------------------------------------- server side


def align_parties(transport: Transport, key_columns: tuple[str, ...], *, min_rows: int, seed: int,
                  leader: str | None = None) -> int:
    """Run the whole protocol (module docstring) and return the intersection's size, all the server learns."""
    names = sorted(transport.parties)
    leader = _check_request(names, key_columns, min_rows, leader)
    members = [p for p in names if p != leader]
    checked = _all(transport, keys.ALIGN_CHECK, {p: Payload(config={keys.ALIGN_COLUMNS: list(key_columns)}) for p in names})
    check_key_kinds({p: list(checked[p].config[keys.ALIGN_KINDS]) for p in names}, key_columns)  # type: ignore[arg-type]
    public = {p: checked[p].arrays[keys.ALIGN_PUBLIC] for p in names}
    leader_rows = int(checked[leader].config[keys.ROWS])
    opened = _all(transport, keys.ALIGN_OPEN, {
        leader: Payload(arrays={f"{keys.ALIGN_PUBLIC}.{p}": public[p] for p in members},
                        config={keys.ALIGN_ROLE: LEADER, keys.ALIGN_PEERS: members, keys.RUN + ".seed": seed}),
        **{p: Payload(arrays={keys.ALIGN_PUBLIC: public[leader]},
                      config={keys.ALIGN_ROLE: MEMBER, keys.ALIGN_PEER: leader, keys.ALIGN_CLIENT_KEYS: leader_rows})
           for p in members},
    })
    request, tags = opened[leader].arrays[keys.ALIGN_REQUEST], np.empty((0, psi.KEY_BYTES), dtype=np.uint8)
    for i, member in enumerate(members):
        answer = _all(transport, keys.ALIGN_ANSWER, {member: Payload(arrays={keys.ALIGN_REQUEST: request},
                                                                     config={keys.ALIGN_PEER: leader})})
        last = i == len(members) - 1
        narrowed = _all(transport, keys.ALIGN_NARROW, {leader: Payload(
            arrays={keys.ALIGN_SETUP: opened[member].arrays[keys.ALIGN_SETUP],
                    keys.ALIGN_RESPONSE: answer[member].arrays[keys.ALIGN_RESPONSE]},
            config={keys.ALIGN_PEER: member, keys.ALIGN_PEERS: members[: i + 1], keys.ALIGN_MIN_ROWS: min_rows,
                    keys.ALIGN_NEXT: "" if last else members[i + 1]})})
        if last:
            tags = narrowed[leader].arrays[keys.ALIGN_TAGS]
        else:
            request = narrowed[leader].arrays[keys.ALIGN_REQUEST]
    if len(tags) < min_rows:
        raise FederationError(f"The leader {leader!r} sent {len(tags)} tags, below min_rows {min_rows}, instead of refusing; "
                              "run the same fedtab version at every party.")
    return _order(transport, tags, opened[leader], leader, members, key_columns)


def _order(transport: Transport, tag_array: np.ndarray, opened: Payload, leader: str, members: list[str],
           key_columns: tuple[str, ...]) -> int:
    """Send every member the sorted tags and its sealed secret; all must match every tag."""
    size = len(tag_array)
    replies = _all(transport, keys.ALIGN_ORDER, {p: Payload(
        arrays={keys.ALIGN_TAGS: tag_array, keys.ALIGN_SEALED: opened.arrays[f"{keys.ALIGN_SEALED}.{p}"]},
        config={keys.ALIGN_PEER: leader}) for p in members})
    differing = {p: int(r.config[keys.ALIGN_SIZE]) for p, r in replies.items() if int(r.config[keys.ALIGN_SIZE]) != size}
    if differing:
        raise FederationError(
            f"Parties {sorted(differing)} matched {sorted(differing.values())} of the {size} shared keys in "
            f"column(s) {list(key_columns)}; every party must match all. Rerun the alignment; if it repeats, "
            "the parties' key columns are not canonicalised alike (update fedtab everywhere).")
    return size


def _check_request(names: list[str], key_columns: tuple[str, ...], min_rows: int, leader: str | None) -> str:
    if len(names) < 2:
        raise ConfigError(f"Vertical alignment needs at least 2 parties; got {names}. Add the other parties.")
    if not key_columns or len(set(key_columns)) != len(key_columns):
        raise ConfigError(f"Declare one or more distinct key columns (e.g. ('person_id',)); got {key_columns!r}.")
    if min_rows < 1:
        raise ConfigError(f"min_rows must be an int >= 1; got {min_rows!r}.")
    if leader is not None and leader not in names:
        raise ConfigError(f"The leader must be one of the parties {names}; got {leader!r}.")
    return leader or names[0]


def check_key_kinds(kinds: Mapping[str, list[str]], key_columns: tuple[str, ...]) -> None:
    """Every party's key columns hold one type class each (a party releases that class, nothing else)."""
    problems = []
    for j, column in enumerate(key_columns):
        by_kind: dict[str, list[str]] = {}
        for party in sorted(kinds):
            by_kind.setdefault(kinds[party][j], []).append(party)
        if len(by_kind) > 1:
            found = "; ".join(f"{kind} at {', '.join(repr(p) for p in parties)}" for kind, parties in sorted(by_kind.items()))
            problems.append(f"key column {column!r} holds {found}")
    if problems:
        raise SchemaError("The key columns differ in type across parties, so equal keys could not match. Give each "
                          "key column one type at every party (e.g. read ids as text everywhere).", problems)


def _all(transport: Transport, message_type: str, payloads: Mapping[str, Payload]) -> dict[str, Payload]:
    replies = transport.exchange(message_type, payloads)
    missing = sorted(set(payloads) - set(replies))
    if missing:
        raise FederationError(f"Parties {missing} did not reply during {message_type}; alignment needs every "
                              "party. Check that they are running, then rerun.")
    return replies


# ---------------------------------------------------------------- party side


def handle_alignment(message_type: str, payload: Payload, table: pd.DataFrame, key_columns: tuple[str, ...],
                     party: str, state: State) -> tuple[Payload, State]:
    """Answer one alignment message for ``party``; raises a FedtabError (the worker makes it a redacted reply)."""
    handlers = {keys.ALIGN_CHECK: _check, keys.ALIGN_OPEN: _open, keys.ALIGN_ANSWER: _answer,
                keys.ALIGN_NARROW: _narrow, keys.ALIGN_ORDER: _receive_order}
    if message_type not in handlers:
        raise PartyError(f"Party {party!r} got {message_type!r}, not an alignment message {sorted(ALIGN_MESSAGES)}.")
    return handlers[message_type](payload, table, tuple(key_columns), party, dict(state))


def _check(payload: Payload, table: pd.DataFrame, key_columns: tuple[str, ...], party: str,
           state: State) -> tuple[Payload, State]:
    asked = tuple(payload.config[keys.ALIGN_COLUMNS])  # type: ignore[arg-type]
    if asked != key_columns:
        raise ConfigError(f"The server aligns on key columns {list(asked)} but party {party!r} declared "
                          f"{list(key_columns)}. Declare the same key columns at the server and every party.")
    kinds = [column_kind(table, column, party) for column in key_columns]
    canonical_keys(table, key_columns, party)
    secret, public = psi.new_exchange_key()
    reply = Payload(arrays={keys.ALIGN_PUBLIC: psi.to_array(public)},
                    config={keys.ALIGN_KINDS: kinds, keys.ROWS: len(table)})
    return reply, {**_cleared(state), _X25519: psi.to_array(secret)}


def _open(payload: Payload, table: pd.DataFrame, key_columns: tuple[str, ...], party: str,
          state: State) -> tuple[Payload, State]:
    _require(state, _X25519, party, keys.ALIGN_OPEN)
    own = canonical_keys(table, key_columns, party)
    if payload.config[keys.ALIGN_ROLE] == MEMBER:
        leader = str(payload.config[keys.ALIGN_PEER])
        state = {**state, _public_key(leader): payload.arrays[keys.ALIGN_PUBLIC]}
        setup, server_key = psi.psi_setup(own, client_keys=int(payload.config[keys.ALIGN_CLIENT_KEYS]))
        return (Payload(arrays={keys.ALIGN_SETUP: _seal(setup, state, party, leader, "setup")}),
                {**state, _SERVER: psi.to_array(server_key)})
    members = [str(p) for p in payload.config[keys.ALIGN_PEERS]]  # type: ignore[union-attr]
    state = {**state, **{_public_key(p): payload.arrays[f"{keys.ALIGN_PUBLIC}.{p}"] for p in members}}
    group = psi.group_secret(table_digest(table), int(payload.config[keys.RUN + ".seed"]))
    sealed = {f"{keys.ALIGN_SEALED}.{p}": _seal(group, state, party, p, "group") for p in members}
    request, state = _padded_request(own, np.arange(len(own)), state)
    return (Payload(arrays={keys.ALIGN_REQUEST: _seal(request, state, party, members[0], "request"), **sealed}),
            {**state, SHARED: psi.to_array(group)})


def _answer(payload: Payload, table: pd.DataFrame, key_columns: tuple[str, ...], party: str,
            state: State) -> tuple[Payload, State]:
    _require(state, _SERVER, party, keys.ALIGN_ANSWER)
    leader = str(payload.config[keys.ALIGN_PEER])
    request = _unseal(payload.arrays[keys.ALIGN_REQUEST], state, leader, party, "request")
    response = psi.psi_response(psi.to_bytes(state[_SERVER]), request)
    return Payload(arrays={keys.ALIGN_RESPONSE: _seal(response, state, party, leader, "response")}), state


def _narrow(payload: Payload, table: pd.DataFrame, key_columns: tuple[str, ...], party: str,
            state: State) -> tuple[Payload, State]:
    """Keep the leader's keys the member holds too; then the next padded request, or the tags."""
    _require(state, _CLIENT, party, keys.ALIGN_NARROW)
    member = str(payload.config[keys.ALIGN_PEER])
    positions = psi.psi_intersection(psi.to_bytes(state[_CLIENT]),
                                     _unseal(payload.arrays[keys.ALIGN_SETUP], state, member, party, "setup"),
                                     _unseal(payload.arrays[keys.ALIGN_RESPONSE], state, member, party, "response"))
    rows = state[_REQUEST_ROWS][positions]
    prefix = np.sort(rows[rows >= 0])
    shared_with = [party, *payload.config[keys.ALIGN_PEERS]]  # type: ignore[misc]
    if len(prefix) == 0:
        raise PartyError(f"No key in column(s) {list(key_columns)} is held by all of parties {shared_with} (the leader "
                         f"{party!r} and, last, {member!r}): the intersection is empty. Check "
                         "that every party's key columns hold the same kind of id (same format, same source).")
    own = canonical_keys(table, key_columns, party)
    following = str(payload.config[keys.ALIGN_NEXT])
    if following:
        request, state = _padded_request(own, prefix, state)
        return Payload(arrays={keys.ALIGN_REQUEST: _seal(request, state, party, following, "request")}), state
    _check_size(len(prefix), int(payload.config[keys.ALIGN_MIN_ROWS]), key_columns, shared_with)
    tag_array = psi.tags(psi.derived_secret(psi.to_bytes(state[SHARED]), "order"), [own[i] for i in prefix])
    order = np.argsort(tag_array.view(f"S{psi.KEY_BYTES}").ravel(), kind="stable")
    return Payload(arrays={keys.ALIGN_TAGS: tag_array[order]}), _finished(state, prefix[order], table, key_columns)


def _receive_order(payload: Payload, table: pd.DataFrame, key_columns: tuple[str, ...], party: str,
                   state: State) -> tuple[Payload, State]:
    """Tag this party's own keys as the leader did; the received tags, in order, name its rows of I."""
    _require(state, _X25519, party, keys.ALIGN_ORDER)
    group = _unseal(payload.arrays[keys.ALIGN_SEALED], state, str(payload.config[keys.ALIGN_PEER]), party, "group")
    own = canonical_keys(table, key_columns, party)
    mine = psi.tags(psi.derived_secret(group, "order"), own)
    row_of = {mine[i].tobytes(): i for i in range(len(own))}
    received = payload.arrays[keys.ALIGN_TAGS]
    rows = np.array([row_of.get(received[i].tobytes(), -1) for i in range(len(received))], dtype=np.int64)
    if (rows < 0).any():
        raise FederationError(
            f"Party {party!r} holds no key for {int((rows < 0).sum())} of the {len(rows)} shared keys the leader sent "
            f"(column(s) {list(key_columns)}): a false positive of the PSI or a corrupted relay. Rerun the alignment.")
    state = {**state, SHARED: psi.to_array(group)}
    return Payload(config={keys.ALIGN_SIZE: len(rows)}), _finished(state, rows, table, key_columns)


def _public_key(party: str) -> str:
    return f"{keys.ALIGN_PUBLIC}.{party}"


def _seal(message: bytes | np.ndarray, state: State, sender: str, receiver: str, what: str) -> np.ndarray:
    """``message`` for ``receiver`` alone, under the X25519 key pinned when the alignment opened."""
    _require(state, _public_key(receiver), sender, f"sealing the {what}")
    blob = message if isinstance(message, bytes) else psi.to_bytes(message)
    return psi.to_array(psi.seal(blob, private=psi.to_bytes(state[_X25519]),
                                 their_public=psi.to_bytes(state[_public_key(receiver)]),
                                 label=f"{sender}|{receiver}|{what}"))


def _unseal(sealed: np.ndarray, state: State, sender: str, receiver: str, what: str) -> bytes:
    from cryptography.exceptions import InvalidTag

    _require(state, _public_key(sender), receiver, f"opening the {what}")
    try:
        return psi.unseal(psi.to_bytes(sealed), private=psi.to_bytes(state[_X25519]),
                          their_public=psi.to_bytes(state[_public_key(sender)]), label=f"{sender}|{receiver}|{what}")
    except InvalidTag as error:
        raise FederationError(f"Party {receiver!r} could not open the {what} sent to it as from {sender!r}: it was "
                              "altered, forged or sealed for another party. Rerun the alignment; if it repeats, the "
                              "relay is tampering.") from error


def _padded_request(own: list[str], rows: np.ndarray, state: State) -> tuple[np.ndarray, State]:
    """The leader's PSI request over ``rows``, padded to its row count with fillers and shuffled."""
    fillers = len(own) - len(rows)
    request_rows = np.concatenate([rows.astype(np.int64), np.full(fillers, -1, dtype=np.int64)])
    request_rows = request_rows[psi.secret_permutation(len(request_rows))]
    fill = iter(psi.dummy_keys(fillers))
    request, client_key = psi.psi_request([own[r] if r >= 0 else next(fill) for r in request_rows])
    return psi.to_array(request), {**state, _CLIENT: psi.to_array(client_key), _REQUEST_ROWS: request_rows}


def _check_size(size: int, min_rows: int, key_columns: tuple[str, ...], parties: list[str]) -> None:
    if size < min_rows:
        raise PartyError(f"Only {size} keys in column(s) {list(key_columns)} are held by all of parties {parties}; "
                         f"the run needs at least {min_rows} (min_rows). Add parties' rows, or lower min_rows.")


def _finished(state: State, rows: np.ndarray, table: pd.DataFrame, key_columns: tuple[str, ...]) -> State:
    """Keep the agreed rows and a derived shared secret; drop every key and scalar of the protocol."""
    shared = psi.derived_secret(psi.to_bytes(state[SHARED]), "vertical")
    return {**_cleared(state), ROWS: rows.astype(np.int64), FINGERPRINT: _fingerprint(table, key_columns),
            SHARED: psi.to_array(shared)}


def _cleared(state: State) -> State:
    """Without any alignment entry: every secret of the protocol, and any earlier result."""
    return {k: v for k, v in state.items() if not k.startswith("align.")}


def _require(state: State, key: str, party: str, message_type: str) -> None:
    if key not in state:
        raise FederationError(f"Party {party!r} got {message_type} out of order (no {key} kept from an earlier "
                              "alignment message). Restart the alignment from align_check.")


# ---------------------------------------------------------------- after the protocol


def aligned_rows(table: pd.DataFrame, state: State, key_columns: tuple[str, ...]) -> pd.DataFrame:
    """This party's rows of the intersection in the agreed order, key columns dropped, index reset."""
    if ROWS not in state:
        raise NotFittedError("This party has no aligned rows yet: run align_parties (the server) first.")
    if not np.array_equal(state[FINGERPRINT], _fingerprint(table, tuple(key_columns))):
        raise PartyError("The table differs from the one the alignment ran on (its key columns changed); "
                         "align again with this table.")
    return table.iloc[state[ROWS]].drop(columns=list(key_columns)).reset_index(drop=True)


def shared_secret(state: State) -> bytes:
    """A secret every aligned party holds and the server does not (e.g. to shuffle rows alike each epoch)."""
    if SHARED not in state or ROWS not in state:
        raise NotFittedError("This party has no shared secret yet: run align_parties (the server) first.")
    return psi.to_bytes(state[SHARED])


def table_digest(table: pd.DataFrame) -> bytes:
    """A digest of every cell of the table, independent of row order (seeds the group secret)."""
    hashed = np.sort(pd.util.hash_pandas_object(table, index=False).to_numpy())
    columns = json.dumps([str(c) for c in table.columns]).encode()
    return hashlib.sha256(columns + hashed.tobytes()).digest()


def _fingerprint(table: pd.DataFrame, key_columns: tuple[str, ...]) -> np.ndarray:
    hashed = pd.util.hash_pandas_object(table[list(key_columns)], index=False).to_numpy()
    return psi.to_array(hashlib.sha256(hashed.tobytes()).digest())


# ---------------------------------------------------------------- keys


def column_kind(table: pd.DataFrame, column: str, party: str) -> str:
    """The key column's type class, after refusing a missing column, missing values or mixed types."""
    if column not in table.columns:
        raise SchemaError(f"Key column {column!r} is missing at party {party!r} (it has columns "
                          f"{private(list(map(str, table.columns)))}). Add it, or declare the key column it has.")
    series = table[column]
    missing = int(series.isna().sum()) + int(series.map(lambda v: isinstance(v, str) and not v.strip()).sum())
    if missing:
        raise PartyError(f"Key column {column!r} of party {party!r} has missing (or blank) values in {private(missing)} "
                         "rows; a row without a key cannot be aligned. Drop or fill those rows.")
    return _kind(series, column, party)


def _kind(series: pd.Series, column: str, party: str) -> str:
    if isinstance(series.dtype, pd.CategoricalDtype):
        return _kind(series.astype(series.cat.categories.dtype), column, party)
    if pd.api.types.is_bool_dtype(series.dtype):
        raise SchemaError(f"Key column {column!r} of party {party!r} holds true/false values, which cannot tell "
                          "people apart. Declare the column that identifies them.")
    if pd.api.types.is_numeric_dtype(series.dtype):
        return "number"
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return "datetime with time zone"
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return "datetime"
    types = {type(v) for v in series}
    if all(issubclass(t, str) for t in types):
        return "text"
    if all(issubclass(t, (int, float, np.integer, np.floating)) and not issubclass(t, (bool, np.bool_)) for t in types):
        return "number"
    raise SchemaError(f"Key column {column!r} of party {party!r} mixes types "
                      f"({', '.join(sorted(t.__name__ for t in types))}); a key needs one. Convert it to text or numbers.")


def canonical_keys(table: pd.DataFrame, key_columns: tuple[str, ...], party: str) -> list[str]:
    """One canonical text per row (module docstring); refuses duplicates within the party."""
    for column in key_columns:
        column_kind(table, column, party)
    texts = [_canonical(table[column]) for column in key_columns]
    keys_ = texts[0] if len(texts) == 1 else [
        json.dumps(list(parts), ensure_ascii=False, separators=(",", ":")) for parts in zip(*texts)]
    duplicated = len(keys_) - len(set(keys_))
    if duplicated:
        raise PartyError(f"Key column(s) {list(key_columns)} of party {party!r} repeat {private(duplicated)} keys; each "
                         "person must appear once per party. Deduplicate those rows (or add a column to the key).")
    return keys_


def _canonical(series: pd.Series) -> list[str]:
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(series.cat.categories.dtype)
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return [t.isoformat() for t in series.dt.tz_convert("UTC")]
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return [t.isoformat() for t in series]
    if pd.api.types.is_integer_dtype(series.dtype):
        return [str(v) for v in series.tolist()]
    if pd.api.types.is_numeric_dtype(series.dtype) or not all(isinstance(v, str) for v in series):
        return [_number_text(v) for v in series.tolist()]
    return [unicodedata.normalize("NFC", v) for v in series.tolist()]


def _number_text(value: object) -> str:
    """``12`` and ``12.0`` → ``"12"``; other floats by their shortest round-trip repr."""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    number = float(value)  # type: ignore[arg-type]
    if number.is_integer():
        return str(int(number))
    return repr(number)


# ---------------------------------------------------------------- in-process reference


Tap = Callable[[str, str, str, Payload], None]


class LocalAlignment:
    """Every party's alignment side in this process, over in-memory tables (tests and benchmarks).

    ``tap(direction, party, message_type, payload)`` sees every message: direction ``"sent"`` (server →
    party) or ``"reply"`` (party → server), errors included, as they would travel.
    """

    def __init__(self, tables: Mapping[str, pd.DataFrame], key_columns: tuple[str, ...], *, tap: Tap | None = None,
                 declared: Mapping[str, tuple[str, ...]] | None = None) -> None:
        """``declared`` overrides the key columns a party declares (to test a disagreement)."""
        self.tables = dict(tables)
        self.key_columns = {p: tuple((declared or {}).get(p, key_columns)) for p in self.tables}
        self.states: dict[str, State] = {p: {} for p in self.tables}
        self.timings: dict[str, float] = {}
        """Seconds per message type, summed over parties (they run one after another here)."""
        self.critical_path_s = 0.0
        """Seconds had the parties of each exchange worked at once, as on their own machines."""
        self._tap = tap

    @property
    def parties(self) -> dict[str, int]:
        return {p: len(t) for p, t in self.tables.items()}

    def exchange(self, message_type: str, payloads: Mapping[str, Payload]) -> dict[str, Payload]:
        replies: dict[str, Payload] = {}
        slowest = 0.0
        for name, payload in payloads.items():
            if self._tap:
                self._tap("sent", name, message_type, payload)
            started = time.perf_counter()
            try:
                reply, self.states[name] = handle_alignment(message_type, payload, self.tables[name],
                                                            self.key_columns[name], name, self.states[name])
            except Exception as error:  # noqa: BLE001 - as a party worker does: a redacted reply
                reply = error_reply(name, message_type, error)
            took = time.perf_counter() - started
            self.timings[message_type] = self.timings.get(message_type, 0.0) + took
            slowest = max(slowest, took)
            if self._tap:
                self._tap("reply", name, message_type, reply)
            reply.raise_if_error(name, message_type)
            replies[name] = reply
        self.critical_path_s += slowest
        return replies

    def aligned(self, party: str) -> pd.DataFrame:
        return aligned_rows(self.tables[party], self.states[party], self.key_columns[party])
