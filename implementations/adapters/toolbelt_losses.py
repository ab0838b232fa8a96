"""pytorch_toolbelt.losses under the canonical calls.

The package's `__init__` imports OpenCV; its loss modules need torch only, plus two helper
modules of pytorch_toolbelt.utils, so they are imported through implementations.sources.

- DiceLoss and JaccardLoss: mapped as smp's (implementations.adapters.mode_losses). toolbelt
  scores Dice as (2I + s) / (P + G + s), so the spec's s is toolbelt's s.
- LovaszLoss (its forward takes logits; classes 'present' only) and BinaryLovaszLoss.
- focal_loss_with_logits is the sigmoid focal loss (alpha None where torchvision writes a
  negative alpha); softmax_focal_loss_with_logits takes the spec's per-class alpha as its
  class_weights.
- QualityFocalLoss, SoftCrossEntropyLoss (index targets, smooth_factor = label_smoothing) and
  SoftBCEWithLogitsLoss (no ignore_index: the spec has none) as they are.
- balanced_binary_cross_entropy_with_logits with gamma = 1 (HED's weights). toolbelt counts
  negatives over the whole tensor, the spec per sample: the two are the same computation for
  one sample, and several samples are not applicable.
"""

from __future__ import annotations

import torch

from conformance.guard import NotApplicable
from implementations.adapters import LIBRARY_DEFAULT, adapts, alpha_or_none, given
from implementations.adapters.mode_losses import (
    image_layout,
    region,
    soft_bce,
    soft_cross_entropy,
)
from implementations.adapters.region_call import RegionCall, region_adapter
from implementations.sources import Sources

# Its decorators use the deprecated torch.cuda.amp.autocast: noise at import, not a result.
_TB = Sources(
    "pytorch_toolbelt.losses",
    ("dice", "jaccard", "lovasz", "functional", "quality_focal_loss", "soft_ce", "soft_bce",
     "balanced_bce"),
    helpers={"pytorch_toolbelt.utils": ("support", "torch_utils")}, quiet=(FutureWarning,))
_LIBRARY = "pytorch_toolbelt"


def _dice(call: RegionCall) -> torch.Tensor:
    return region(_TB["dice"].DiceLoss, "toolbelt", call)


def _jaccard(call: RegionCall) -> torch.Tensor:
    if call.ignore_index is not None:
        raise NotApplicable("toolbelt's JaccardLoss has no ignore_index")
    return region(_TB["jaccard"].JaccardLoss, "toolbelt", call)


# toolbelt zeroes a class with no ground truth (smp inherited it).
soft_dice_loss = region_adapter("soft_dice_loss", library=_LIBRARY, reductions=("mean",),
                                library_defaults=("smooth", "per_image"),
                                conventions={"absent_class": "zero"})(_dice)
soft_jaccard_loss = region_adapter("soft_jaccard_loss", library=_LIBRARY, reductions=("mean",),
                                   library_defaults=("smooth", "per_image"),
                                   conventions={"absent_class": "zero"})(_jaccard)


@adapts("lovasz_softmax", library=_LIBRARY)
def lovasz_softmax(input: torch.Tensor, target: torch.Tensor, classes: object = "present",
                   per_image: bool = LIBRARY_DEFAULT,
                   ignore_index: int | None = LIBRARY_DEFAULT) -> torch.Tensor:
    if not (isinstance(classes, str) and classes == "present"):
        raise NotApplicable("toolbelt's LovaszLoss averages the present classes only")
    input, target = image_layout(input, target)
    # forward(logits, target), as toolbelt names it: what it does with them is reported as is.
    return _TB["lovasz"].LovaszLoss(**given(per_image=per_image, ignore=ignore_index))(
        input, target)


@adapts("lovasz_hinge", library=_LIBRARY)
def lovasz_hinge(input: torch.Tensor, target: torch.Tensor, per_image: bool = LIBRARY_DEFAULT,
                 ignore_index: int | None = LIBRARY_DEFAULT) -> torch.Tensor:
    return _TB["lovasz"].BinaryLovaszLoss(
        **given(per_image=per_image, ignore_index=ignore_index))(input, target)


@adapts("sigmoid_focal_loss", library=_LIBRARY)
def sigmoid_focal_loss(inputs: torch.Tensor, targets: torch.Tensor,
                       alpha: float = LIBRARY_DEFAULT, gamma: float = LIBRARY_DEFAULT,
                       reduction: str = LIBRARY_DEFAULT) -> torch.Tensor:
    alpha = alpha_or_none(alpha)
    return _TB["functional"].focal_loss_with_logits(
        inputs, targets, **given(gamma=gamma, alpha=alpha, reduction=reduction))


@adapts("softmax_focal_loss", library=_LIBRARY)
def softmax_focal_loss(input: torch.Tensor, target: torch.Tensor,
                       alpha: torch.Tensor | None = LIBRARY_DEFAULT,
                       gamma: float = LIBRARY_DEFAULT, ignore_index: int = LIBRARY_DEFAULT,
                       reduction: str = LIBRARY_DEFAULT) -> torch.Tensor:
    if input.dim() == 1:
        raise NotApplicable("toolbelt's softmax focal loss takes batched (N, C, ...) logits")
    return _TB["functional"].softmax_focal_loss_with_logits(
        input, target, **given(class_weights=alpha, gamma=gamma, reduction=reduction,
                               ignore_index=ignore_index))


@adapts("quality_focal_loss", library=_LIBRARY)
def quality_focal_loss(input: torch.Tensor, target: torch.Tensor, beta: float = LIBRARY_DEFAULT,
                       reduction: str = LIBRARY_DEFAULT) -> torch.Tensor:
    return _TB["quality_focal_loss"].QualityFocalLoss(**given(beta=beta, reduction=reduction))(
        input, target)


@adapts("cross_entropy", library=_LIBRARY)
def cross_entropy(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                  ignore_index: int = LIBRARY_DEFAULT, reduction: str = LIBRARY_DEFAULT,
                  label_smoothing: float = LIBRARY_DEFAULT) -> torch.Tensor:
    return soft_cross_entropy(_TB["soft_ce"].SoftCrossEntropyLoss, "toolbelt", input, target,
                              weight, ignore_index, reduction, label_smoothing)


@adapts("binary_cross_entropy_with_logits", library=_LIBRARY)
def binary_cross_entropy_with_logits(input: torch.Tensor, target: torch.Tensor,
                                     weight: torch.Tensor | None = None,
                                     reduction: str = "mean",
                                     pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    return soft_bce(_TB["soft_bce"].SoftBCEWithLogitsLoss, input, target, weight, reduction,
                    pos_weight)


# toolbelt's formula adds 1e-7 to the count (the variant count_eps=1e-7), but it divides
# integer counts in float32, where the 1e-7 mostly rounds away: it follows neither exactly.
@adapts("balanced_binary_cross_entropy_with_logits", library=_LIBRARY)
def balanced_binary_cross_entropy_with_logits(input: torch.Tensor, target: torch.Tensor,
                                              reduction: str = "mean") -> torch.Tensor:
    if input.shape[0] != 1:
        raise NotApplicable("toolbelt balances over the whole batch, the spec per sample:"
                            " they coincide for one sample")
    # gamma is left to the library (1.0): no spec defines toolbelt's power on the weights,
    # which it applies twice (pos_weight = beta^gamma, then pos_weight^gamma in the term).
    return _TB["balanced_bce"].balanced_binary_cross_entropy_with_logits(
        input, target, reduction=reduction)
