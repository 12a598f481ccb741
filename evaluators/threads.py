"""Run the evaluation's numeric kernels on one thread, and give the caller's settings back after.

Measured on the 2-core build machine while another process held one core: a gradient-boosting fit
took 39 s with two OpenMP threads and 0.7 s with one; a float32 matrix product 2.6 s against 0.9 s.
Threads that spin-wait for a busy core cost far more than a second core gains. One thread also
fixes the order of floating-point sums, so the figures do not depend on the machine's core count.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from threadpoolctl import threadpool_limits


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    with threadpool_limits(limits=1):
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)
