"""monai.losses' DiceLoss under the soft_dice_loss and soft_jaccard_loss calls, its FocalLoss
(sigmoid) under the sigmoid_focal_loss call.

The mapping: softmax / sigmoid activation flags; a label map becomes monai's (B, 1, ...)
target with to_onehot_y; per_image is monai's batch=False; the spec's single smoothing term s
is monai's smooth_nr = smooth_dr = s. monai writes the Jaccard score as
(2 TP + nr) / (2 (TP + FP + FN) + dr), the soft_jaccard_loss variant smoothing='doubled',
which its adapter declares (conformance.variants); form='squared' is squared_pred. monai wants at
least one spatial axis, so (N, C) inputs get a trailing one. Not applicable: class selection
other than 'all' (monai has none), and softmax, label maps or include_background=False on one
channel (monai warns and skips them).

FocalLoss takes (B, C, *) logits: inputs with fewer than two axes are one batch of one row
('none' gets its shape back); torchvision's negative alpha is monai's alpha=None.

A parameter the caller leaves out is left out of monai's call (LIBRARY_DEFAULT): monai's
defaults are what is checked (no activation, smooth 1e-5, batch=False, FocalLoss's alpha=None
and reduction 'mean'; implementations/deviations.toml records each difference).
"""

from __future__ import annotations

import torch

from conformance.guard import NotApplicable
from implementations.adapters import LIBRARY_DEFAULT, alpha_or_none, given
from implementations.sources import import_sources

_MONAI = import_sources("monai.losses", ("dice", "focal_loss"))
_DICE = _MONAI["dice"]


def _call(input: torch.Tensor, target: torch.Tensor, activation: str, smooth: float,
          include_background: bool, classes: object, per_image: bool,
          ignore_index: int | None, reduction: str, **flags: bool) -> torch.Tensor:
    if not (isinstance(classes, str) and classes == "all"):
        raise NotApplicable("monai's DiceLoss has no class selection ('present' or a list)")
    label_map = not target.is_floating_point()
    if input.shape[1] == 1 and (activation == "softmax" or label_map
                                or include_background is False):
        # monai warns and skips softmax, one-hot encoding and include_background on one channel
        raise NotApplicable("monai's DiceLoss takes softmax, label maps and"
                            " include_background=False with 2+ channels only")
    if input.dim() == 2:
        input = input.unsqueeze(-1)
        target = target.unsqueeze(-1)
    activations = {} if activation is LIBRARY_DEFAULT else {
        "sigmoid": activation == "sigmoid", "softmax": activation == "softmax"}
    loss = _DICE.DiceLoss(
        to_onehot_y=label_map, **activations, **flags,
        **given(include_background=include_background, reduction=reduction,
                ignore_index=ignore_index, smooth_nr=smooth, smooth_dr=smooth,
                batch=per_image if per_image is LIBRARY_DEFAULT else not per_image))
    out = loss(input, target.unsqueeze(1) if label_map else target)
    if reduction == "none":
        return out.reshape(-1) if loss.batch else out.flatten(1)
    return out


def soft_dice_loss(input: torch.Tensor, target: torch.Tensor,
                   activation: str = LIBRARY_DEFAULT, form: str = "standard",
                   smooth: float = LIBRARY_DEFAULT, include_background: bool = LIBRARY_DEFAULT,
                   classes: object = "all", per_image: bool = LIBRARY_DEFAULT,
                   ignore_index: int | None = LIBRARY_DEFAULT,
                   reduction: str = LIBRARY_DEFAULT) -> torch.Tensor:
    return _call(input, target, activation, smooth, include_background, classes, per_image,
                 ignore_index, reduction, squared_pred=form == "squared")


def soft_jaccard_loss(input: torch.Tensor, target: torch.Tensor,
                      activation: str = LIBRARY_DEFAULT, smooth: float = LIBRARY_DEFAULT,
                      include_background: bool = LIBRARY_DEFAULT, classes: object = "all",
                      per_image: bool = LIBRARY_DEFAULT,
                      ignore_index: int | None = LIBRARY_DEFAULT,
                      reduction: str = LIBRARY_DEFAULT) -> torch.Tensor:
    return _call(input, target, activation, smooth, include_background, classes, per_image,
                 ignore_index, reduction, jaccard=True)


soft_jaccard_loss.conformance_conventions = {"smoothing": "doubled"}  # type: ignore[attr-defined]


def sigmoid_focal_loss(inputs: torch.Tensor, targets: torch.Tensor,
                       alpha: float = LIBRARY_DEFAULT, gamma: float = LIBRARY_DEFAULT,
                       reduction: str = LIBRARY_DEFAULT) -> torch.Tensor:
    shape = inputs.shape
    if inputs.dim() < 2:
        inputs, targets = inputs.reshape(1, -1), targets.reshape(1, -1)
    alpha = alpha_or_none(alpha)
    loss = _MONAI["focal_loss"].FocalLoss(**given(gamma=gamma, alpha=alpha, reduction=reduction))
    out = loss(inputs, targets)
    return out.reshape(shape) if out.shape == inputs.shape else out  # 'none' its shape back
