"""What a round's record (one row of a run's history) holds: the server's bookkeeping and the model's metrics.

Kept apart from the coordinator so that the CLI and the progress display read a record without
loading the federation (torch and Flower take seconds to import).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

ROUND_FIELDS = ("round", "parties")
BYTES_SENT, BYTES_RECEIVED, FAILED, REJECTED = "bytes_sent", "bytes_received", "failed", "rejected"
BOOKKEEPING = (BYTES_SENT, BYTES_RECEIVED, FAILED + ".", REJECTED + ".")
"""Round-record keys that are the server's bookkeeping, not the model's metrics (``.<party>`` per party)."""
Progress = Callable[[str, int, int, Mapping[str, float]], None]
"""The run's progress callback: (stage, step, steps, the round's record)."""


def reported_metrics(record: Mapping[str, float]) -> dict[str, float]:
    """A round record's metrics as the model reported them (its losses, steps), without the round's bookkeeping."""
    return {k: v for k, v in record.items() if k not in ROUND_FIELDS and not k.startswith(BOOKKEEPING)}
