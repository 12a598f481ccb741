"""Flower's ServerApp and ClientApp around the transport-free coordinator and party worker."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from fedtab.errors import FederationError, FedtabError
from fedtab.federation import keys
from fedtab.federation.local import Tap
from fedtab.federation.node_app import HORIZONTAL_MESSAGES, Answer, client_app_answering
from fedtab.federation.party import PartyWorker, Weights
from fedtab.federation.payload import Payload, Replies, require_every
from fedtab.federation.records import from_record, to_record, wire_size

NODE_WAIT_S = 120.0


class FlowerTransport:
    """Sends one message per party over a Flower grid and maps node ids to party names."""

    def __init__(self, grid: Grid, *, expected_parties: int | Sequence[str], timeout: float, tap: Tap | None = None) -> None:
        self._grid = grid
        self._timeout = timeout
        self._tap = tap
        if hasattr(grid, "pull_interval"):
            grid.pull_interval = 0.02
        self._expected = expected_parties if isinstance(expected_parties, int) else tuple(expected_parties)
        self._node_of: dict[str, int] = {}
        self._rows: dict[str, int] = {}
        self._admit()

    def _admit(self) -> None:
        """Greet nodes as they connect until every expected party has one; unknown, extra or duplicate claims are refused."""
        deadline = time.monotonic() + NODE_WAIT_S
        while not self._complete():
            online = set(self._grid.get_node_ids())
            if isinstance(self._expected, int) and len(online) > self._expected:
                raise FederationError(
                    f"{len(online)} SuperNodes connected but the run expects {self._expected} parties; refusing the extra "
                    "nodes. Stop the SuperNodes that are not parties of this run, or name the parties in the run config "
                    "(parties='bank-a,bank-b')."
                )
            if self._ready_to_greet(online):
                self.refresh(online)
                continue
            if time.monotonic() > deadline:
                raise FederationError(self._missing_message())
            time.sleep(0.05)

    def _complete(self) -> bool:
        if isinstance(self._expected, int):
            return len(self._node_of) >= self._expected
        return set(self._node_of) >= set(self._expected)

    def _ready_to_greet(self, online: set[int]) -> bool:
        new = online - set(self._node_of.values())
        return bool(new) and (not isinstance(self._expected, int) or len(online) >= self._expected)

    def refresh(self, online: set[int] | None = None) -> list[str]:
        """Greet nodes not yet known and map their parties; returns the parties that (re)joined.

        A SuperNode that restarts keeps its party name but may get a new node id (always without node
        authentication): its party is then recognised and moved to the new node.
        """
        online = set(self._grid.get_node_ids()) if online is None else online
        new = sorted(online - set(self._node_of.values()))
        if not new:
            return []
        replies = self._send({node: Payload() for node in new}, keys.HELLO, {node: f"SuperNode {node}" for node in new})
        require_every(Replies({str(n): r for n, r in replies.items()}, failures=replies.failures), [str(n) for n in new],
                      "hello", "every connected node must name its party.")
        claims = {node: (str(r.config[keys.PARTY]), int(r.config[keys.ROWS])) for node, r in replies.items()}
        problems = []
        for node, (name, rows) in claims.items():
            holder = self._node_of.get(name)
            if not isinstance(self._expected, int) and name not in self._expected:
                problems.append(f"a SuperNode claims party '{name}', which this run does not expect")
            elif holder is not None and holder != node and holder in online:
                problems.append(f"two SuperNodes claim party '{name}'")
            else:
                self._node_of[name], self._rows[name] = node, rows
        if problems:
            expected = f"parties {', '.join(self._expected)}" if not isinstance(self._expected, int) else f"{self._expected} parties"
            raise FederationError(
                f"Refused: {'; '.join(problems)}. This run expects {expected}, one SuperNode each. Fix each SuperNode's "
                "--node-config party='...' (or the run config's parties) and restart it."
            )
        return sorted(name for name, _ in claims.values())

    def _rejoin(self) -> None:
        """Mid-run, a restarted SuperNode of a known party (a new node id) takes its party's place again;
        a node claiming any other party is left unanswered, so no party joins a run it was not planned with."""
        online = set(self._grid.get_node_ids())
        new = sorted(online - set(self._node_of.values()))
        if not new:
            return
        replies = self._send({node: Payload() for node in new}, keys.HELLO, {node: f"SuperNode {node}" for node in new})
        for node, reply in replies.items():
            name = str(reply.config.get(keys.PARTY, ""))
            if name in self._node_of and self._node_of[name] not in online:
                self._node_of[name] = int(node)

    def _missing_message(self) -> str:
        if isinstance(self._expected, int):
            return (f"Only {len(self._node_of)} of {self._expected} parties connected within {NODE_WAIT_S:.0f} s. "
                    "Start every party's SuperNode (or check the simulation's resources) and rerun.")
        missing = [name for name in self._expected if name not in self._node_of]
        joined = ", ".join(sorted(self._node_of)) or "none"
        return (f"Parties {', '.join(missing)} did not connect within {NODE_WAIT_S:.0f} s (connected: {joined}). "
                "Start their SuperNodes (authenticated, with --node-config party='...') and rerun.")

    @property
    def parties(self) -> dict[str, int]:
        return dict(self._rows)

    def exchange(self, message_type: str, payloads: Mapping[str, Payload]) -> Replies:
        """Replies of the parties that answered within the round timeout; crashes, lost nodes and
        timeouts are recorded in ``failures``; a party's refusal (a FedtabError) raises here."""
        self._rejoin()
        by_node = {self._node_of[name]: payload for name, payload in payloads.items()}
        names = {node: name for name, node in self._node_of.items()}
        try:
            return _named(self._send(by_node, message_type, names), names)
        except FedtabError as refusal:
            if isinstance(getattr(refusal, "replies", None), Replies):
                refusal.replies = _named(refusal.replies, names)  # type: ignore[attr-defined]
            raise

    def _send(self, payloads: Mapping[int, Payload], message_type: str, names: Mapping[int, str]) -> Replies:
        """Keyed by node id (as text in ``failures``/``sent``/``received`` until ``exchange`` names the parties)."""
        records = {node: to_record(p) for node, p in payloads.items()}
        messages = {node: Message(record, dst_node_id=node, message_type=message_type) for node, record in records.items()}
        out = Replies(sent={str(node): wire_size(record) for node, record in records.items()})
        replies = list(self._grid.send_and_receive(list(messages.values()), timeout=self._timeout))
        node_of_message = {m.metadata.message_id: node for node, m in messages.items()}
        refusal: FedtabError | None = None
        refused: set[int] = set()
        for reply in replies:
            reply_to = reply.metadata.reply_to_message_id  # empty only where no SuperLink stamped the message
            node = node_of_message.get(reply_to, reply.metadata.src_node_id) if reply_to else reply.metadata.src_node_id
            if reply.has_error():  # the ClientApp raised, or the SuperLink lost the node
                out.failures[str(node)] = f"crashed or disconnected during {message_type}: {_last_line(reply.error.reason)}"
                continue
            out.received[str(node)] = wire_size(reply.content)
            payload = from_record(reply.content)
            name = str(payload.config.get(keys.PARTY, node)) if message_type == keys.HELLO else names[node]
            if self._tap:
                self._tap(name, message_type, payload)
            if payload.fault is not None:
                out.failures[str(node)] = payload.fault
                continue
            try:
                payload.raise_if_error(name, message_type)
            except FedtabError as error:  # raised once every reply is in, so the server can account the others
                refusal = refusal or error
                refused.add(node)
                continue
            out[node] = payload  # type: ignore[index]
        for node in payloads:
            if node not in out and node not in refused and str(node) not in out.failures:
                out.failures[str(node)] = f"no reply to {message_type} within {self._timeout:.0f} s (round_timeout)"
        if refusal is not None:
            refusal.replies = out  # type: ignore[attr-defined]
            raise refusal
        return out


