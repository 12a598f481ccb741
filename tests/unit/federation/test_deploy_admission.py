"""Node admission by party name: the real ClientApp answers over a grid that delivers messages in this process.

The grid stands in for Flower's network only (``get_node_ids`` and ``send_and_receive``); the hello
the parties answer and the admission logic are fedtab's own. The deployment test (tests/e2e) runs
the same refusals across real SuperNodes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from flwr.app import Context, Message, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from fedtab.errors import FederationError
from fedtab.federation import flower_apps, keys
from fedtab.federation.flower_apps import FlowerTransport, build_client_app
from fedtab.federation.party import StagedParty
from fedtab.federation.payload import Payload


class LoopbackGrid:
    """Flower's Grid surface, delivering each message to the node's ClientApp in this process."""

    def __init__(self, nodes: dict[int, StagedParty]) -> None:
        self.nodes = dict(nodes)
        self.delivered: list[tuple[int, str]] = []
        self._app = build_client_app(lambda context: self.nodes[context.node_id])

    def get_node_ids(self) -> list[int]:
        return list(self.nodes)

    def send_and_receive(self, messages: list[Message], timeout: float | None = None) -> list[Message]:
        replies = []
        for message in messages:
            node = message.metadata.dst_node_id
            self.delivered.append((node, message.metadata.message_type))
            context = Context(run_id=1, node_id=node, node_config={}, state=RecordDict(), run_config={})
            replies.append(self._app(message, context))
        return replies


@pytest.fixture(autouse=True)
def server_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """What Flower's ServerApp process sets before the app's main runs (messages carry the run id)."""
    monkeypatch.setattr(TaskIdentity, "_run_id", 1)
    monkeypatch.setattr(TaskIdentity, "_node_id", 0)
    monkeypatch.setattr(TaskIdentity, "_task_id", 1)


@pytest.fixture
def table(tmp_path: Path, demo_frames: dict[str, pd.DataFrame]) -> str:
    path = tmp_path / "rows.parquet"
    demo_frames["clinic_north"].head(40).to_parquet(path, index=False)
    return str(path)


def test_expected_parties_are_admitted_by_name(table: str) -> None:
    grid = LoopbackGrid({11: StagedParty("bank-a", table), 12: StagedParty("bank-b", table)})
    transport = FlowerTransport(grid, expected_parties=["bank-a", "bank-b"], timeout=5)
    assert transport.parties == {"bank-a": 40, "bank-b": 40}


def test_unknown_and_duplicate_claims_are_refused_by_party_name(table: str) -> None:
    grid = LoopbackGrid({11: StagedParty("bank-a", table), 12: StagedParty("bank-a", table), 13: StagedParty("mallory", table)})
    with pytest.raises(FederationError) as refused:
        FlowerTransport(grid, expected_parties=["bank-a", "bank-b"], timeout=5)
    message = str(refused.value)
    assert "two SuperNodes claim party 'bank-a'" in message
    assert "a SuperNode claims party 'mallory', which this run does not expect" in message
    assert "expects parties bank-a, bank-b" in message and "12" not in message and "13" not in message


def test_an_extra_node_is_refused_when_the_run_counts_parties(table: str) -> None:
    grid = LoopbackGrid({11: StagedParty("bank-a", table), 12: StagedParty("bank-b", table), 13: StagedParty("bank-c", table)})
    with pytest.raises(FederationError, match="3 SuperNodes connected but the run expects 2 parties"):
        FlowerTransport(grid, expected_parties=2, timeout=5)
    assert grid.delivered == []  # refused before anything is sent


def test_a_missing_party_is_named(table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flower_apps, "NODE_WAIT_S", 0.2)
    grid = LoopbackGrid({11: StagedParty("bank-a", table)})
    with pytest.raises(FederationError, match=r"Parties bank-b did not connect within 0 s \(connected: bank-a\)"):
        FlowerTransport(grid, expected_parties=["bank-a", "bank-b"], timeout=5)


def test_a_party_that_reconnects_under_a_new_node_id_is_recognised(table: str) -> None:
    grid = LoopbackGrid({11: StagedParty("bank-a", table), 12: StagedParty("bank-b", table)})
    transport = FlowerTransport(grid, expected_parties=["bank-a", "bank-b"], timeout=5)
    grid.nodes[21] = grid.nodes.pop(11)  # bank-a's SuperNode restarted and came back as node 21
    assert transport.refresh() == ["bank-a"]
    grid.delivered.clear()
    assert set(transport.exchange(keys.HELLO, {"bank-a": Payload(), "bank-b": Payload()})) == {"bank-a", "bank-b"}
    assert sorted(grid.delivered) == [(12, keys.HELLO), (21, keys.HELLO)]
