"""segmentation_models_pytorch.losses under the canonical calls.

smp's region losses (DiceLoss, JaccardLoss, TverskyLoss) are mapped as pytorch_toolbelt's
(implementations.adapters.mode_losses: modes, class lists, what is not applicable), and:
- smp scores (I + s) / (I + a FP + b FN + s) with a = b = 1/2 for Dice: the soft_dice_loss
  variant smoothing='tversky', which the adapter declares (conformance.variants); Jaccard and
  Tversky are the specs' own. form='squared' is not applicable.
The functions smp's modules are built on are used where the module adds nothing the spec
needs: focal_loss_with_logits (sigmoid focal) and softmax_focal_loss_with_logits.
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

_SMP = Sources("segmentation_models_pytorch.losses",
               ("dice", "jaccard", "tversky", "lovasz", "soft_ce", "soft_bce",
                "_functional"))
_LIBRARY = "segmentation_models_pytorch"
_CLASSES = {"soft_dice_loss": ("dice", "DiceLoss"),
            "soft_jaccard_loss": ("jaccard", "JaccardLoss"),
            "tversky_loss": ("tversky", "TverskyLoss")}


def _region(call: RegionCall) -> torch.Tensor:
    module, cls = _CLASSES[call.spec]
    weights = {"alpha": call.alpha, "beta": call.beta} if call.spec == "tversky_loss" else {}
    return region(getattr(_SMP[module], cls), "smp", call, **weights)


# smp zeroes a class with no ground truth and takes the intersection as sum min(p, g) (0.5+);
# its Dice is the Tversky index at alpha = beta = 1/2, smoothing included (0.3+).
_SCORING = {"absent_class": "zero", "intersection": "min"}
soft_dice_loss = region_adapter("soft_dice_loss", library=_LIBRARY, reductions=("mean",),
                                library_defaults=("smooth", "per_image"),
                                conventions={"smoothing": "tversky", **_SCORING})(_region)
soft_jaccard_loss = region_adapter("soft_jaccard_loss", library=_LIBRARY, reductions=("mean",),
                                   library_defaults=("smooth", "per_image"),
                                   conventions=_SCORING)(_region)
tversky_loss = region_adapter("tversky_loss", library=_LIBRARY, reductions=("mean",),
                              library_defaults=("smooth", "per_image"),
                              conventions=_SCORING)(_region)


@adapts("lovasz_softmax", library=_LIBRARY)
def lovasz_softmax(input: torch.Tensor, target: torch.Tensor, classes: object = "present",
                   per_image: bool = LIBRARY_DEFAULT,
                   ignore_index: int | None = LIBRARY_DEFAULT) -> torch.Tensor:
    if not (isinstance(classes, str) and classes == "present"):
        raise NotApplicable("smp's LovaszLoss averages the present classes only")
    input, target = image_layout(input, target)
    return _SMP["lovasz"].LovaszLoss(
        mode="multiclass", **given(per_image=per_image, ignore_index=ignore_index))(input, target)


@adapts("lovasz_hinge", library=_LIBRARY)
def lovasz_hinge(input: torch.Tensor, target: torch.Tensor, per_image: bool = LIBRARY_DEFAULT,
                 ignore_index: int | None = LIBRARY_DEFAULT) -> torch.Tensor:
    return _SMP["lovasz"].LovaszLoss(
        mode="binary", **given(per_image=per_image, ignore_index=ignore_index))(input, target)


# smp's p_t is exp(-BCE), mmdetection's form.
@adapts("sigmoid_focal_loss", library=_LIBRARY, conventions={"soft_targets": "exp_bce"})
def sigmoid_focal_loss(inputs: torch.Tensor, targets: torch.Tensor,
                       alpha: float = LIBRARY_DEFAULT, gamma: float = LIBRARY_DEFAULT,
                       reduction: str = LIBRARY_DEFAULT) -> torch.Tensor:
    alpha = alpha_or_none(alpha)
    return _SMP["_functional"].focal_loss_with_logits(
        inputs, targets, **given(gamma=gamma, alpha=alpha, reduction=reduction))


# smp's 'mean' divides by every target, ignored ones included (its docstring says so).
@adapts("softmax_focal_loss", library=_LIBRARY, conventions={"mean_over": "all"})
def softmax_focal_loss(input: torch.Tensor, target: torch.Tensor,
                       alpha: torch.Tensor | None = None, gamma: float = LIBRARY_DEFAULT,
                       ignore_index: int = -100,
                       reduction: str = LIBRARY_DEFAULT) -> torch.Tensor:
    if alpha is not None:
        raise NotApplicable("smp's softmax focal loss has no per-class alpha")
    if ignore_index != -100:
        raise NotApplicable("smp's softmax focal loss ignores index -100 only (nll_loss's)")
    if input.dim() == 1:
        # smp takes the classes on axis 1: one unbatched sample becomes a batch of one.
        out = _SMP["_functional"].softmax_focal_loss_with_logits(
            input.unsqueeze(0), target.unsqueeze(0), **given(gamma=gamma, reduction=reduction))
        return out.squeeze(0) if reduction == "none" else out
    return _SMP["_functional"].softmax_focal_loss_with_logits(
        input, target, **given(gamma=gamma, reduction=reduction))


@adapts("cross_entropy", library=_LIBRARY)
def cross_entropy(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                  ignore_index: int = LIBRARY_DEFAULT, reduction: str = LIBRARY_DEFAULT,
                  label_smoothing: float = LIBRARY_DEFAULT) -> torch.Tensor:
    return soft_cross_entropy(_SMP["soft_ce"].SoftCrossEntropyLoss, "smp", input, target,
                              weight, ignore_index, reduction, label_smoothing)


@adapts("binary_cross_entropy_with_logits", library=_LIBRARY)
def binary_cross_entropy_with_logits(input: torch.Tensor, target: torch.Tensor,
                                     weight: torch.Tensor | None = None,
                                     reduction: str = "mean",
                                     pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    return soft_bce(_SMP["soft_bce"].SoftBCEWithLogitsLoss, input, target, weight, reduction,
                    pos_weight)
