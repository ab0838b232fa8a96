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
from implementations.adapters import LIBRARY_DEFAULT, adapts, alpha_or_none, given
from implementations.adapters.region_call import RegionCall, region_adapter
from implementations.sources import Sources

_MONAI = Sources("monai.losses", ("dice", "focal_loss"))
# monai's DiceLoss defaults every one of these itself.
_MONAI_DEFAULTS = ("activation", "smooth", "include_background", "per_image", "ignore_index",
                   "reduction")


def _dice_loss(call: RegionCall) -> torch.Tensor:
    """DiceLoss (jaccard=True for the Jaccard loss, squared_pred for the squared form)."""
    input, target, classes = call.input, call.target, call.classes
    if not (isinstance(classes, str) and classes == "all"):
        raise NotApplicable("monai's DiceLoss has no class selection ('present' or a list)")
    label_map = not target.is_floating_point()
    if input.shape[1] == 1 and (call.activation == "softmax" or label_map
                                or call.include_background is False):
        # monai warns and skips softmax, one-hot encoding and include_background on one channel
        raise NotApplicable("monai's DiceLoss takes softmax, label maps and"
                            " include_background=False with 2+ channels only")
    if input.dim() == 2:
        input = input.unsqueeze(-1)
        target = target.unsqueeze(-1)
    activations = {} if call.activation is LIBRARY_DEFAULT else {
        "sigmoid": call.activation == "sigmoid", "softmax": call.activation == "softmax"}
    per_image = call.per_image
    loss = _MONAI["dice"].DiceLoss(
        to_onehot_y=label_map, **activations, squared_pred=call.form == "squared",
        jaccard=call.spec == "soft_jaccard_loss",
        **given(include_background=call.include_background, reduction=call.reduction,
                ignore_index=call.ignore_index, smooth_nr=call.smooth, smooth_dr=call.smooth,
                batch=per_image if per_image is LIBRARY_DEFAULT else not per_image))
    out = loss(input, target.unsqueeze(1) if label_map else target)
    if call.reduction == "none":
        return out.reshape(-1) if loss.batch else out.flatten(1)
    return out


# monai divides as written: a 0 / 0 score (smooth 0) is NaN.
soft_dice_loss = region_adapter("soft_dice_loss", library="monai",
                                library_defaults=_MONAI_DEFAULTS,
                                conventions={"empty_score": "nan"})(_dice_loss)
soft_jaccard_loss = region_adapter("soft_jaccard_loss", library="monai",
                                   library_defaults=_MONAI_DEFAULTS,
                                   conventions={"smoothing": "doubled",
                                                "empty_score": "nan"})(_dice_loss)


@adapts("sigmoid_focal_loss", library="monai")
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
