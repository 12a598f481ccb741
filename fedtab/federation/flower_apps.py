"""Flower's ServerApp and ClientApp around the transport-free coordinator and party worker."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import torch
from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from fedtab.errors import FederationError, FedtabError
from fedtab.federation import keys
from fedtab.federation.local import Tap
from fedtab.federation.party import PartyWorker, StagedParty
from fedtab.federation.payload import Payload
from fedtab.federation.records import from_record, from_state_record, to_record, to_state_record

NODE_WAIT_S = 120.0


class FlowerTransport:
    """Sends one message per party over a Flower grid and maps node ids to party names."""

    def __init__(self, grid: Grid, *, expected_parties: int, timeout: float, tap: Tap | None = None) -> None:
        self._grid = grid
        self._timeout = timeout
        self._tap = tap
        if hasattr(grid, "pull_interval"):
            grid.pull_interval = 0.02
        nodes = _wait_for_nodes(grid, expected_parties)
        replies = self._send({node: Payload() for node in nodes}, keys.HELLO, {node: str(node) for node in nodes})
        self._node_of = {str(r.config[keys.PARTY]): node for node, r in replies.items()}
        self._rows = {str(r.config[keys.PARTY]): int(r.config[keys.ROWS]) for r in replies.values()}
        if len(self._node_of) != len(nodes):
            raise FederationError("Two parties reported the same name; give every party a unique name.")

    @property
    def parties(self) -> dict[str, int]:
        return dict(self._rows)

    def exchange(self, message_type: str, payloads: Mapping[str, Payload]) -> dict[str, Payload]:
        by_node = {self._node_of[name]: payload for name, payload in payloads.items()}
        names = {node: name for name, node in self._node_of.items()}
        replies = self._send(by_node, message_type, names)
        return {names[node]: reply for node, reply in replies.items()}

    def _send(self, payloads: Mapping[int, Payload], message_type: str, names: Mapping[int, str]) -> dict[int, Payload]:
        messages = [Message(to_record(p), dst_node_id=node, message_type=message_type) for node, p in payloads.items()]
        out: dict[int, Payload] = {}
        for reply in self._grid.send_and_receive(messages, timeout=self._timeout):
            node = reply.metadata.src_node_id
            if reply.has_error():
                raise FederationError(
                    f"Party '{names.get(node, node)}' crashed during {message_type}: {_last_line(reply.error.reason)}. "
                    "See that party's log; fix its data or environment and rerun."
                )
            payload = from_record(reply.content)
            name = str(payload.config.get(keys.PARTY, node)) if message_type == keys.HELLO else names[node]
            if self._tap:
                self._tap(name, message_type, payload)
            payload.raise_if_error(name, message_type)
            out[node] = payload
        return out


def _wait_for_nodes(grid: Grid, expected: int) -> list[int]:
    deadline = time.monotonic() + NODE_WAIT_S
    while time.monotonic() < deadline:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= expected:
            return nodes
        time.sleep(0.05)
    raise FederationError(
        f"Only {len(list(grid.get_node_ids()))} of {expected} parties connected within {NODE_WAIT_S:.0f} s. "
        "Start every party's SuperNode (or check the simulation's resources) and rerun."
    )


def _last_line(reason: str) -> str:
    lines = [line.strip() for line in reason.replace("\\n", "\n").splitlines() if line.strip()]
    return lines[-1][:500] if lines else "no reason given"


def build_client_app(resolve_party: Callable[[Context], StagedParty]) -> ClientApp:
    """A ClientApp whose handlers delegate to ``PartyWorker``; optimizer state lives in ``context.state``."""
    app = ClientApp()

    def handle(message: Message, context: Context) -> Message:
        torch.set_num_threads(1)
        try:
            worker = PartyWorker(resolve_party(context))
        except FedtabError as error:  # e.g. a node-config the party's policy refuses: the server sees why
            return Message(to_record(Payload.from_error(error)), reply_to=message)
        state = from_state_record(context.state.array_records.get(keys.OPTIMIZER_STATE))
        reply, state = worker.handle(message.metadata.message_type, from_record(message.content), state)
        if state:
            context.state.array_records[keys.OPTIMIZER_STATE] = to_state_record(state)
        return Message(to_record(reply), reply_to=message)

    app.query("hello")(handle)
    app.query("schema")(handle)
    app.query("stats")(handle)
    app.query("plan")(handle)
    app.train("model")(handle)
    app.query("evaluate")(handle)
    return app


def build_server_app(main: Callable[[Grid, Context], None]) -> ServerApp:
    app = ServerApp()
    app.main()(main)
    return app
