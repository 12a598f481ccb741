"""A round's record holds whatever metrics the plugin reported, averaged by the parties' rows."""

import numpy as np

from fedtab.federation import keys
from fedtab.federation.coordinator import _round_record
from fedtab.federation.round_record import reported_metrics
from fedtab.federation.payload import Payload


def _reply(rows: float, **metrics: float) -> Payload:
    return Payload(metrics={keys.NUM_EXAMPLES: rows, **metrics})


def test_any_metric_name_is_averaged_by_rows_over_the_parties_that_reported_it():
    replies = {"a": _reply(100, loss=1.0, kl=4.0), "b": _reply(300, loss=3.0), "c": _reply(600, loss=np.nan)}
    record = _round_record(4, replies, ["a", "b", "c"])
    assert record == {"round": 5.0, "parties": 3.0, "kl": 4.0, "loss": 2.5}
    assert reported_metrics(record) == {"kl": 4.0, "loss": 2.5}


def test_a_dp_round_reports_no_metrics():
    record = _round_record(0, {"a": _reply(100), "b": _reply(50)}, ["a", "b"])
    assert record == {"round": 1.0, "parties": 2.0} and reported_metrics(record) == {}