def _named(replies: Replies, names: Mapping[int, str]) -> Replies:
    """Node-keyed replies (as ``_send`` returns them) keyed by party name."""
    return Replies({names[int(node)]: reply for node, reply in replies.items()},
                   failures={names[int(node)]: why for node, why in replies.failures.items()},
                   sent={names[int(node)]: size for node, size in replies.sent.items()},
                   received={names[int(node)]: size for node, size in replies.received.items()})


def _last_line(reason: str) -> str:
    lines = [line.strip() for line in reason.replace("\\n", "\n").splitlines() if line.strip()]
    return lines[-1][:500] if lines else "no reason given"


def worker_answer(worker: Callable[[Any], Any] = PartyWorker) -> Answer:
    """Answer through ``worker(party)``: the full party side, with one torch thread per party (FLOWER.md)."""
    def full_answer(party: Any, message_type: str, payload: Payload, state: Weights) -> tuple[Payload, Weights]:
        torch.set_num_threads(1)
        return worker(party).handle(message_type, payload, state)

    return full_answer


def build_client_app(resolve_party: Callable[[Context], Any], *, worker: Callable[[Any], Any] = PartyWorker,
                     message_types: Sequence[str] = HORIZONTAL_MESSAGES) -> ClientApp:
    """A ClientApp whose handlers delegate ``message_types`` to ``worker(party)`` (``PartyWorker``, or the vertical
    protocol's worker), for the simulation engine; the deployment engine's is ``node_app.client_app``."""
    return client_app_answering(resolve_party, worker_answer(worker), message_types)


def build_server_app(main: Callable[[Grid, Context], None]) -> ServerApp:
    app = ServerApp()
    app.main()(main)
    return app
