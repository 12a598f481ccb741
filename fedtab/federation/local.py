"""An in-process transport: every party's worker runs in this process, one after another.

It is the reference the Flower engines must agree with, and it keeps unit tests free of Ray.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from fedtab.federation import keys
from fedtab.federation.party import PartyWorker, StagedParty, Weights
from fedtab.federation.payload import Payload
from fedtab.threads import single_torch_thread

Tap = Callable[[str, str, Payload], None]


class LocalTransport:
    def __init__(self, parties: Sequence[StagedParty], *, tap: Tap | None = None, tap_sent: Tap | None = None) -> None:
        """``tap`` sees every reply a party sends, ``tap_sent`` every message the server sends it."""
        self._workers = {p.name: PartyWorker(p) for p in parties}
        self._state: dict[str, Weights] = {p.name: {} for p in parties}
        self._tap = tap
        self._tap_sent = tap_sent
        hello = self.exchange(keys.HELLO, {name: Payload() for name in self._workers})
        self._rows = {name: int(reply.config[keys.ROWS]) for name, reply in hello.items()}

    @property
    def parties(self) -> dict[str, int]:
        return dict(self._rows)

    def exchange(self, message_type: str, payloads: Mapping[str, Payload]) -> dict[str, Payload]:
        replies: dict[str, Payload] = {}
        for name, payload in payloads.items():
            if self._tap_sent:
                self._tap_sent(name, message_type, payload)
            with single_torch_thread():
                reply, self._state[name] = self._workers[name].handle(message_type, payload, self._state[name])
            if self._tap:
                self._tap(name, message_type, reply)
            reply.raise_if_error(name, message_type)
            replies[name] = reply
        return replies
