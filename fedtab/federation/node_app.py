"""The ClientApp of the deployment engine (pyproject's ``clientapp``), light on purpose.

Flower starts a fresh ClientApp process for every message, so this module is imported once per
exchange: it imports only Flower, pandas and the party's light half (``parties``). The greeting,
the schema round and the vertical alignment (PSI) are answered there; every other message goes to
the full workers (``FULL_WORKERS``: models, torch, Opacus), imported only by the message that needs
them. A new message type joins ``DEPLOYMENT_MESSAGES`` and reaches the full workers unless
``parties.answers_lightly`` claims it. How a SuperNode names its party, table and privacy terms:
``fedtab.federation.apps``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flwr.app import Context, Message
from flwr.clientapp import ClientApp

from fedtab.errors import ConfigError, FedtabError
from fedtab.federation import keys
from fedtab.federation.alignment import ALIGN_MESSAGES
from fedtab.federation.parties import StagedParty, VerticalParty, Weights, answer, answers_lightly
from fedtab.federation.payload import Payload
from fedtab.federation.records import from_record, from_state_record, to_record, to_state_record
from fedtab.privacy.accountant import DEFAULT_ACCOUNTANT
from fedtab.privacy.policy import PartyPolicy

Answer = Callable[[Any, str, Payload, Weights], tuple[Payload, Weights]]
"""(party, message type, payload, state kept between messages) -> (reply, new state)."""

HORIZONTAL_MESSAGES = (keys.HELLO, keys.SCHEMA_ROUND, keys.STATS, keys.CONSENT, keys.TRAIN, keys.EVALUATE,
                       *keys.SECURE_MESSAGES)
VERTICAL_MESSAGES = (keys.HELLO, keys.V_DESCRIBE, keys.CONSENT, keys.V_ENCODE, keys.V_DECODE, keys.EVALUATE, *sorted(ALIGN_MESSAGES))
DEPLOYMENT_MESSAGES = tuple(dict.fromkeys((*HORIZONTAL_MESSAGES, *VERTICAL_MESSAGES)))
FULL_WORKERS = "fedtab.federation.vertical_flower"
"""The module whose ``full_answer`` serves what ``parties`` does not (``PartyWorker`` or ``VerticalPartyWorker``)."""


def client_app_answering(resolve_party: Callable[[Context], Any], answer: Answer, message_types: Sequence[str]) -> ClientApp:
    """A ClientApp whose handlers ask ``answer`` for ``message_types``; what the party keeps between messages
    (optimizers, alignment secrets) lives in ``context.state``. Both engines' ClientApps are built here."""
    app = ClientApp()

    def handle(message: Message, context: Context) -> Message:
        try:
            party = resolve_party(context)
        except FedtabError as error:  # e.g. a node-config the party's policy refuses: the server sees why
            return Message(to_record(Payload.from_error(error)), reply_to=message)
        state = from_state_record(context.state.array_records.get(keys.OPTIMIZER_STATE))
        reply, state = answer(party, message.metadata.message_type, from_record(message.content), state)
        if state:
            context.state.array_records[keys.OPTIMIZER_STATE] = to_state_record(state)
        return Message(to_record(reply), reply_to=message)

    for message_type in message_types:
        category, name = message_type.split(".", 1)
        getattr(app, category)(name)(handle)
    return app


def deployment_answer(party: StagedParty | VerticalParty, message_type: str, payload: Payload,
                      state: Weights) -> tuple[Payload, Weights]:
    """The light answer where ``parties`` has one, else the full worker's (its modules imported now)."""
    if answers_lightly(party, message_type):
        return answer(party, message_type, payload, state)
    return importlib.import_module(FULL_WORKERS).full_answer(party, message_type, payload, state)


def party_from_node(context: Context) -> StagedParty | VerticalParty:
    """The SuperNode's party from its --node-config, vertical when the run config says so (see ``apps``)."""
    node = context.node_config
    if "data-path" not in node:
        raise ConfigError("This SuperNode has no 'data-path' in its --node-config; start it with data-path='/path/to/table'.")
    name = str(node.get("party", f"node-{context.node_id}"))
    state_dir = str(node["state-dir"]) if node.get("state-dir") else None
    key_columns = vertical_keys(context.run_config)
    if key_columns is not None:  # a vertical run: the party keeps its decoder in decoder-dir (default: its state-dir)
        decoder_dir = str(node.get("decoder-dir") or state_dir or "") or None
        return VerticalParty(name, str(node["data-path"]), key_columns, policy=node_policy(node, name),
                             state_dir=state_dir, decoder_dir=decoder_dir)
    return StagedParty(name, str(node["data-path"]), policy=node_policy(node, name), state_dir=state_dir)


def node_policy(node: Mapping[str, object], party: str) -> PartyPolicy:
    """The SuperNode's own privacy terms from its --node-config (see ``apps``)."""
    def number(key: str) -> float | None:
        value = node.get(key)
        try:
            return None if value in (None, "") else float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ConfigError(f"SuperNode {party!r}: node-config {key}={value!r} is not a number; "
                              f"give e.g. {key}=1.0.") from None

    required = str(node.get("require-dp", "false")).strip().lower()
    if required not in ("true", "false", "1", "0"):
        raise ConfigError(f"SuperNode {party!r}: node-config require-dp={node.get('require-dp')!r}; give true or false.")
    try:
        return PartyPolicy(number("epsilon"), number("delta"), required in ("true", "1"),
                           str(node.get("accountant", DEFAULT_ACCOUNTANT)), number("eps-error"))
    except ConfigError as error:
        raise ConfigError(f"SuperNode {party!r} cannot start with its --node-config: {error}") from error


def vertical_keys(run: Mapping[str, object]) -> tuple[str, ...] | None:
    """The key columns of a vertical run (run config ``vertical=true key='a,b'``); None for a horizontal run."""
    if str(run.get("vertical", "false")).strip().lower() not in ("true", "1"):
        return None
    names = tuple(k.strip() for k in str(run.get("key", "")).split(",") if k.strip())
    if not names:
        raise ConfigError("The run config says vertical=true but names no key column; add key='person_id' (comma-separated "
                          "for several), or pass `fedtab deploy run --vertical --key person_id`.")
    return names


client_app = client_app_answering(party_from_node, deployment_answer, DEPLOYMENT_MESSAGES)
