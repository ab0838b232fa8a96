"""Memory layouts the engine hands to targets.

Every property but one passes contiguous tensors, whatever layout a NumPy transform left its
arrays in, so a value never depends on strides. `accepts_non_contiguous_input` passes `strided`
copies, and its reproducer builds them the same way.
"""

from __future__ import annotations

import torch

CONTIGUOUS, STRIDED = "contiguous", "strided"


def strided(tensor: torch.Tensor) -> torch.Tensor:
    """The same values in a layout no `.view` can flatten: the axes in reverse memory order
    (a transposed batch, channels-last) and every element one slot apart (a slice `x[..., ::2]`).
    Non-contiguous for any tensor of two or more elements."""
    buffer = torch.zeros(*reversed(tensor.shape), 2, dtype=tensor.dtype, device=tensor.device)
    out = buffer[..., 0].permute(tuple(reversed(range(tensor.ndim))))
    out.copy_(tensor.detach())
    return out
