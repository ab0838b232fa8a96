"""fvcore.nn's losses (Detectron2's) under the canonical calls.

fvcore's sigmoid_focal_loss has torchvision's formula and arguments but alpha defaults to -1
(disabled), not 0.25; giou_loss is generalized_box_iou_loss under another name; smooth_l1_loss
takes beta positionally, with no default, and reduces with 'none' by default. A parameter the
caller leaves out is left out of fvcore's call (LIBRARY_DEFAULT): fvcore's defaults are what is
checked.
"""

from __future__ import annotations

import torch

from implementations.adapters import LIBRARY_DEFAULT, adapts, given
from implementations.sources import Sources

_NN = Sources("fvcore.nn", ("focal_loss", "giou_loss", "smooth_l1_loss"))


@adapts("sigmoid_focal_loss", library="fvcore")
def sigmoid_focal_loss(inputs: torch.Tensor, targets: torch.Tensor,
                       alpha: float = LIBRARY_DEFAULT, gamma: float = LIBRARY_DEFAULT,
                       reduction: str = LIBRARY_DEFAULT) -> torch.Tensor:
    return _NN["focal_loss"].sigmoid_focal_loss(
        inputs, targets, **given(alpha=alpha, gamma=gamma, reduction=reduction))


@adapts("generalized_box_iou_loss", library="fvcore")
def generalized_box_iou_loss(boxes1: torch.Tensor, boxes2: torch.Tensor,
                             reduction: str = LIBRARY_DEFAULT,
                             eps: float = LIBRARY_DEFAULT) -> torch.Tensor:
    return _NN["giou_loss"].giou_loss(boxes1, boxes2, **given(reduction=reduction, eps=eps))


# fvcore's 'mean' of no element is 0 (loss.mean() if loss.numel() > 0 else 0.0 * loss.sum()).
@adapts("smooth_l1_loss", library="fvcore", conventions={"empty_mean": "zero"})
def smooth_l1_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = LIBRARY_DEFAULT,
                   beta: float = LIBRARY_DEFAULT) -> torch.Tensor:
    return _NN["smooth_l1_loss"].smooth_l1_loss(input, target,
                                                **given(beta=beta, reduction=reduction))
