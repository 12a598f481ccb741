"""argn's use of the released 2-way target marginals: a per-row loss term, and the target's draw raked to them."""

from __future__ import annotations

import numpy as np
import torch

from fedtab.models.target_pairs import pair_loss, raked_target_logits

JOINT = torch.tensor([[0.30, 0.10, 0.05], [0.05, 0.10, 0.40]])  # P(target class, token class): 2 × 3, sums to 1


def _group_means(logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    probs = torch.softmax(logits, dim=1)
    return torch.stack([probs[index == k].mean(dim=0) for k in range(3)])


def test_raking_gives_each_class_the_released_target_shares_and_keeps_rankings() -> None:
    generator = torch.Generator().manual_seed(0)
    index = torch.multinomial(JOINT.sum(dim=0), 4000, replacement=True, generator=generator)
    logits = torch.randn(4000, 2, generator=generator)  # a head that ignores the column entirely
    released = (JOINT / JOINT.sum(dim=0, keepdim=True)).T  # P(target | token class)
    assert (_group_means(logits, index) - released).abs().max() > 0.3  # control: far off before
    raked = raked_target_logits(logits, {7: index}, {7: JOINT})
    assert (_group_means(raked, index) - released).abs().max() < 0.01
    untrusted = raked_target_logits(logits, {7: index}, {7: JOINT}, {7: torch.tensor([1.0, 0.0, 0.0])})
    off = (_group_means(untrusted, index) - released).abs().max(dim=1).values
    assert off[0] < 0.1 < off[1:].min(), off  # classes trusted at 0 are not pulled to the released shares
    margin = logits[:, 1] - logits[:, 0]
    for k in range(3):  # within a class group, the same shift for every row: the head's ranking stays
        rows = index == k
        after = raked[rows, 1] - raked[rows, 0]
        np.testing.assert_allclose((after - margin[rows]).numpy(), float((after - margin[rows])[0]), atol=1e-4)


def test_the_loss_is_per_row_and_its_minimum_is_the_released_conditional() -> None:
    index = torch.tensor([0, 1, 2, 2, 0])
    y = torch.tensor([0, 1, 1, 0, 0])
    released = (JOINT / JOINT.sum(dim=0, keepdim=True)).T.log()
    target_logits = released[index].clone().requires_grad_(True)  # the later head: the target (a fixed order)
    token_logits = torch.zeros(5, 3)
    ranks = np.array([0, 1])  # token 0 (the column) comes before token 1 (the target)
    loss = pair_loss([token_logits, target_logits], [index, y], {0: JOINT}, target=1, ranks=ranks)
    assert loss.shape == (5,)
    loss.sum().backward()
    assert target_logits.grad is not None and target_logits.grad.abs().max() < 1e-6  # at the released P(target | class)
    for row in range(5):  # each row's term reads that row only (what DP-SGD clips)
        alone = pair_loss([token_logits[row:row + 1], target_logits[row:row + 1]], [index[row:row + 1], y[row:row + 1]],
                          {0: JOINT}, target=1, ranks=ranks)
        assert torch.allclose(alone, loss[row:row + 1])
    reversed_ranks = np.array([1, 0])  # the target first: the column's head is pulled to P(class | target)
    column_logits = (JOINT / JOINT.sum(dim=1, keepdim=True)).log()[y].clone().requires_grad_(True)
    pair_loss([column_logits, target_logits.detach()], [index, y], {0: JOINT}, target=1, ranks=reversed_ranks).sum().backward()
    assert column_logits.grad is not None and column_logits.grad.abs().max() < 1e-6
