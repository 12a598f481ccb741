"""Federated autoregressive tabular network (the TabularARGN design): each column predicted from those before it.

Every column becomes tokens read straight off the plan's encoded row, so the plan's encoders stay
the only statistics released and DP accounting is unchanged: a categorical is its category index;
a numerical is its (missing flag,) mixture mode and its within-mode scalar alpha in [-1, 1] cut
into ``bins`` equal bins (decoded as a uniform draw inside the bin). Each token has an embedding
(one-hot times a bias-free ``Linear``, which Opacus's ghost clipping handles) and a regressor that
reads the embeddings of the tokens before it in the column order, masked; the loss is the sum of
the tokens' cross-entropies. With ``order = "random"`` every batch draws a new column order
(TabularARGN's flexible mode), so sampling may fix any columns; ``"fixed"`` trains one order (the
schema's, ``first_columns`` in front, the declared target last) and can fix only a prefix of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fedtab.errors import ConfigError
from fedtab.models.base import HorizontalModel, Modules, Optimizers, Weights
from fedtab.models.draws import draw_categories, sampling_dtype
from fedtab.models.matching import logit_shift
from fedtab.models.registry import register
from fedtab.models.target_pairs import pair_loss, pair_tables, pair_trust, raked_target_logits, target_token
from fedtab.rng import isolated_torch_seed, torch_generator
from fedtab.transformers.plan import NUMERIC_KINDS

SAMPLE_CHUNK = 8192
ORDERS = ("fixed", "random")


@dataclass(frozen=True)
class Token:
    """One predicted unit: which column it belongs to, where its one-hot (or alpha) sits in the encoded row."""

    column: str
    kind: str  # "category", "missing", "mode" or "bin"
    start: int
    cardinality: int


def tokens_of(plan: Any, bins: int) -> list[Token]:
    """The plan's encoded columns as tokens; a numerical's missing flag comes before its mode, its bin after."""
    out: list[Token] = []
    start = 0
    for column in plan.encoded_columns:
        if column.kind in NUMERIC_KINDS:
            k = len(column.means)
            if column.has_missing:
                out.append(Token(column.name, "missing", start + 1 + k, 2))
            out.append(Token(column.name, "mode", start + 1, k))
            out.append(Token(column.name, "bin", start, bins))
        else:
            out.append(Token(column.name, "category", start, column.width))
        start += column.width
    return out


class ARGNetwork(nn.Module):
    """Embeddings, one regressor and one head per token; a regressor reads the embeddings of ``reads[token]``.

    A fixed order reads only the tokens before it (half the work of reading every token); a token
    that reads none gets a constant one, so its head learns the token's marginal. ``masked``: the
    order changes per batch (``order = "random"``), so a mask says which of its reads a token may see;
    in a fixed order every read is always seen, and a token whose reads are the first tokens takes
    them as a view of the embeddings (no gather, no mask: 28 % of a training step on 80 tokens).
    """

    def __init__(self, cardinalities: list[int], reads: list[list[int]], embedding_dim: int,
                 hidden_dims: list[int], *, masked: bool = True) -> None:
        super().__init__()
        self.cardinalities = cardinalities
        self.reads = reads
        self.masked = masked
        self.embeddings = nn.ModuleList(nn.Linear(c, embedding_dim, bias=False) for c in cardinalities)
        self.regressors = nn.ModuleList(_mlp(max(1, embedding_dim * len(r)), hidden_dims) for r in reads)
        self.heads = nn.ModuleList(nn.Linear(hidden_dims[-1], c) for c in cardinalities)
        self._gathers: dict[tuple[int, str], torch.Tensor] = {}

    def embed(self, one_hots: list[torch.Tensor]) -> torch.Tensor:
        """(batch, tokens, embedding_dim)."""
        return torch.stack([e(x) for e, x in zip(self.embeddings, one_hots)], dim=1)

    def logits(self, embedded: torch.Tensor, mask: torch.Tensor, token: int) -> torch.Tensor:
        """Token ``token``'s logits from the embeddings it reads that its row of ``mask`` lets it see."""
        reads = self.reads[token]
        if not reads:
            context = torch.ones(len(embedded), 1, device=embedded.device)
        elif self.masked:
            context = (embedded[:, reads] * mask[token, reads][None, :, None]).flatten(1)
        elif reads[-1] == len(reads) - 1:  # the first tokens, in order
            context = embedded[:, :len(reads)].flatten(1)
        else:
            context = embedded.index_select(1, self._gather(token, embedded.device)).flatten(1)
        return self.heads[token](self.regressors[token](context))

    def _gather(self, token: int, device: torch.device) -> torch.Tensor:
        key = (token, str(device))
        if key not in self._gathers:
            self._gathers[key] = torch.tensor(self.reads[token], dtype=torch.long, device=device)
        return self._gathers[key]

    def forward(self, one_hots: list[torch.Tensor], mask: torch.Tensor) -> list[torch.Tensor]:
        embedded = self.embed(one_hots)
        return [self.logits(embedded, mask, t) for t in range(len(self.cardinalities))]


