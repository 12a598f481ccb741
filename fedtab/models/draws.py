"""What every sampler shares on the CPU: the sampling precision, a fast row softmax, inverse-CDF category draws
(one span in torch for argn's token-by-token draw; every span of a row at once in numpy for CTGAN and TVAE).

Measured on one core of the bench machine (8,192 rows): ``torch.softmax`` over a width that is not a
multiple of 16 takes 3.0 ms for 9 classes against 0.33 ms for exp-normalise; ``torch.multinomial``
of one draw per row 3.7 ms; a bfloat16 ``Linear(320, 128)`` 0.84 ms against 7.4 ms in float32 where
the CPU multiplies bfloat16 natively (AMX / AVX512-BF16).
"""

from __future__ import annotations

import numpy as np
import torch

from fedtab.errors import ConfigError

SAMPLE_PRECISIONS = ("auto", "float32", "bfloat16")


def sampling_dtype(precision: str, model: str) -> torch.dtype:
    """The dtype a model's network samples in: ``auto`` is bfloat16 where the CPU multiplies it natively."""
    if precision not in SAMPLE_PRECISIONS:
        raise ConfigError(f"Model '{model}' option 'sample_precision' must be one of {SAMPLE_PRECISIONS}; "
                          f"got {precision!r}. Fix [model.options].")
    if precision == "auto":
        return torch.bfloat16 if torch.cpu._is_avx512_bf16_supported() else torch.float32
    return torch.bfloat16 if precision == "bfloat16" else torch.float32


def row_softmax(logits: torch.Tensor) -> torch.Tensor:
    """``softmax(logits, dim=1)`` written as exp-normalise: the same values, 9× faster on narrow CPU rows."""
    weights = (logits - logits.amax(dim=1, keepdim=True)).exp()
    return weights / weights.sum(dim=1, keepdim=True)


def draw_categories(logits: torch.Tensor, noise: torch.Generator) -> torch.Tensor:
    """One category per row from ``softmax(logits)`` by inverse CDF: one uniform per row from ``noise``.

    The law of ``multinomial(softmax(logits), 1)``; the cumulative sum stays unnormalised (the
    uniform is scaled by each row's total instead), and a uniform at the very top picks the last class.
    """
    cumulative = (logits - logits.amax(dim=1, keepdim=True)).exp_().cumsum_(dim=1)
    uniforms = torch.rand(len(logits), 1, generator=noise).to(logits.device, cumulative.dtype)
    chosen = (cumulative < uniforms * cumulative[:, -1:]).sum(dim=1)
    return chosen.clamp_(max=logits.shape[1] - 1)


class SpanDraws:
    """Every one-hot span of a decoded row draws its category from ``softmax(logits)`` at once, by inverse CDF.

    The law of ``argmax(logits + Gumbel noise)`` per span (the Gumbel-max trick), with one uniform per
    span instead of one Gumbel draw per logit, vectorised over all spans (numpy ``reduceat``).
    """

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        dims = np.array([end - start for start, end in spans], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(dims)[:-1]]).astype(np.int64)
        self.span_of = np.repeat(np.arange(len(spans)), dims)
        self.columns = (np.concatenate([np.arange(a, b) for a, b in spans]) if spans else np.zeros(0)).astype(np.int64)
        self.ends = np.append(self.starts[1:], len(self.columns)) - 1

    def write(self, raw: np.ndarray, rng: np.random.Generator, out: np.ndarray) -> None:
        """Set each span's drawn category to one in ``out`` (its spans zero on entry) from the logits in ``raw``."""
        if not len(self.starts):
            return
        cumulative = raw[:, self.columns]
        cumulative -= np.maximum.reduceat(cumulative, self.starts, axis=1)[:, self.span_of]
        np.exp(cumulative, out=cumulative)
        np.cumsum(cumulative, axis=1, out=cumulative)  # at most one per logit: float32 is exact enough
        before = np.zeros((len(raw), len(self.starts)), dtype=np.float32)
        before[:, 1:] = cumulative[:, self.starts[1:] - 1]
        threshold = before + rng.random(before.shape, dtype=np.float32) * (cumulative[:, self.ends] - before)
        chosen = np.add.reduceat(cumulative < threshold[:, self.span_of], self.starts, axis=1, dtype=np.int64)
        out[np.arange(len(raw))[:, None], self.columns[self.starts + np.minimum(chosen, self.ends - self.starts)]] = 1.0
