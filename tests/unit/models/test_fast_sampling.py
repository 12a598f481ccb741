"""The fast sampling paths against slow references: the row softmax, the inverse-CDF draw, argn's
prefix-of-a-buffer logits, and the vectorised categorical decode (same frames as the per-row code)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fedtab.connectors import load_party
from fedtab.errors import ConfigError
from fedtab.models.argn import _SamplingSteps
from fedtab.models.draws import draw_categories, row_softmax, sampling_dtype
from fedtab.models.registry import create_model
from fedtab.schema import ColumnKind
from fedtab.transformers import fit_plan
from fedtab.transformers.codecs import decode_categorical
from fedtab.transformers.plan import ColumnPlan, SpanInfo
from fedtab.transformers.values import MISSING_TOKEN, RARE_TOKEN


@pytest.mark.parametrize("width", [2, 9, 42])
def test_row_softmax_is_torch_softmax(width):
    logits = torch.randn(500, width, generator=torch.Generator().manual_seed(width)) * 5
    torch.testing.assert_close(row_softmax(logits), torch.softmax(logits, dim=1), rtol=1e-6, atol=1e-7)


def test_the_inverse_cdf_draw_follows_the_softmax_and_repeats_with_its_seed():
    logits = torch.tensor([[2.0, 0.0, -1.0, 1.0, -30.0]]).repeat(100_000, 1)
    draws = draw_categories(logits, torch.Generator().manual_seed(0))
    shares = np.bincount(draws.numpy(), minlength=5) / len(draws)
    expected = torch.softmax(logits[0], dim=0).numpy()
    sigma = np.sqrt(expected * (1 - expected) / len(draws))
    assert np.all(np.abs(shares - expected) < 5 * sigma + 1e-9), (shares, expected)
    assert np.abs(shares - 0.2).max() > 0.2  # control: a uniform draw would fail the check above
    assert torch.equal(draws, draw_categories(logits, torch.Generator().manual_seed(0)))
    assert draw_categories(torch.tensor([[0.0, 0.0]]), torch.Generator().manual_seed(1)).item() in (0, 1)


def test_an_unknown_precision_is_refused_with_the_choices():
    with pytest.raises(ConfigError, match=r"Model 'argn' option 'sample_precision' must be one of"):
        sampling_dtype("half", "argn")


def _frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    kind = rng.choice(["a", "b", "c"], size=rows)
    return pd.DataFrame({"kind": kind, "flag": kind == "a", "amount": rng.normal(0, 1, rows) + (kind == "b") * 5,
                         "size": rng.choice(["s", "m", "l", "xl"], size=rows)})


@pytest.mark.parametrize("options", [{}, {"order": "random"}, {"first_columns": "size", "target": "kind"}],
                         ids=["fixed", "random", "reordered"])
def test_argn_prefix_logits_equal_the_masked_network(options):
    """Draw a chunk token by token; at every step the fast logits equal the training network's masked logits."""
    table = load_party("p", _frame(300))
    plan = fit_plan([table], seed=0)
    model = create_model("argn", plan, {"embedding_dim": 8, "hidden_dims": [32, 16], "bins": 8, **options}, seed=0)
    weights = model.init_weights()
    reference = model.load_modules(weights)["argn"].eval()
    order = model.sampling_order([])
    mask = model.token_mask(order)
    sequence = [int(i) for i in np.argsort(model.token_ranks(order))]
    steps = _SamplingSteps(model.load_modules(weights)["argn"].eval(), sequence, torch.float32)  # a second copy
    noise = torch.Generator().manual_seed(0)
    with torch.no_grad():
        embedded = torch.zeros(64, len(model.tokens), 8)
        context = steps.context(64, torch.device("cpu"))
        for position, i in enumerate(sequence):
            torch.testing.assert_close(steps.logits(context, position), reference.logits(embedded, mask, i),
                                       rtol=1e-5, atol=1e-5)
            choice = draw_categories(steps.logits(context, position), noise)
            embedded[:, i] = reference.embeddings[i](torch.nn.functional.one_hot(choice, model.tokens[i].cardinality).float())
            steps.embed(context, position, choice)
        assert context.abs().sum() > 0


def _per_row_decode(plan: ColumnPlan, block: np.ndarray) -> pd.Series:
    """The decode before vectorising: every step per row (the slow reference)."""
    labels = np.asarray(plan.vocabulary, dtype=object)[block.argmax(axis=1)]
    dtype = pd.api.types.pandas_dtype(plan.dtype)
    missing = (labels == MISSING_TOKEN) | ((labels == RARE_TOKEN) & (not plan.textual))
    if plan.kind is ColumnKind.BOOLEAN:
        return pd.Series(np.where(missing, None, labels == "True"), dtype=object).astype(dtype)
    if isinstance(dtype, pd.CategoricalDtype):
        categories = [v for v in plan.vocabulary if v != MISSING_TOKEN]
        return pd.Series(pd.Categorical(np.where(missing, None, labels), categories=categories))
    if plan.textual:
        return pd.Series(np.where(missing, None, labels), dtype=object).astype(dtype)
    return pd.to_numeric(pd.Series(np.where(missing, None, labels), dtype=object)).astype(dtype)


@pytest.mark.parametrize("kind, dtype, vocabulary, textual", [
    (ColumnKind.CATEGORICAL, "object", ("red", "blue", MISSING_TOKEN, RARE_TOKEN), True),
    (ColumnKind.CATEGORICAL, "string", ("red", "blue", MISSING_TOKEN), True),
    (ColumnKind.CATEGORICAL, "category", ("red", "blue", MISSING_TOKEN, RARE_TOKEN), True),
    (ColumnKind.CATEGORICAL, "Int64", ("3", "1", "2", MISSING_TOKEN, RARE_TOKEN), False),
    (ColumnKind.CATEGORICAL, "float64", ("1.5", "2", RARE_TOKEN), False),
    (ColumnKind.CATEGORICAL, "int64", ("3", "1", "2"), False),
    (ColumnKind.BOOLEAN, "boolean", ("True", "False", MISSING_TOKEN), True),
    (ColumnKind.BOOLEAN, "bool", ("False", "True"), True),
])
@pytest.mark.parametrize("rows", ["random", "all present"])
def test_vectorised_categorical_decode_gives_the_per_row_frames(kind, dtype, vocabulary, textual, rows):
    column = ColumnPlan("c", kind, dtype, spans=(SpanInfo(len(vocabulary), "softmax"),), vocabulary=vocabulary,
                        counts=(1.0,) * len(vocabulary), textual=textual)
    block = np.random.default_rng(0).normal(size=(400, len(vocabulary))).astype(np.float32)
    block[:20] = 0.0  # ties: the first index wins in both
    if rows == "all present":
        present = [i for i, v in enumerate(vocabulary) if v not in (MISSING_TOKEN, RARE_TOKEN)]
        block[:, [i for i in range(len(vocabulary)) if i not in present]] = -np.inf
    pd.testing.assert_series_equal(decode_categorical(column, block), _per_row_decode(column, block))
