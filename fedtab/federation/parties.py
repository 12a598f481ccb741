"""Who a party is and how it reads its own table: the light half of the party side.

The deployment engine starts a fresh ClientApp process for every message, so what a message imports
is paid on every exchange. The greeting, the schema round and the vertical alignment (PSI) need only
the party's table (pandas) and the PSI primitives; they are answered here (``answer``), without torch,
scikit-learn or Opacus. The full workers (``party.PartyWorker``, ``vertical_party.VerticalPartyWorker``)
answer the rest and reuse the dataclasses and table readers below, so both paths read one way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from fedtab.connectors import align, load_party
from fedtab.federation import keys
from fedtab.federation.alignment import ALIGN_MESSAGES, handle_alignment
from fedtab.federation.disclosure import error_reply
from fedtab.federation.payload import Payload
from fedtab.federation.schema_round import answer_schema_round
from fedtab.privacy.policy import PartyPolicy
from fedtab.rng import numpy_rng
from fedtab.schema import PartyTable, TableSchema

Weights = dict[str, np.ndarray]


@dataclass(frozen=True)
class StagedParty:
    """A party's name, where its table lies on its own machine, and the share of rows it holds out.

    Held-out rows never reach the encoders or the model; they are the party's own fresh rows for
    judging membership risk and utility afterwards. ``policy`` is the party's own privacy terms: the
    server's plan is checked against it before anything is released.
    """

    name: str
    path: str
    holdout_share: float = 0.0
    seed: int = 0
    policy: PartyPolicy = PartyPolicy()
    state_dir: str | None = None
    """Where the party keeps its privacy record of each run (``party_guard``); None: in memory only."""


@dataclass(frozen=True)
class VerticalParty:
    """A party of a vertical run: its table, its key columns, its privacy terms, and its own folders.

    ``decoder_dir`` is where the party keeps its trained decoder (on its own disk); the server never
    receives it, so the server that saw the real rows' latents cannot invert them.
    """

    name: str
    path: str
    key_columns: tuple[str, ...]
    policy: PartyPolicy = PartyPolicy()
    state_dir: str | None = None
    decoder_dir: str | None = None


def answers_lightly(party: StagedParty | VerticalParty, message_type: str) -> bool:
    """Whether ``answer`` serves this message for this party's protocol (else the full worker does)."""
    if message_type == keys.HELLO:
        return True
    return message_type in ALIGN_MESSAGES if isinstance(party, VerticalParty) else message_type == keys.SCHEMA_ROUND


def answer(party: StagedParty | VerticalParty, message_type: str, payload: Payload, state: Weights) -> tuple[Payload, Weights]:
    """Reply to a message ``answers_lightly`` accepts, as the full worker would (same code, same redaction)."""
    try:
        if message_type == keys.HELLO:
            return hello(party), state
        if isinstance(party, VerticalParty):
            return handle_alignment(message_type, payload, read_table(party.name, party.path).frame, party.key_columns,
                                    party.name, state)
        return answer_schema_round(party.name, party.path, payload, require_dp=party.policy.require_dp), state
    except Exception as error:  # noqa: BLE001 - failures leave redacted; the full text stays in the party's log
        return error_reply(party.name, message_type, error), state


def hello(party: StagedParty | VerticalParty) -> Payload:
    """The party's name and how many rows it trains on (a vertical party: all its rows, before alignment)."""
    if isinstance(party, VerticalParty):
        rows = len(read_table(party.name, party.path).frame)
    else:
        rows = len(training_and_holdout(party, None)[0])
    return Payload(config={keys.PARTY: party.name, keys.ROWS: rows})


def held_out_rows(rows: int, holdout_share: float) -> int:
    """How many of a party's ``rows`` it holds out for evaluation (the rest train)."""
    return int(round(holdout_share * rows))


@lru_cache(maxsize=16)
def read_table(name: str, path: str, kinds: tuple[tuple[str, str], ...] = ()) -> PartyTable:
    """The party's own table through the same connectors the SDK uses (CSV, Parquet, SQL URL), read
    with the run's column kinds once the schema round has settled them (a date column is parsed in
    this party's own format, which need not leave it)."""
    return load_party(name, path, overrides=dict(kinds) or None)


@lru_cache(maxsize=16)
def aligned_table(name: str, path: str, schema_json: str | None) -> PartyTable:
    if schema_json is None:
        return read_table(name, path)
    schema = TableSchema.from_dict(json.loads(schema_json))
    return align(read_table(name, path, tuple((c.name, c.kind.value) for c in schema)), schema)


@lru_cache(maxsize=16)
def training_and_holdout(party: StagedParty, schema_json: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The party's rows split once, by its own seeded draw, into training rows and held-out rows."""
    frame = aligned_table(party.name, party.path, schema_json).frame
    held = np.zeros(len(frame), dtype=bool)
    count = held_out_rows(len(frame), party.holdout_share)
    held[numpy_rng(party.seed, "holdout", party.name).choice(len(frame), size=count, replace=False)] = True
    return frame[~held].reset_index(drop=True), frame[held].reset_index(drop=True)
