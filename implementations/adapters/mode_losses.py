"""The mapping shared by segmentation_models_pytorch and pytorch_toolbelt (smp's losses began
as a copy of toolbelt's and keep its calls).

Their region losses are modules built with a mode, classes, smooth and ignore_index:
- activation 'softmax' with a label map is mode 'multiclass'; 'sigmoid' with a float mask is
  'multilabel'. They one-hot encode label maps in multiclass mode only and take label maps only
  there, so softmax with a float mask and sigmoid with a label map are not applicable.
- They sum over the batch and space (the spec's per_image=False) and reduce by a mean over
  classes only: per_image=True, other reductions and classes='present' (no such switch: they
  zero classes absent from the target and still divide by the number of classes) are not
  applicable; include_background=False with classes='all' is the class list without class 0
  (a list of classes is taken as given, as the spec takes it).
- Their eps (1e-7, a clamp on the denominator) stays at the library's default: it is part of
  what the library computes.
"""

from __future__ import annotations

from typing import Any

import torch

from conformance.guard import NotApplicable
from implementations.adapters import given
from implementations.adapters.region_call import RegionCall


def mode(target: torch.Tensor, activation: str, library: str) -> str:
    label_map = not target.is_floating_point()
    if activation == "softmax" and label_map:
        return "multiclass"
    if activation == "sigmoid" and not label_map:
        return "multilabel"
    raise NotApplicable(f"{library} takes softmax with label maps and sigmoid with float masks"
                        " only")


def class_list(num_classes: int, classes: object, include_background: bool,
               library: str) -> list[int] | None:
    if isinstance(classes, str) and classes == "present":
        raise NotApplicable(f"{library} has no classes='present' (it zeroes classes absent from"
                            " the target and still divides by the number of classes)")
    if isinstance(classes, str):
        chosen = list(range(0 if include_background else 1, num_classes))
    else:  # the spec's reading: a list of classes is taken as given, background included
        chosen = list(classes)
    if not chosen:
        raise NotApplicable(f"{library} cannot select no class at all")
    return None if chosen == list(range(num_classes)) else chosen


def region(loss_class: Any, library: str, call: RegionCall, **extra: Any) -> torch.Tensor:
    """loss_class(mode=..., classes=..., smooth=..., ignore_index=..., **extra)(input, target)."""
    if call.form != "standard":
        raise NotApplicable(f"{library}'s DiceLoss has no squared form")
    if call.per_image is True:
        raise NotApplicable(f"{library} sums the batch together (no per-image scores)")
    if call.reduction != "mean":
        raise NotApplicable(f"{library}'s region losses reduce by 'mean' only,"
                            f" not {call.reduction!r}")
    if call.ignore_index is not None:
        extra["ignore_index"] = call.ignore_index  # toolbelt's JaccardLoss has no such argument
    loss = loss_class(mode=mode(call.target, call.activation, library),
                      classes=class_list(call.input.shape[1], call.classes,
                                         call.include_background, library),
                      **given(smooth=call.smooth), **extra)
    return loss(call.input, call.target)


def image_layout(input: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C) and (N, C, L) inputs in the (N, C, H, W) layout their Lovasz-softmax documents,
    with trailing spatial axes of size 1: it reads any 3-D input as sigmoid output (B, H, W)."""
    while input.dim() < 4:
        input, target = input.unsqueeze(-1), target.unsqueeze(-1)
    return input, target


def soft_cross_entropy(loss_class: Any, library: str, input: torch.Tensor, target: torch.Tensor,
                       weight: torch.Tensor | None, ignore_index: int, reduction: str,
                       label_smoothing: float) -> torch.Tensor:
    """SoftCrossEntropyLoss under cross_entropy's call: class indices, no class weights."""
    if weight is not None:
        raise NotApplicable(f"{library}'s SoftCrossEntropyLoss has no class weights")
    if target.is_floating_point():
        raise NotApplicable(f"{library}'s SoftCrossEntropyLoss takes class indices only")
    # The class axis is its `dim`: 1, or 0 for one unbatched sample.
    return loss_class(**given(reduction=reduction, smooth_factor=label_smoothing,
                              ignore_index=ignore_index),
                      dim=0 if input.dim() == 1 else 1)(input, target)


def soft_bce(loss_class: Any, input: torch.Tensor, target: torch.Tensor,
             weight: torch.Tensor | None, reduction: str,
             pos_weight: torch.Tensor | None) -> torch.Tensor:
    """SoftBCEWithLogitsLoss under binary_cross_entropy_with_logits' call."""
    # ignore_index=None: the spec has none, and the default -100 never occurs in [0, 1].
    return loss_class(weight=weight, ignore_index=None, reduction=reduction,
                      pos_weight=pos_weight)(input, target)
