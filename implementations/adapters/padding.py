"""Inputs padded to a few lengths, for adapters of compiled (JAX) losses.

JAX compiles a program per input shape, about a tenth to a quarter of a second each, and a
check draws many shapes. Padding the rows of a per-row loss to one of a few lengths, then
slicing the padding's losses off, lets the shapes drawn share a few compiled programs. The
padding is a torch op, so no gradient reaches it and the real rows' gradients are the
library's own. Only where each row's loss is its own: padding would enter a library's sums and
counts.
"""

from __future__ import annotations

import torch


def bucket(n: int) -> int:
    """The length n rows are padded to: 16, or the power of four at or above n."""
    size = 16
    while size < n:
        size *= 4
    return size


def padded_rows(tensor: torch.Tensor, rows: int) -> torch.Tensor:
    """The tensor's leading axis padded with zeros to `rows`."""
    pad = [0, 0] * (tensor.dim() - 1) + [0, rows - tensor.shape[0]]
    return torch.nn.functional.pad(tensor, pad)
