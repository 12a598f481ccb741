"""A party's side of privacy: its policy checks every plan, its own accountant is the authority, and its
history is kept where only the party writes it, so a checkpoint can be neither replayed nor edited.

The accountant lives in the party's state for the run and, when the party has a state folder, on the
party's disk (one file per run id): written after every charge and before the reply leaves. On resume the server sends its
checkpointed mirror of the party's accountant; the party compares it with its own record of the run
(``run_id``): equal, or longer (the server charged a round the party never answered), it continues;
shorter (the checkpoint was already continued, or a round was in flight when the server stopped) or
different (edited), it refuses. A party without a state folder cannot check a checkpoint and, when it
has a budget, refuses to resume.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedtab.errors import ConfigError, PrivacyBudgetError
from fedtab.federation import keys
from fedtab.privacy.accountant import PartyAccountant
from fedtab.privacy.planning import PrivacyPlan
from fedtab.privacy.policy import PartyPolicy, checked_plan

Weights = dict[str, np.ndarray]
STATE_FILE_FORMAT = 1
RUN_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class PartyGuard:
    """Checks one party's releases against its policy and keeps its accountant (see the module docstring)."""

    party: str
    policy: PartyPolicy
    rows: int
    state_dir: str | None = None

    def state_path(self, run_id: str) -> Path | None:
        """The party's record of run ``run_id``: one file per run, so no run overwrites another's."""
        if self.state_dir is None:
            return None
        if not RUN_ID.fullmatch(run_id):
            raise PrivacyBudgetError(
                f"Party {self.party!r} refuses run id {run_id[:40]!r}: expected 32 hex digits as fedtab's server sends. "
                "Run the server and parties on one fedtab version."
            )
        return Path(self.state_dir) / f"fedtab-{run_id}.party-{self.party}.json"

    def accountant(self, state: Weights, plan: PrivacyPlan, run_id: str, restore_json: str | None = None) -> PartyAccountant:
        """The party's accountant for ``run_id``, after refusing a plan its policy does not allow."""
        settings = checked_plan(self.policy, plan, party=self.party, rows=self.rows)
        held = self._held(state, run_id)
        if restore_json is not None:
            held = self._restored(held, restore_json, run_id)
        if held is None:
            return PartyAccountant.with_settings(self.party, settings)
        if held.settings != settings:
            raise PrivacyBudgetError(
                f"Party {self.party!r} keeps its accountant for run {run_id} with {held.accountant} (eps_error "
                f"{held.eps_error:.3g}); the plan now asks for {settings.kind} (eps_error {settings.eps_error:.3g}). "
                "A run keeps one accountant: resume with the settings the run started with."
            )
        return held

    def keep(self, state: Weights, accountant: PartyAccountant, run_id: str) -> Weights:
        """Record the charged accountant: in the run's state and, before the reply leaves, on the party's disk."""
        report = accountant.state_dict()
        path = self.state_path(run_id)
        if path is not None:
            _write_atomically(path, {"format": STATE_FILE_FORMAT, "party": self.party,
                                                      "run_id": run_id, "accountant": report})
        return {**state, keys.ACCOUNTANT_STATE: json_array(report), keys.DP_RUN_STATE: json_array(run_id)}

    def _held(self, state: Weights, run_id: str) -> PartyAccountant | None:
        """What the party itself holds for ``run_id``: this process's state, else its state file."""
        if keys.ACCOUNTANT_STATE in state and _from_array(state.get(keys.DP_RUN_STATE)) == run_id:
            return PartyAccountant.from_state_dict(_from_array(state[keys.ACCOUNTANT_STATE]))
        path = self.state_path(run_id)
        if path is None or not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if record["format"] != STATE_FILE_FORMAT or record["party"] != self.party or record["run_id"] != run_id:
                raise KeyError("format, party or run_id")
            return PartyAccountant.from_state_dict(record["accountant"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ConfigError(
                f"Party {self.party!r} cannot read its privacy state file '{path}' ({type(error).__name__}: "
                f"{error}). It is written only by this party; restore it from the party's backup, or start a fresh run."
            ) from error

    def _restored(self, held: PartyAccountant | None, restore_json: str, run_id: str) -> PartyAccountant:
        """The server's checkpointed mirror, accepted only if it counts at least everything the party spent."""
        mirror = PartyAccountant.from_state_dict(json.loads(restore_json))
        where = f"Party {self.party!r} refuses to resume run {run_id} from the checkpoint ({mirror.steps()} releases)"
        if mirror.party != self.party:
            raise PrivacyBudgetError(f"{where}: it holds the accountant of party {mirror.party!r}. "
                                     "Resume with the checkpoint this federation wrote.")
        if held is None:
            if self.state_dir is None and not self.policy.has_budget:
                return mirror  # a party without a budget or a record takes the server's word, as it always did
            raise PrivacyBudgetError(
                f"{where}: the party holds no record of this run"
                + (f" in '{self.state_path(run_id)}'" if self.state_dir else " (it keeps no state folder)")
                + ", so it cannot check that the checkpoint's history is complete and unedited. Give the party the "
                "state folder the run wrote to (FedtabConfig.party_state_dir, --party-state-dir, node-config state-dir), "
                "or start a fresh run."
            )
        if _extends(mirror, held):
            return mirror
        if _extends(held, mirror):
            raise PrivacyBudgetError(
                f"{where}: the party has already spent more in this run ({_steps(held)}) than the checkpoint holds "
                f"({_steps(mirror)}). The checkpoint was continued before, or a round was in flight when the server "
                "stopped; continuing would spend those releases again. Resume from the latest checkpoint of the run "
                "(written after the party's last round), or start a fresh run."
            )
        raise PrivacyBudgetError(
            f"{where}: its accountant history does not match the party's own record of the run (checkpoint: "
            f"{_steps(mirror)}; party: {_steps(held)}); the checkpoint was edited or belongs to another run. "
            "Resume from the checkpoint file the run wrote, unedited, or start a fresh run."
        )


def json_array(value: object) -> np.ndarray:
    """A JSON value as a byte array, the form a party's state keeps between messages."""
    return np.frombuffer(json.dumps(value).encode(), dtype=np.uint8).copy()


def _from_array(value: np.ndarray | None) -> object:
    return None if value is None else json.loads(value.tobytes().decode())


def _extends(longer: PartyAccountant, shorter: PartyAccountant) -> bool:
    """Whether ``longer``'s history is ``shorter``'s with releases added at the end (or the same)."""
    a, b = longer.history, shorter.history
    if len(b) > len(a) or (a and b and a[: len(b) - 1] != b[:-1]):
        return False
    if not b:
        return True
    last, same = b[-1], a[len(b) - 1]
    return (last.mechanism, last.noise_multiplier, last.sample_rate) == (same.mechanism, same.noise_multiplier, same.sample_rate) \
        and last.steps <= same.steps and last.threshold_delta <= same.threshold_delta * (1 + 1e-9)


def _steps(accountant: PartyAccountant) -> str:
    return ", ".join(f"{m} {accountant.steps(m)}" for m in accountant.mechanisms) or "nothing"


def _write_atomically(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(record, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
