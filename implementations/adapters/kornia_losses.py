"""kornia.losses under the canonical calls.

binary_focal_loss_with_logits is the sigmoid focal loss; it spells a disabled alpha as None
(torchvision: a negative alpha) and requires a (B, C, *) layout, so inputs with fewer than two
dimensions are given a leading batch dimension, and 'none' outputs lose it again.
"""

from __future__ import annotations

import torch

from implementations.sources import import_sources

_FOCAL = import_sources("kornia.losses", ("focal",))["focal"]


def sigmoid_focal_loss(inputs: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25,
                       gamma: float = 2.0, reduction: str = "none") -> torch.Tensor:
    shape = inputs.shape
    if inputs.dim() < 2:
        inputs, targets = inputs.reshape(1, -1), targets.reshape(1, -1)
    out = _FOCAL.binary_focal_loss_with_logits(
        inputs, targets, alpha=None if alpha < 0 else alpha, gamma=gamma, reduction=reduction)
    return out.reshape(shape) if reduction == "none" else out
