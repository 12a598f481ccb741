"""One error hierarchy: every message says what was expected, what came, where, and the fix."""

from __future__ import annotations

import re
from collections.abc import Iterable

_OPEN, _CLOSE = "\x00<", ">\x00"
_PRIVATE = re.compile(re.escape(_OPEN) + ".*?" + re.escape(_CLOSE), re.DOTALL)
WITHHELD = "[withheld: see this party's own log]"


def private(text: object) -> str:
    """Mark a fragment of an error message that comes from a party's rows (a value, a count, a name
    found in its database): the party's own user reads it, the wire never carries it."""
    return f"{_OPEN}{text}{_CLOSE}"


def reveal(text: str) -> str:
    """The message as the party's own user reads it: private fragments shown, marks removed."""
    return text.replace(_OPEN, "").replace(_CLOSE, "")


def redact(text: str) -> str:
    """The message as it may leave the party: every private fragment replaced by a pointer to its log."""
    return reveal(_PRIVATE.sub(WITHHELD, text))


class FedtabError(Exception):
    """Base of every error fedtab raises on purpose; the CLI maps ``exit_code`` to its exit status.

    ``str(error)`` is the full local message; ``error.wire_message`` is what a party may send.
    """

    exit_code: int = 1

    def __init__(self, message: str = "", *args: object) -> None:
        self.marked = message
        super().__init__(reveal(message), *args)

    @property
    def wire_message(self) -> str:
        return redact(getattr(self, "marked", str(self)))


class ConfigError(FedtabError):
    """A configuration value is out of range or inconsistent."""

    exit_code = 2


class SchemaError(FedtabError):
    """A table does not fit the schema; carries every problem found, each with its place."""

    exit_code = 3

    def __init__(self, message: str, problems: Iterable[str] = ()) -> None:
        marked = tuple(problems)
        self.problems: tuple[str, ...] = tuple(reveal(p) for p in marked)
        if marked:
            message = message + "\n" + "\n".join(f"  - {p}" for p in marked)
        super().__init__(message)


class PartyError(FedtabError):
    """A party's data cannot be read or used (missing file, malformed, empty, too small)."""

    exit_code = 4


class PrivacyBudgetError(FedtabError):
    """A run would spend more privacy budget than a party allows."""

    exit_code = 5


class FederationError(FedtabError):
    """A federation round failed: a party disconnected, replied with an error, or timed out."""

    exit_code = 6


class NotFittedError(FedtabError):
    """A synthesizer or encoder was used before ``fit``."""

    exit_code = 7
