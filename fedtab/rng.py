"""Seeded generators derived from one seed; nothing here touches global RNG state."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported by the two torch helpers when called, so numpy-only callers stay light
    import torch


def derive_seed(seed: int, *labels: object) -> int:
    """A stable 63-bit seed for a labelled sub-stream (a party, a round, a column)."""
    text = ":".join([str(seed), *map(str, labels)]).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") >> 1


def numpy_rng(seed: int, *labels: object) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, *labels))


def torch_generator(seed: int, *labels: object) -> torch.Generator:
    import torch

    generator = torch.Generator()
    generator.manual_seed(derive_seed(seed, *labels))
    return generator


@contextlib.contextmanager
def isolated_torch_seed(seed: int, *labels: object) -> Iterator[None]:
    """Seed torch's global generator inside a fork that is restored on exit.

    Library code we reuse (dropout in ctgan's blocks, ``gumbel_softmax``) draws from the global
    generator; forking keeps it deterministic without leaving the caller's state changed.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, *labels))
        yield
