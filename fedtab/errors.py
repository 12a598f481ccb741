"""One error hierarchy: every message says what was expected, what came, where, and the fix."""

from __future__ import annotations

from collections.abc import Iterable


class FedtabError(Exception):
    """Base of every error fedtab raises on purpose; the CLI maps ``exit_code`` to its exit status."""

    exit_code: int = 1


class ConfigError(FedtabError):
    """A configuration value is out of range or inconsistent."""

    exit_code = 2


class SchemaError(FedtabError):
    """A table does not fit the schema; carries every problem found, each with its place."""

    exit_code = 3

    def __init__(self, message: str, problems: Iterable[str] = ()) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        if self.problems:
            message = message + "\n" + "\n".join(f"  - {p}" for p in self.problems)
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