class _SamplingSteps:
    """A trained network rearranged for drawing tokens one after another.

    The embeddings of the tokens drawn so far sit side by side in draw order in one ``context``
    buffer, and each token's first layer keeps only the weight columns of the tokens drawn before
    it, in that order: its pre-activation is one matrix product with a prefix of the buffer (no
    gather, no mask; a token not drawn yet has a zero embedding, so dropping its columns changes
    nothing). Weights are cast to ``dtype`` (bfloat16 where the CPU has it); logits come out float32.
    """

    def __init__(self, network: ARGNetwork, sequence: list[int], dtype: torch.dtype) -> None:
        self.sequence = sequence
        self.dtype = dtype
        self.width = network.embeddings[0].out_features
        self.tables = [network.embeddings[i].weight.t().to(dtype).contiguous() for i in sequence]
        self.firsts: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.rests = [nn.Sequential(*network.regressors[i][1:], network.heads[i]).to(dtype) for i in sequence]
        for position, i in enumerate(sequence):
            first = network.regressors[i][0]
            reads = network.reads[i]
            if not reads:  # a constant input of one: the pre-activation is a constant row
                self.firsts.append((first.weight.new_zeros(first.out_features, 0).to(dtype),
                                    (first.weight[:, 0] + first.bias).to(dtype)))
                continue
            blocks = first.weight.reshape(first.out_features, len(reads), self.width)
            slot = {j: k for k, j in enumerate(reads)}
            columns = [blocks[:, slot[j]] if j in slot else blocks.new_zeros(first.out_features, self.width)
                       for j in sequence[:position]]
            weight = torch.cat(columns, dim=1) if columns else blocks.new_zeros(first.out_features, 0)
            self.firsts.append((weight.to(dtype).contiguous(), first.bias.to(dtype)))

    def context(self, rows: int, device: torch.device) -> torch.Tensor:
        return torch.zeros(rows, len(self.sequence) * self.width, dtype=self.dtype, device=device)

    def logits(self, context: torch.Tensor, position: int) -> torch.Tensor:
        """The float32 logits of the token at ``position`` from the embeddings drawn before it."""
        weight, bias = self.firsts[position]
        hidden = F.linear(context[:, :weight.shape[1]], weight, bias)
        return self.rests[position](hidden).float()

    def embed(self, context: torch.Tensor, position: int, choice: torch.Tensor) -> None:
        """Write the drawn categories' embeddings into the token's slot of ``context``."""
        context[:, position * self.width:(position + 1) * self.width] = self.tables[position][choice]


