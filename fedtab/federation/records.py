"""Payload <-> Flower RecordDict, the one place that knows both shapes."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord, RecordDict
from flwr.common.serde import recorddict_to_proto

from fedtab.federation import keys
from fedtab.federation.payload import Payload


def to_record(payload: Payload) -> RecordDict:
    return RecordDict(
        {
            keys.ARRAYS: ArrayRecord(OrderedDict((k, Array(np.ascontiguousarray(v))) for k, v in payload.arrays.items())),
            keys.CONFIG: ConfigRecord(dict(payload.config)),
            keys.METRICS: MetricRecord({k: float(v) for k, v in payload.metrics.items()}),
        }
    )


def from_record(record: RecordDict) -> Payload:
    arrays = record.array_records.get(keys.ARRAYS)
    config = record.config_records.get(keys.CONFIG)
    metrics = record.metric_records.get(keys.METRICS)
    return Payload(
        arrays={k: v.numpy() for k, v in arrays.items()} if arrays is not None else {},
        config=dict(config) if config is not None else {},
        metrics=dict(metrics) if metrics is not None else {},
    )


def to_state_record(state: dict[str, np.ndarray]) -> ArrayRecord:
    return ArrayRecord(OrderedDict((k, Array(np.ascontiguousarray(v))) for k, v in state.items()))


def from_state_record(record: ArrayRecord | None) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in record.items()} if record is not None else {}


def wire_size(record: RecordDict | Payload) -> int:
    """Bytes of a message's content as Flower serializes it (protobuf); the same measure in every transport."""
    return int(recorddict_to_proto(record if isinstance(record, RecordDict) else to_record(record)).ByteSize())
