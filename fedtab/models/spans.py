"""Where each activation sits in an encoded row: the layout every model reads from the plan."""

from __future__ import annotations

import numpy as np

from fedtab.transformers import TransformPlan


def activation_layout(plan: TransformPlan) -> tuple[list[tuple[int, int]], np.ndarray]:
    """(start, end) of every one-hot (softmax) span, and the indices of every tanh value."""
    softmax_spans: list[tuple[int, int]] = []
    tanh_columns: list[int] = []
    offset = 0
    for column_spans in plan.output_info:
        for span in column_spans:
            if span.activation == "tanh":
                tanh_columns.extend(range(offset, offset + span.dim))
            else:
                softmax_spans.append((offset, offset + span.dim))
            offset += span.dim
    return softmax_spans, np.array(tanh_columns, dtype=np.int64)