def _mlp(width: int, hidden_dims: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for dim in hidden_dims:
        layers += [nn.Linear(width, dim), nn.ReLU()]
        width = dim
    return nn.Sequential(*layers)


@register("argn")
class FederatedARGN(HorizontalModel):
    """An autoregressive network over the plan's tokens, trained locally on cross-entropy and averaged."""

    private_modules = ("argn",)

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """Sizes measured on Adult (benchmarks/RESULTS_ARGN.md); ``target`` goes last in the order.

        ``target_marginal``: an unconditional sample's target follows the plan's released category
        counts (free post-processing; FedAvg over label-skewed parties moves the target head's level).
        ``category_marginals`` does the same for every categorical column: parties split by a column
        (Adult by education) average heads that each saw a few of its categories, and their levels
        come out wrong (education's TV 0.38 on that split without it, RESULTS_ARGN.md).
        ``dp_learning_rate`` replaces ``learning_rate`` when the model trains under DP: DP-SGD takes a
        fraction of the plain path's steps (the plan's batch is the whole run's, not the party's share)
        and Adam's step must cover the distance in them (ε = 1, Adult: quality 0.867 at 2e-3, see
        RESULTS_ARGN.md's DP sweep).
        ``target_pairs`` (weight of ``target_pairs.pair_loss``) and ``pair_sampling`` (the target's draw raked
        to them) read the target's 2-way marginals, which the parties then release under DP (charged to the
        encoder share); with both off (the defaults) nothing more is released. Off because on Adult (ε = 1 and
        3, 10 epochs) neither lifted utility: raking the same model's draw cost 0.003–0.011 TSTR ROC-AUC at
        ε = 3 for ≤ 0.002 quality; the loss term lowered it (ε = 3: 0.899 at weight 0.3, 0.890 at 1, against
        0.901–0.903 without; benchmarks/RESULTS_PAIRS.md).
        """
        return {
            "embedding_dim": 16,
            "hidden_dims": [128],
            "bins": 40,
            "learning_rate": 2e-3,
            "dp_learning_rate": 1.5e-2,
            "order": "fixed",
            "first_columns": "",
            "target": None,
            "target_marginal": True,
            "category_marginals": True,
            "sample_precision": "auto",
            "target_pairs": 0.0,
            "pair_sampling": False,
        }

    @classmethod
    def reads_target_pairs(cls, options: Mapping[str, Any]) -> bool:
        return options.get("target") is not None and (options["target_pairs"] > 0 or options["pair_sampling"])

    def __init__(self, plan, options=None, *, seed: int = 0, private: bool = False) -> None:  # type: ignore[no-untyped-def]
        super().__init__(plan, options, seed=seed, private=private)
        if self.options["order"] not in ORDERS:
            raise ConfigError(f"Model 'argn' takes order = one of {list(ORDERS)}; got {self.options['order']!r}. "
                              "Fix [model.options] in the config.")
        self.tokens = tokens_of(plan, self.options["bins"])
        self.columns = list(dict.fromkeys(t.column for t in self.tokens))
        self.column_order = self._training_order()
        self.pair_target = target_token(self.tokens, self.options["target"])
        self.pairs = pair_tables(plan, self.tokens, self.options["target"]) if self.reads_target_pairs(self.options) else {}
        self.pair_trust = pair_trust(plan, self.pairs)

    def _training_order(self) -> list[str]:
        """The schema's order with ``first_columns`` in front and the target last; refuses an impossible order."""
        first = [c.strip() for c in self.options["first_columns"].split(",") if c.strip()]
        target = self.options["target"]
        problems = [f"'{c}' is not a modelled column" for c in dict.fromkeys(first) if c not in self.columns]
        problems += [f"'{c}' is named twice" for c in dict.fromkeys(first) if first.count(c) > 1]
        if target is not None and target not in self.columns:
            problems.append(f"the target '{target}' is not a modelled column")
        if target is not None and target in first:
            problems.append(f"the target '{target}' is listed first but goes last")
        if problems:
            raise ConfigError("Model 'argn' cannot train the column order asked for: " + "; ".join(problems)
                              + f". Its columns are {self.columns}. Fix first_columns or target in [model.options].")
        rest = [c for c in self.columns if c not in first and c != target]
        return first + rest + ([target] if target is not None else [])

    def build_modules(self) -> Modules:
        o = self.options
        every = range(len(self.tokens))
        if o["order"] == "fixed":
            ranks = self.token_ranks(self.column_order)
            reads = [[j for j in every if ranks[j] < ranks[i]] for i in every]
        else:
            reads = [[j for j in every if j != i] for i in every]
        cardinalities = [t.cardinality for t in self.tokens]
        return {"argn": ARGNetwork(cardinalities, reads, o["embedding_dim"], list(o["hidden_dims"]),
                                   masked=o["order"] != "fixed")}

    def make_optimizers(self, modules: Modules) -> Optimizers:
        rate = self.options["dp_learning_rate" if self.private else "learning_rate"]
        return {"argn": torch.optim.Adam(modules["argn"].parameters(), lr=rate)}

    def private_loss(self, modules: Modules, real: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Each row's summed cross-entropy over its tokens, each predicted from the tokens before it."""
        order = self.column_order if self.options["order"] == "fixed" else list(rng.permutation(self.columns))
        targets = self.token_indices(real)
        one_hots = [F.one_hot(y, t.cardinality).to(real.dtype) for y, t in zip(targets, self.tokens)]
        logits = modules["argn"](one_hots, self.token_mask(order))
        loss = torch.stack([F.cross_entropy(z, y, reduction="none") for z, y in zip(logits, targets)], dim=1).sum(dim=1)
        if self.pairs and self.options["target_pairs"] > 0 and self.pair_target is not None:
            loss = loss + self.options["target_pairs"] * pair_loss(logits, targets, self.pairs, self.pair_target,
                                                                   self.token_ranks(order), self.pair_trust)
        return loss

    def token_indices(self, encoded: torch.Tensor) -> list[torch.Tensor]:
        """Each token's class per row: argmax of its one-hot, or alpha's bin."""
        out = []
        for t in self.tokens:
            if t.kind == "bin":
                alpha = encoded[:, t.start].clamp(-1.0, 1.0)
                out.append(((alpha + 1.0) / 2.0 * t.cardinality).long().clamp(0, t.cardinality - 1))
            else:
                out.append(encoded[:, t.start:t.start + t.cardinality].argmax(dim=1))
        return out

    def token_ranks(self, column_order: list[str]) -> np.ndarray:
        """Each token's place in the sequence: columns in ``column_order``, a column's tokens in plan order."""
        rank = {c: i for i, c in enumerate(column_order)}
        return np.argsort(np.lexsort((np.arange(len(self.tokens)), [rank[t.column] for t in self.tokens])))

    def token_mask(self, column_order: list[str]) -> torch.Tensor:
        """(tokens, tokens): 1 where token j comes before token i."""
        ranks = self.token_ranks(column_order)
        return torch.from_numpy((ranks[None, :] < ranks[:, None]).astype(np.float32)).to(self.device)

    def sample(self, weights: Weights, num_rows: int, *, seed: int) -> np.ndarray:
        return self.pair_matched(weights, self.sample_given(weights, num_rows, seed=seed, fixed={}), seed=seed)

    def pair_matched(self, weights: Weights, rows: np.ndarray, *, seed: int) -> np.ndarray:
        """Unconditional sampled ``rows`` with the target redrawn from its head raked to the plan's released 2-way
        marginals (``target_pairs.raked_target_logits``); as they are without them, or unless the target comes
        last (a fixed order), where its head already reads every other column drawn."""
        t = self.pair_target
        if not (self.pairs and self.options["pair_sampling"] and t is not None and self.options["order"] == "fixed"):
            return rows
        with isolated_torch_seed(seed, "pair-sample"), torch.no_grad():
            network = self.load_modules(weights)["argn"].eval()
            mask = self.token_mask(self.column_order)
            indices = self.token_indices(torch.from_numpy(rows).to(self.device))
            logits = torch.cat([
                network.logits(network.embed([F.one_hot(y[s:s + SAMPLE_CHUNK], k.cardinality).float()
                                              for y, k in zip(indices, self.tokens)]), mask, t)
                for s in range(0, len(rows), SAMPLE_CHUNK)])
            raked = raked_target_logits(logits, {i: indices[i] for i in self.pairs}, self.pairs, self.pair_trust)
            choice = draw_categories(raked, torch_generator(seed, "pair-noise")).cpu().numpy()
        out = rows.copy()
        token = self.tokens[t]
        out[:, token.start:token.start + token.cardinality] = 0.0  # _write expects the span empty
        self._write(out, token, choice, torch_generator(seed, "pair-write"))
        return out

    def sample_given(self, weights: Weights, num_rows: int, *, seed: int,
                     fixed: Mapping[str, np.ndarray]) -> np.ndarray:
        """Encoded rows with the columns in ``fixed`` (column -> its encoded block, one row or ``num_rows``) given."""
        order = self.sampling_order(list(fixed))
        noise = torch_generator(seed, "sample-noise")
        out = np.zeros((num_rows, self.plan.output_dim), dtype=np.float32)
        with isolated_torch_seed(seed, "sample"), torch.no_grad():
            network = self.load_modules(weights)["argn"].eval()
            sequence = [int(i) for i in np.argsort(self.token_ranks(order))]
            steps = _SamplingSteps(network, sequence, sampling_dtype(self.options["sample_precision"], "argn"))
            shares = self._marginal_shares(fixed)
            shifts: dict[int, torch.Tensor] = {}
            for start in range(0, num_rows, SAMPLE_CHUNK):
                rows = min(SAMPLE_CHUNK, num_rows - start)
                given = {c: np.broadcast_to(b, (num_rows, b.shape[1]))[start:start + rows] for c, b in fixed.items()}
                self._sample_chunk(steps, out[start:start + rows], given, noise, shares, shifts)
        return out

    def _marginal_shares(self, fixed: Mapping[str, np.ndarray]) -> dict[int, torch.Tensor]:
        """Token -> the plan's released category shares its unconditional draw should match (none when columns are fixed)."""
        if fixed:
            return {}
        matched = set(self.columns) if self.options["category_marginals"] else set()
        if self.options["target"] is not None and self.options["target_marginal"]:
            matched.add(self.options["target"])
        plans = {c.name: c for c in self.plan.columns}
        shares = {}
        for i, token in enumerate(self.tokens):
            counts = np.clip(np.asarray(plans[token.column].counts, dtype=np.float64), 0, None)
            if token.kind == "category" and token.column in matched and len(counts) == token.cardinality and counts.sum() > 0:
                shares[i] = torch.from_numpy(np.maximum(counts / counts.sum(), 1e-6)).float().to(self.device)
        return shares

    def _sample_chunk(self, steps: _SamplingSteps, block: np.ndarray, given: Mapping[str, np.ndarray],
                      noise: torch.Generator, shares: Mapping[int, torch.Tensor], shifts: dict[int, torch.Tensor]) -> None:
        """Draw the chunk's tokens in sequence into ``block`` (zero on entry), the given columns copied in.

        A matched token's logit shift is fitted on the first chunk and kept in ``shifts`` for the
        rest: chunks are draws of one law, so refitting would only cost time (30 softmax passes).
        """
        for column, values in given.items():
            start = min(t.start for t in self.tokens if t.column == column)
            block[:, start:start + values.shape[1]] = values
        given_indices = self.token_indices(torch.from_numpy(block).to(self.device))
        context = steps.context(len(block), self.device)
        for position, i in enumerate(steps.sequence):
            t = self.tokens[i]
            if t.column in given:
                choice = given_indices[i]
            else:
                logits = steps.logits(context, position)
                if i in shares:
                    if i not in shifts:
                        shifts[i] = logit_shift(logits, shares[i])
                    logits = logits + shifts[i]
                choice = draw_categories(logits, noise)
                self._write(block, t, choice.cpu().numpy(), noise)
            steps.embed(context, position, choice)

    def _write(self, block: np.ndarray, token: Token, choice: np.ndarray, noise: torch.Generator) -> None:
        """A token's draw into the encoded row (its span zero on entry): the one-hot, or alpha uniform inside its bin."""
        if token.kind == "bin":
            width = 2.0 / token.cardinality
            inside = torch.rand(len(choice), generator=noise, device="cpu").numpy()
            block[:, token.start] = np.clip(-1.0 + (choice + inside) * width, -1.0, 1.0)
        else:
            block[np.arange(len(choice)), token.start + choice] = 1.0

    def sampling_order(self, fixed: list[str]) -> list[str]:
        """The fixed columns first; under a fixed training order they must already be its first columns."""
        unknown = [c for c in fixed if c not in self.columns]
        if unknown:
            raise ConfigError(f"Cannot fix columns {unknown}: model 'argn' models {self.columns}. "
                              "Fix only columns of the table.")
        if self.options["order"] == "random":
            return fixed + [c for c in self.column_order if c not in fixed]
        prefix = self.column_order[:len(fixed)]
        if set(fixed) != set(prefix):
            raise ConfigError(
                f"Cannot fix columns {fixed} first: this model was trained in the fixed column order {self.column_order}, "
                f"so it can fix only its first columns ({prefix} for {len(fixed)}). Train with "
                f"model options order = \"random\", or first_columns = \"{','.join(fixed)}\"."
            )
        return self.column_order
