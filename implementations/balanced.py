"""Class-balanced binary cross-entropy (seed 001; Xie & Tu 2015, HED)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def balanced_binary_cross_entropy_with_logits(
    input: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """-(beta * y * log sigmoid(x) + (1 - beta) * (1 - y) * log(1 - sigmoid(x))), where
    beta = 1 - |Y+| / |Y| is the fraction of negatives of each sample (non-batch dims)."""
    if input.dim() < 2:
        raise ValueError("balanced BCE needs a batch dimension and at least one more: (N, d1, ...)")
    per_sample = tuple(range(1, input.dim()))
    beta = 1 - target.mean(dim=per_sample, keepdim=True)
    weight = beta * target + (1 - beta) * (1 - target)
    return F.binary_cross_entropy_with_logits(input, target, weight=weight, reduction=reduction)
