"""The server's checks on each training reply before it is aggregated: a broken or hostile update is
rejected for the round and named, and the round goes on with the others.

- the update must have the model's arrays and shapes (rebuilt from its compressed form, if any);
- every value must be finite (one NaN party would turn the whole global model into NaN);
- its length ‖w_party − w_global‖ must stay within ``norm_tolerance`` × the median party's length
  (a scaled update would otherwise dominate the mean; needs three or more parties to mean anything);
- the rows it claims to have trained on may not exceed the rows it declared when the run started,
  and may not change from one round to the next (FedAvg weighs parties by their rows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from fedtab.federation import keys
from fedtab.federation.compression import decompress_update
from fedtab.federation.payload import Payload

Weights = dict[str, np.ndarray]


@dataclass
class UpdateScreen:
    """Screens one round's replies; remembers each party's first row claim across rounds."""

    declared_rows: Mapping[str, int]
    norm_tolerance: float | None = 10.0
    enabled: bool = True
    update_bits: int = 32
    claims: dict[str, float] = field(default_factory=dict)

    def screen(self, global_weights: Weights, replies: Mapping[str, Payload], parties: list[str]) -> tuple[dict[str, Weights], dict[str, str]]:
        """The usable updates (weights rebuilt) and, per rejected party, why."""
        updates: dict[str, Weights] = {}
        rejected: dict[str, str] = {}
        for party in parties:
            try:
                update = decompress_update(global_weights, replies[party].arrays, self.update_bits)
            except (ValueError, TypeError) as error:
                rejected[party] = f"malformed update ({error})"
                continue
            problem = self._problem(party, global_weights, update, replies[party]) if self.enabled else None
            if problem is None:
                updates[party] = update
            else:
                rejected[party] = problem
        if self.enabled:
            rejected.update(self._too_long(global_weights, updates))
        return {p: u for p, u in updates.items() if p not in rejected}, rejected

    def _problem(self, party: str, global_weights: Weights, update: Weights, reply: Payload) -> str | None:
        if set(update) != set(global_weights):
            return f"its arrays do not match the model's ({len(update)} arrays; the model has {len(global_weights)})"
        sizes = [k for k, v in global_weights.items() if np.size(update[k]) != np.size(v)]
        if sizes:
            return f"its arrays do not match the model's (sizes differ in {sizes[:3]})"
        bad = {k: int(np.size(v) - np.count_nonzero(np.isfinite(v))) for k, v in update.items() if _is_float(v)}
        bad = {k: n for k, n in bad.items() if n}
        if bad:
            return f"{sum(bad.values())} non-finite values (NaN or inf), e.g. in '{next(iter(bad))}'"
        return self.claim(party, reply)

    def claim(self, party: str, reply: Payload) -> str | None:
        """A row claim above the declared rows, or different from the party's first claim, is refused."""
        claimed = float(reply.metrics.get(keys.NUM_EXAMPLES, 0.0))
        declared = self.declared_rows.get(party, 0)
        if claimed > declared:
            return f"it claims {claimed:.0f} training rows; it declared {declared} when the run started"
        first = self.claims.setdefault(party, claimed)
        if claimed != first:
            return f"it claims {claimed:.0f} training rows; it claimed {first:.0f} in its first round"
        return None

    def _too_long(self, global_weights: Weights, updates: Mapping[str, Weights]) -> dict[str, str]:
        if self.norm_tolerance is None or len(updates) < 3:
            return {}
        norms = {p: update_norm(global_weights, u) for p, u in updates.items()}
        median = float(np.median(list(norms.values())))
        limit = self.norm_tolerance * median
        return {p: f"its update's length {n:.3g} exceeds {self.norm_tolerance:g} × the median party's ({median:.3g})"
                for p, n in norms.items() if median > 0 and n > limit}


def update_norm(global_weights: Mapping[str, np.ndarray], update: Mapping[str, np.ndarray]) -> float:
    """‖update − global‖ over the float arrays, in float64 (a huge update must not overflow to inf)."""
    total = 0.0
    for key, value in global_weights.items():
        if _is_float(value):
            total += float(np.sum((np.asarray(update[key], dtype=np.float64) - value.astype(np.float64)) ** 2))
    return float(np.sqrt(total))


def _is_float(array: np.ndarray) -> bool:
    return np.issubdtype(np.asarray(array).dtype, np.floating)
