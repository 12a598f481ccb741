"""What travels in one message, independent of the transport that carries it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Union

import numpy as np

from fedtab.errors import ConfigError, FedtabError, FederationError, NotFittedError, PartyError, PrivacyBudgetError, SchemaError
from fedtab.federation import keys

ConfigValue = Union[int, float, str, bool, list[int], list[float], list[str], list[bool]]

_ERRORS: dict[str, type[FedtabError]] = {
    cls.__name__: cls
    for cls in (FedtabError, ConfigError, SchemaError, PartyError, PrivacyBudgetError, FederationError, NotFittedError)
}


@dataclass(frozen=True)
class Payload:
    """Arrays (statistics or weights), a flat config, and scalar metrics."""

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    config: dict[str, ConfigValue] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_error(cls, error: FedtabError, *, fault: bool = False) -> Payload:
        """The error as it may travel: its kind and its message with every private fragment withheld.

        ``fault`` marks a crash (an exception fedtab did not raise on purpose): the run may go on
        without the party. Any other error is a refusal (budget, policy, schema) and stops the run.
        """
        marker = {keys.ERROR_FAULT: True} if fault else {}
        return cls(config={keys.ERROR_KIND: type(error).__name__, keys.ERROR_MESSAGE: error.wire_message, **marker})

    @property
    def fault(self) -> str | None:
        """The crash's wire message when this reply reports a fault, else None."""
        if not self.config.get(keys.ERROR_FAULT):
            return None
        return str(self.config.get(keys.ERROR_MESSAGE, "crashed"))

    def raise_if_error(self, party: str, message_type: str) -> None:
        """Re-raise a party's FedtabError on the server with its class, prefixed by where it happened."""
        kind = self.config.get(keys.ERROR_KIND)
        if kind is None:
            return
        error_class = _ERRORS.get(str(kind), FederationError)
        raise error_class(f"Party '{party}' failed during {message_type}: {self.config.get(keys.ERROR_MESSAGE)}")

    @property
    def num_bytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values())


class Replies(dict[str, Payload]):
    """One exchange's outcome: the replies of the parties that answered in time, by party name, and
    beside them what became of the others (``failures``: party -> reason) and the serialized bytes
    each message took on the wire (``sent``, ``received``: party -> bytes).

    A plain ``dict`` of replies is still a valid answer (a transport that records nothing):
    ``failures_of`` reads both.
    """

    def __init__(self, replies: Mapping[str, Payload] | None = None, *, failures: Mapping[str, str] | None = None,
                 sent: Mapping[str, int] | None = None, received: Mapping[str, int] | None = None) -> None:
        super().__init__(replies or {})
        self.failures: dict[str, str] = dict(failures or {})
        self.sent: dict[str, int] = dict(sent or {})
        self.received: dict[str, int] = dict(received or {})


def failures_of(replies: Mapping[str, Payload], asked: Mapping[str, object] | list[str]) -> dict[str, str]:
    """Every party asked that did not answer, with the transport's reason or 'no reply'."""
    recorded = getattr(replies, "failures", {})
    return {p: recorded.get(p, "no reply") for p in sorted(asked) if p not in replies}


def require_every(replies: Mapping[str, Payload], asked: Mapping[str, object] | list[str], what: str, why: str) -> None:
    """Stages that need every party (hello, schema, plan check, encoder statistics) stop on any failure, naming it."""
    failed = failures_of(replies, asked)
    if failed:
        named = "; ".join(f"'{p}': {reason}" for p, reason in failed.items())
        raise FederationError(f"Parties {sorted(failed)} did not reply during {what} ({named}); {why} "
                              "Check that they are running (see each party's log), then rerun.")
