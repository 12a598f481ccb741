"""The schema round: the server's first message after hello. Each party infers its own schema and
releases only what reconciliation needs (``fedtab.connectors.release``); the server merges the
releases and applies the public domain. The simulation and deployment engines run it alike, so no
schema file is shared by hand and no party's rows are read anywhere but on that party.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fedtab.config import FedtabConfig
from fedtab.connectors import check_party, load_party
from fedtab.connectors.public_domain import declare_public
from fedtab.connectors.reconcile import reconcile_released
from fedtab.connectors.release import ReleasedSchema, release_schema
from fedtab.federation import keys
from fedtab.federation.payload import Payload, require_every
from fedtab.schema import PartyTable, TableSchema

MIN_PARTY_ROWS = 10


@dataclass(frozen=True)
class SchemaDeclaration:
    """What the run declares about the columns (public, sent to every party): kinds, or a whole schema."""

    overrides: Mapping[str, str] = field(default_factory=dict)
    metadata: TableSchema | None = None

    def to_json(self) -> str:
        metadata = None if self.metadata is None else self.metadata.to_dict()
        return json.dumps({"overrides": {k: str(getattr(v, "value", v)) for k, v in self.overrides.items()}, "metadata": metadata})

    @classmethod
    def from_json(cls, text: str) -> SchemaDeclaration:
        data: dict[str, Any] = json.loads(text)
        metadata = None if data.get("metadata") is None else TableSchema.from_dict(data["metadata"])
        return cls(dict(data.get("overrides") or {}), metadata)


def schema_round(transport: Any, *, config: FedtabConfig, declaration: SchemaDeclaration | None = None) -> TableSchema:
    """Ask every party for its released schema and merge them into the run's schema."""
    names = sorted(transport.parties)
    payload = Payload(config={keys.DECLARED: (declaration or SchemaDeclaration()).to_json(), keys.PRIVATE_RUN: config.private})
    replies = transport.exchange(keys.SCHEMA_ROUND, {p: payload for p in names})
    require_every(replies, names, "the schema round", "every party's schema is needed.")
    released = [ReleasedSchema.from_dict(json.loads(str(replies[p].config[keys.RELEASED_SCHEMA]))) for p in names]
    return merged_schema(released, config)


def merged_schema(released: list[ReleasedSchema], config: FedtabConfig) -> TableSchema:
    """The run's schema from the parties' releases: reconciled, then the public domain declared on it."""
    return declare_public(reconcile_released(released), config.public_domain)


def released_party_schema(table: PartyTable, *, private: bool, declaration: SchemaDeclaration) -> ReleasedSchema:
    """A party's side of the round, on a table it has read: refuse if too small, then release."""
    check_party(table, min_rows=MIN_PARTY_ROWS)
    return release_schema(table, private=private, declared=declaration.metadata)


def answer_schema_round(name: str, path: str, payload: Payload, *, require_dp: bool = False) -> Payload:
    """The party's reply: its own table read with the run's declaration, released as the run allows, and
    under DP's rules whenever the party's own policy requires DP, whatever the server's message says."""
    declaration = SchemaDeclaration.from_json(str(payload.config[keys.DECLARED]))
    table = load_party(name, path, overrides=declaration.overrides or None, metadata=declaration.metadata)
    private = require_dp or bool(payload.config[keys.PRIVATE_RUN])
    released = released_party_schema(table, private=private, declaration=declaration)
    return Payload(config={keys.RELEASED_SCHEMA: json.dumps(released.to_dict())})
