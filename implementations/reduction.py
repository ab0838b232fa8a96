"""The reductions shared by our implementations."""

from __future__ import annotations

import torch

from reference.reduction import REDUCTIONS


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
        if count is None:
            return loss.mean()
        # Summed in float32 for half dtypes, as loss.mean() accumulates: eight losses of 1e4
        # have a mean that fits float16 and a sum that does not.
        wide = torch.float32 if loss.dtype in (torch.float16, torch.bfloat16) else loss.dtype
        return (loss.sum(dtype=wide) / count).to(loss.dtype)
    raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, not {reduction!r}")
