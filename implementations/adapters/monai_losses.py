"""monai.losses' DiceLoss under the soft_dice_loss and soft_jaccard_loss calls, its FocalLoss
(sigmoid) under the sigmoid_focal_loss call.

The mapping: softmax / sigmoid activation flags; a label map becomes monai's (B, 1, ...)
target with to_onehot_y; per_image is monai's batch=False; the spec's single smoothing term s
is monai's smooth_nr = smooth_dr = s for Dice, and 2 s for Jaccard (monai writes the Jaccard
score as (2 TP + nr) / (2 (TP + FP + FN) + dr)); form='squared' is squared_pred. monai wants at
least one spatial axis, so (N, C) inputs get a trailing one. Not applicable: class selection
other than 'all' (monai has none), and softmax, label maps or include_background=False on one
channel (monai warns and skips them).

FocalLoss takes (B, C, *) logits: inputs with fewer than two axes are one batch of one row
('none' gets its shape back); torchvision's negative alpha is monai's alpha=None.
"""

from __future__ import annotations

import torch

from conformance.guard import NotApplicable
from implementations.sources import import_sources

_MONAI = import_sources("monai.losses", ("dice", "focal_loss"))
_DICE = _MONAI["dice"]


def _call(input: torch.Tensor, target: torch.Tensor, activation: str, smooth: float,
          include_background: bool, classes: object, per_image: bool,
          ignore_index: int | None, reduction: str, **flags: bool) -> torch.Tensor:
    if not (isinstance(classes, str) and classes == "all"):
        raise NotApplicable("monai's DiceLoss has no class selection ('present' or a list)")
    label_map = not target.is_floating_point()
    if input.shape[1] == 1 and (activation == "softmax" or label_map or not include_background):
        # monai warns and skips softmax, one-hot encoding and include_background on one channel
        raise NotApplicable("monai's DiceLoss takes softmax, label maps and"
                            " include_background=False with 2+ channels only")
    if input.dim() == 2:
        input = input.unsqueeze(-1)
        target = target.unsqueeze(-1)
    loss = _DICE.DiceLoss(
        include_background=include_background, to_onehot_y=label_map,
        sigmoid=activation == "sigmoid", softmax=activation == "softmax",
        reduction=reduction, batch=not per_image, ignore_index=ignore_index, **flags,
        smooth_nr=smooth * (2 if flags.get("jaccard") else 1),
        smooth_dr=smooth * (2 if flags.get("jaccard") else 1))
    out = loss(input, target.unsqueeze(1) if label_map else target)
    if reduction == "none":
        return out.flatten(1) if per_image else out.reshape(-1)
    return out


def soft_dice_loss(input: torch.Tensor, target: torch.Tensor, activation: str = "softmax",
                   form: str = "standard", smooth: float = 0.0,
                   include_background: bool = True, classes: object = "all",
                   per_image: bool = False, ignore_index: int | None = None,
                   reduction: str = "mean") -> torch.Tensor:
    return _call(input, target, activation, smooth, include_background, classes, per_image,
                 ignore_index, reduction, squared_pred=form == "squared")


def soft_jaccard_loss(input: torch.Tensor, target: torch.Tensor, activation: str = "softmax",
                      smooth: float = 0.0, include_background: bool = True,
                      classes: object = "all", per_image: bool = False,
                      ignore_index: int | None = None, reduction: str = "mean") -> torch.Tensor:
    return _call(input, target, activation, smooth, include_background, classes, per_image,
                 ignore_index, reduction, jaccard=True)


def sigmoid_focal_loss(inputs: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25,
                       gamma: float = 2.0, reduction: str = "none") -> torch.Tensor:
    shape = inputs.shape
    if inputs.dim() < 2:
        inputs, targets = inputs.reshape(1, -1), targets.reshape(1, -1)
    loss = _MONAI["focal_loss"].FocalLoss(gamma=gamma, alpha=None if alpha < 0 else alpha,
                                          reduction=reduction)
    out = loss(inputs, targets)
    return out.reshape(shape) if reduction == "none" else out
