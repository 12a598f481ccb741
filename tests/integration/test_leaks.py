"""Nothing uncharged leaves a party: a planted unique value is searched for in the bytes of every
message, both directions, and in the saved model; errors on the wire carry no values.

Positive controls: the same scan finds the planted values in a run without DP (exact summaries
and the plan carry them, legitimately) and in a message crafted to hold them, and the local error
text does hold the value that its wire form withholds.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from fedtab import FedtabConfig
from fedtab.errors import SchemaError
from fedtab.federation import keys
from fedtab.federation.coordinator import run_federation
from fedtab.federation.local import LocalTransport
from fedtab.federation.party import PartyWorker, StagedParty
from fedtab.federation.payload import Payload
from fedtab.federation.records import to_record
from fedtab.federation.schema_round import SchemaDeclaration
from fedtab.synthesizer import stage_parties
from fedtab.connectors import load_party

SMALL = {"embedding_dim": 16, "generator_dims": [32], "discriminator_dims": [32]}
WORD = "Zanzibar-canary-7731"
NUMBER = 4194301.5  # exact in float32 and float64, on no grid edge


def needles() -> dict[str, bytes]:
    """The planted values as they could appear in bytes: text, UTF-32 (numpy strings), float64, float32."""
    return {
        "word utf-8": WORD.encode(), "word utf-32": WORD.encode("utf-32-le"),
        "number text": repr(NUMBER).encode(), "number float64": np.float64(NUMBER).tobytes(),
        "number float32": np.float32(NUMBER).tobytes(),
    }


def message_bytes(payload: Payload) -> bytes:
    """The message as Flower serialises it: every array's bytes, then the config and metrics as text."""
    record = to_record(payload)
    arrays = b"".join(bytes(array.data) for array in record.array_records[keys.ARRAYS].values())
    return arrays + repr(sorted(payload.config.items())).encode() + repr(sorted(payload.metrics.items())).encode()


def found(blob: bytes) -> set[str]:
    return {name for name, needle in needles().items() if needle in blob}


def planted_parties(demo_frames) -> dict[str, pd.DataFrame]:
    north = demo_frames["clinic_north"].iloc[:300].copy()
    north.loc[north.index[0], "native-country"] = WORD
    north["fnlwgt"] = north["fnlwgt"].astype(float)
    north.loc[north.index[1], "fnlwgt"] = NUMBER
    return {"clinic_north": north, "clinic_south": demo_frames["clinic_south"].iloc[:300]}


def scanned_run(frames: dict[str, pd.DataFrame], tmp_path, epsilon: float | None) -> tuple[dict[str, set[str]], set[str]]:
    """Run a federation on the in-process transport; what each message kind (both ways) and the model file hold."""
    hits: dict[str, set[str]] = defaultdict(set)

    def tap(direction: str):
        return lambda party, kind, payload: hits[f"{direction} {kind}"].update(found(message_bytes(payload)))

    staged = stage_parties([load_party(n, f) for n, f in frames.items()], tmp_path)
    transport = LocalTransport(staged, tap=tap("reply"), tap_sent=tap("sent"))
    config = FedtabConfig(model="ctgan", rounds=1, local_epochs=1.0, batch_size=100, seed=0, epsilon=epsilon, model_options=SMALL)
    fit = run_federation(transport, config=config, declaration=SchemaDeclaration())
    model = fit.to_state(config).save(tmp_path / "model.fedtab")
    return hits, found(model.read_bytes())


def test_the_scan_finds_planted_values_in_a_message_that_holds_them():
    crafted = Payload(arrays={"labels": np.array(["x", WORD]), "max": np.array([1.0, NUMBER])}, config={"note": WORD})
    assert found(message_bytes(crafted)) == {"word utf-8", "word utf-32", "number float64"}
    assert "number float32" in found(message_bytes(Payload(arrays={"w": np.array([NUMBER], dtype=np.float32)})))


def test_without_dp_the_planted_values_travel_where_exact_statistics_do(demo_frames, tmp_path):
    """Positive control: the exact summary (labels, min/max) and the plan hold them, so the scan has teeth."""
    hits, model = scanned_run(planted_parties(demo_frames), tmp_path, epsilon=None)
    assert {"word utf-32", "number float64"} <= hits[f"reply {keys.STATS}"]
    assert hits[f"sent {keys.TRAIN}"]  # the exact plan travels with every round
    assert model


def test_under_dp_no_planted_value_appears_in_any_message_or_the_model(demo_frames, tmp_path):
    hits, model = scanned_run(planted_parties(demo_frames), tmp_path, epsilon=10.0)
    assert {keys.SCHEMA_ROUND, keys.STATS, keys.TRAIN} <= {kind.split(" ")[1] for kind in hits}
    assert {kind: names for kind, names in hits.items() if names} == {}
    assert model == set()


def test_a_party_error_on_the_wire_withholds_the_value_its_own_log_keeps(demo_frames, tmp_path, caplog):
    frames = {name: frame.iloc[:200].copy() for name, frame in demo_frames.items() if name != "clinic_west"}
    frames["clinic_south"].loc[frames["clinic_south"].index[:3], "race"] = WORD
    races = ["White", "Black", "Other", "Asian-Pac-Islander", "Amer-Indian-Eskimo"]
    config = FedtabConfig(model="ctgan", rounds=1, batch_size=100, model_options=SMALL, public_domain={"race": {"categories": races}})
    replies: list[Payload] = []
    staged = stage_parties([load_party(n, f) for n, f in frames.items()], tmp_path)
    transport = LocalTransport(staged, tap=lambda party, kind, payload: replies.append(payload))
    with caplog.at_level(logging.ERROR, logger="fedtab.party"), pytest.raises(SchemaError) as raised:
        run_federation(transport, config=config, declaration=SchemaDeclaration())
    assert "'race' of party 'clinic_south'" in str(raised.value) and WORD not in str(raised.value)
    assert "withheld" in str(raised.value)
    assert not any(found(message_bytes(reply)) for reply in replies)
    assert WORD in caplog.text  # positive control: the party's own log has the full message


def test_a_missing_sql_table_is_named_locally_but_the_others_stay_home(tmp_path, caplog):
    database = tmp_path / "party.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE secret_patients_2024 (age INTEGER)")
    worker = PartyWorker(StagedParty("clinic_a", f"sqlite:///{database}?table=visits"))
    with caplog.at_level(logging.ERROR, logger="fedtab.party"):
        reply, _ = worker.handle(keys.HELLO, Payload(), {})
    assert reply.config[keys.ERROR_KIND] == "PartyError"
    assert "visits" in str(reply.config[keys.ERROR_MESSAGE])
    assert "secret_patients_2024" not in str(reply.config[keys.ERROR_MESSAGE])
    assert "secret_patients_2024" in caplog.text


def test_a_crash_sends_its_kind_only(tmp_path, caplog):
    path = tmp_path / "a.csv"
    pd.DataFrame({"age": [1, 2, 3]}).to_csv(path, index=False)
    reply, _ = PartyWorker(StagedParty("clinic_a", str(path))).handle(keys.TRAIN, Payload(config={}), {})
    assert reply.config[keys.ERROR_KIND] == "FederationError"
    assert "crashed with KeyError during train.model" in str(reply.config[keys.ERROR_MESSAGE])
