"""The reductions shared by our implementations."""

from __future__ import annotations

import torch

REDUCTIONS = ("none", "mean", "sum")


def reduce_loss(
    loss: torch.Tensor, reduction: str, count: torch.Tensor | None = None
) -> torch.Tensor:
    """'none' keeps the elementwise loss, 'sum' adds it up, 'mean' divides the sum by `count`
    (default: the number of elements; a zero count gives NaN, as torch's losses do)."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean() if count is None else loss.sum() / count
    raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, not {reduction!r}")
