"""The deployment engine's ClientApp (``node_app``) answers the greeting, the schema round and the whole PSI
alignment without importing torch, scikit-learn or Opacus: Flower starts it afresh for every message, so
those imports would be paid on every exchange. Positive control: the first message the full worker
answers (a vertical describe) does pull torch into the same process.

Each check runs in a fresh interpreter (``sys.modules`` of the test process already holds torch). The real
ClientApp answers real messages built from the demo tables; only the network is left out.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from fedtab.demo import DEMO_KEY, vertical_split

HEAVY = ("torch", "sklearn", "opacus", "sdmetrics", "fedtab.models", "fedtab.transformers")

SCRIPT = """
import json, sys
from pathlib import Path
from flwr.app import Context, Message, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from fedtab.federation import keys
from fedtab.federation.alignment import align_parties
from fedtab.federation.node_app import client_app
from fedtab.federation.payload import Payload, Replies
from fedtab.federation.records import from_record, to_record

TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = 1, 0, 1  # as Flower's ServerApp process sets them
folder, heavy = Path(sys.argv[1]), sys.argv[2].split(",")
loaded = lambda: sorted(m for m in heavy if m in sys.modules)


class AppTransport:
    \"\"\"The server's side of an exchange, delivered to the real ClientApp of one SuperNode per party.\"\"\"

    def __init__(self, run_config):
        self.run_config, self.states = run_config, {}
        self.tables = {path.stem: str(path) for path in sorted(folder.glob("*.parquet"))}

    @property
    def parties(self):
        return {name: 0 for name in self.tables}

    def exchange(self, message_type, payloads):
        replies = Replies()
        for node, (name, payload) in enumerate(sorted(payloads.items()), start=1):
            context = Context(run_id=1, node_id=node, node_config={"data-path": self.tables[name], "party": name},
                              state=self.states.setdefault(name, RecordDict()), run_config=self.run_config)
            reply = from_record(client_app(Message(to_record(payload), dst_node_id=node, message_type=message_type),
                                           context).content)
            reply.raise_if_error(name, message_type)
            replies[name] = reply
        return replies


out = {"import": loaded()}
horizontal = AppTransport({})
out["hello"] = {p: int(r.config[keys.ROWS]) for p, r in horizontal.exchange(keys.HELLO, {p: Payload() for p in horizontal.parties}).items()}
vertical = AppTransport({"vertical": True, "key": "%s"})
out["aligned"] = align_parties(vertical, ("%s",), min_rows=5, seed=0)
out["after_psi"] = loaded()
described = vertical.exchange(keys.V_DESCRIBE, {p: Payload(config={keys.KEY_COLUMNS: ["%s"]}) for p in vertical.parties})
out["described"] = {p: list(r.config[keys.COLUMNS]) for p, r in described.items()}
out["after_describe"] = loaded()
print(json.dumps(out))
""" % (DEMO_KEY, DEMO_KEY, DEMO_KEY)


def test_psi_and_hello_through_the_client_app_import_no_torch(tmp_path: Path, demo_frames: dict[str, pd.DataFrame]) -> None:
    people = demo_frames["clinic_north"].head(60)
    tables = vertical_split(people, ["bank", "clinic", "shop"], share=0.8, seed=3)
    for name, frame in tables.items():
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), ",".join(HEAVY)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])

    shared = set.intersection(*(set(frame[DEMO_KEY]) for frame in tables.values()))
    assert out["hello"] == {name: len(frame) for name, frame in tables.items()}
    assert out["aligned"] == len(shared) and 5 <= len(shared) < 60
    assert out["import"] == [] and out["after_psi"] == []
    assert out["described"] == {name: [c for c in frame.columns if c != DEMO_KEY] for name, frame in tables.items()}
    assert "torch" in out["after_describe"]  # positive control: the full worker's message does import it


def test_rdp_orders_start_with_opacus_defaults() -> None:
    """The accountant lists Opacus's default RDP orders itself (so a policy check need not import Opacus)."""
    from opacus.accountants import RDPAccountant

    from fedtab.privacy.accountant import RDP_ORDERS

    assert list(RDP_ORDERS[: len(RDPAccountant.DEFAULT_ALPHAS)]) == RDPAccountant.DEFAULT_ALPHAS
    assert RDP_ORDERS[len(RDPAccountant.DEFAULT_ALPHAS)] > max(RDPAccountant.DEFAULT_ALPHAS)
