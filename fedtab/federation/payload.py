"""What travels in one message, independent of the transport that carries it."""

from __future__ import annotations

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
    def from_error(cls, error: FedtabError) -> Payload:
        """The error as it may travel: its kind and its message with every private fragment withheld."""
        return cls(config={keys.ERROR_KIND: type(error).__name__, keys.ERROR_MESSAGE: error.wire_message})

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
