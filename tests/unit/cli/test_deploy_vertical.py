"""Vertical runs on the deployment engine: the demo split by columns, the run config, and a SuperNode's party."""

from __future__ import annotations

import pandas as pd
import pytest
from flwr.app import Context, RecordDict

from fedtab.cli.deploy import vertical_run_config
from fedtab.errors import ConfigError
from fedtab.federation.node_app import party_from_node
from fedtab.federation.party import StagedParty
from fedtab.federation.vertical_flower import vertical_keys
from fedtab.federation.vertical_party import VerticalParty


def test_demo_data_vertical_deals_columns_out_with_a_key_and_a_share_of_people(cli, tmp_path) -> None:
    code, out = cli("deploy", "demo-data", str(tmp_path), "--parties", "bank,insurer,registry", "--rows", "400", "--vertical")
    assert code == 0, out
    tables = {p: pd.read_parquet(tmp_path / f"{p}.parquet") for p in ("bank", "insurer", "registry")}
    columns = [c for t in tables.values() for c in t.columns if c != "person_id"]
    assert len(columns) == len(set(columns)) == 15  # every demo column at exactly one party
    for table in tables.values():
        assert table["person_id"].is_unique and 300 < len(table) < 400  # its own ~90 % of the 400 people
    assert list(tables["bank"]["person_id"]) != sorted(tables["bank"]["person_id"])  # rows shuffled
    assert len(set.intersection(*[set(t["person_id"]) for t in tables.values()])) > 250


def test_the_run_config_makes_a_vertical_run_and_its_supernodes_vertical_parties(tmp_path) -> None:
    assert vertical_run_config(False, None, False) == []
    assert vertical_run_config(True, ["person_id"], True) == ["--run-config", "vertical=true key='person_id' evaluate=true"]
    with pytest.raises(ConfigError, match="add --vertical"):
        vertical_run_config(False, ["person_id"], False)
    with pytest.raises(ConfigError, match="needs --key"):
        vertical_run_config(True, None, False)
    assert vertical_keys({"vertical": True, "key": "person_id, branch"}) == ("person_id", "branch")
    assert vertical_keys({"vertical": False, "key": "person_id"}) is None
    with pytest.raises(ConfigError, match="names no key column"):
        vertical_keys({"vertical": True, "key": ""})
    node = {"party": "bank", "data-path": "/data/bank.parquet", "state-dir": str(tmp_path)}
    party = party_from_node(Context(1, 7, node, RecordDict(), {"vertical": True, "key": "person_id"}))
    assert isinstance(party, VerticalParty) and party.key_columns == ("person_id",) and party.decoder_dir == str(tmp_path)
    assert isinstance(party_from_node(Context(1, 7, node, RecordDict(), {"vertical": False, "key": ""})), StagedParty)
