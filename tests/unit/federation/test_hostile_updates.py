"""The server's update checks, Flower's robust rules as fedtab wraps them, and update compression: hand-worked numbers."""

from __future__ import annotations

import numpy as np
import pytest

from fedtab.config import FedtabConfig
from fedtab.errors import ConfigError
from fedtab.federation import keys
from fedtab.federation.aggregation import robust_aggregate, weighted_average
from fedtab.federation.compression import compress_update, decompress_update
from fedtab.federation.coordinator import min_training_parties
from fedtab.federation.payload import Payload
from fedtab.federation.screening import UpdateScreen

GLOBAL = {"w": np.zeros(4, dtype=np.float32), "bn.num_batches_tracked": np.array(3, dtype=np.int64)}


def party(values, rows=10.0, steps=3):
    return Payload(arrays={"w": np.asarray(values, dtype=np.float32), "bn.num_batches_tracked": np.array(steps)},
                   metrics={keys.NUM_EXAMPLES: rows})


def test_robust_rules_against_one_outlier():
    updates = [{"w": np.array([1.0, 2.0]), "n": np.array(4)}, {"w": np.array([1.2, 2.2]), "n": np.array(5)},
               {"w": np.array([0.8, 1.8]), "n": np.array(6)}, {"w": np.array([1.1, 2.1]), "n": np.array(7)},
               {"w": np.array([1e6, -1e6]), "n": np.array(8)}]
    assert weighted_average(updates, [1] * 5)["w"][0] > 1e5  # the mean follows the outlier
    np.testing.assert_allclose(robust_aggregate("median", updates)["w"], [1.1, 2.0])
    np.testing.assert_allclose(robust_aggregate("trimmed-mean", updates)["w"], [(1.0 + 1.1 + 1.2) / 3, (1.8 + 2.0 + 2.1) / 3])
    krum = robust_aggregate("krum", updates)  # the party closest to its n − f − 2 = 2 nearest: (1.1, 2.1), counter and all
    np.testing.assert_allclose(krum["w"], [1.1, 2.1])
    assert krum["n"] == 7
    assert robust_aggregate("median", updates)["n"].dtype == np.int64 and robust_aggregate("median", updates)["n"] == 6


def test_screen_names_nan_long_and_lying_updates():
    screen = UpdateScreen({"a": 10, "b": 10, "c": 10, "d": 10, "e": 10})
    replies = {"a": party([1, 1, 1, 1]), "b": party([1.1, 1, 1, 1]), "c": party([np.nan, 1, 1, 1]),
               "d": party([50, 50, 50, 50]), "e": party([1, 1, 1, 1], rows=11)}
    kept, rejected = screen.screen(GLOBAL, replies, sorted(replies))
    assert sorted(kept) == ["a", "b"]
    assert "non-finite" in rejected["c"] and "exceeds 10 × the median" in rejected["d"]
    assert "claims 11 training rows; it declared 10" in rejected["e"]
    _, later = screen.screen(GLOBAL, {"a": party([1, 1, 1, 1], rows=9)}, ["a"])
    assert "claimed 10 in its first round" in later["a"]
    _, off = UpdateScreen({"c": 10}, enabled=False).screen(GLOBAL, {"c": replies["c"]}, ["c"])
    assert off == {}


@pytest.mark.parametrize(("bits", "tolerance", "ratio"), [(16, 1e-3, 0.55), (8, 2 / 255, 0.3)])
def test_compressed_update_round_trips_within_its_resolution(bits, tolerance, ratio):
    rng = np.random.default_rng(0)
    before = {"w": rng.normal(size=1000).astype(np.float32), "n": np.array(7)}
    after = {"w": before["w"] + rng.normal(scale=0.1, size=1000).astype(np.float32), "n": np.array(9)}
    sent = compress_update(before, after, bits)
    assert sum(v.nbytes for v in sent.values()) < ratio * sum(v.nbytes for v in after.values())
    rebuilt = decompress_update(before, sent, bits)
    span = float(np.ptp(after["w"] - before["w"]))
    assert np.abs(rebuilt["w"] - after["w"]).max() <= tolerance * max(span, 1.0)
    assert rebuilt["n"] == 9 and rebuilt["w"].dtype == np.float32
    with pytest.raises(ValueError, match="'w' holds 3 values"):
        decompress_update(before, {**sent, "w": sent["w"][:3]}, bits)


def test_min_parties_default_and_validation():
    assert [min_training_parties(FedtabConfig(), p) for p in (1, 2, 3, 5, 10)] == [1, 2, 2, 3, 5]
    assert min_training_parties(FedtabConfig(min_parties=4), 3) == 3
    with pytest.raises(ConfigError, match="'update_bits' must be one of"):
        FedtabConfig(update_bits=12)
    with pytest.raises(ConfigError, match="'min_parties' must be"):
        FedtabConfig(min_parties=0)


def test_wire_summary_reads_the_history_and_keeps_losses_apart():
    from fedtab.cli.synthesize import wire_summary
    from fedtab.federation.round_record import reported_metrics

    history = [{"round": 1.0, "parties": 2.0, "loss_g": 0.5, "bytes_sent": 300.0, "bytes_received": 100.0, "bytes_sent.a": 150.0,
                "bytes_sent.b": 150.0, "bytes_received.a": 60.0, "bytes_received.b": 40.0, "rejected.b": 1.0},
               {"round": 2.0, "parties": 2.0, "loss_g": 0.4, "bytes_sent": 500.0, "bytes_received": 300.0, "bytes_sent.a": 250.0,
                "bytes_sent.b": 250.0, "bytes_received.a": 140.0, "bytes_received.b": 160.0}]
    wire = wire_summary(history, 8)
    assert (wire["sent_per_round"], wire["received_per_round"], wire["update_bits"]) == (400.0, 200.0, 8)
    assert wire["per_party"]["b"] == {"sent": 200.0, "received": 100.0}
    assert reported_metrics(history[0]) == {"loss_g": 0.5}
    assert wire_summary([{"round": 1.0}], 32) == {}
