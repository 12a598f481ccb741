"""An in-process transport: every party's worker runs in this process, one after another.

It is the reference the Flower engines must agree with, and it keeps unit tests free of Ray.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fedtab.errors import FedtabError
from fedtab.federation import keys
from fedtab.federation.party import PartyWorker, Weights
from fedtab.federation.payload import Payload, Replies, require_every
from fedtab.federation.records import wire_size
from fedtab.threads import single_torch_thread

Tap = Callable[[str, str, Payload], None]


class LocalTransport:
    def __init__(self, parties: Sequence[Any], *, tap: Tap | None = None, tap_sent: Tap | None = None,
                 worker: Callable[[Any], Any] = PartyWorker) -> None:
        """``tap`` sees every reply a party sends, ``tap_sent`` every message the server sends it; ``worker``
        builds each party's side (``PartyWorker``, or the vertical protocol's worker)."""
        self._workers = {p.name: worker(p) for p in parties}
        self._state: dict[str, Weights] = {p.name: {} for p in parties}
        self._tap = tap
        self._tap_sent = tap_sent
        hello = self.exchange(keys.HELLO, {name: Payload() for name in self._workers})
        require_every(hello, list(self._workers), "hello", "every party must say how many rows it holds.")
        self._rows = {name: int(reply.config[keys.ROWS]) for name, reply in hello.items()}

    @property
    def parties(self) -> dict[str, int]:
        return dict(self._rows)

    def exchange(self, message_type: str, payloads: Mapping[str, Payload]) -> Replies:
        """A party that crashed is recorded in ``failures``; one that refused raises its error here."""
        replies = Replies()
        for name, payload in payloads.items():
            if self._tap_sent:
                self._tap_sent(name, message_type, payload)
            replies.sent[name] = wire_size(payload)
            with single_torch_thread():
                reply, self._state[name] = self._workers[name].handle(message_type, payload, self._state[name])
            replies.received[name] = wire_size(reply)
            if self._tap:
                self._tap(name, message_type, reply)
            if reply.fault is not None:
                replies.failures[name] = reply.fault
                continue
            try:
                reply.raise_if_error(name, message_type)
            except FedtabError as refusal:  # the parties asked before it have released: the server accounts them
                refusal.replies = replies  # type: ignore[attr-defined]
                raise
            replies[name] = reply
        return replies
