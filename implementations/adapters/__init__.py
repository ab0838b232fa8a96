"""Adapters: third-party loss code presented under the canonical specs' calls.

An adapter maps names and layouts (argument names, layouts, how a disabled alpha is spelled)
and nothing else: a parameter the caller leaves out is left out of the library's call
(LIBRARY_DEFAULT), and a convention the library documents is declared, not converted
(conformance.variants); what the library computes, including its dtype, NaNs and errors,
reaches the checks unchanged. Each module imports its library lazily through
implementations.sources and raises ImportError (LibraryMissing) when the library is absent, so
its targets are skipped, never failed.

ADAPTERS lists, per library, (spec, "module:attr") targets; `python -m conformance run
--libraries` checks each installed one.
"""

from __future__ import annotations

from typing import Any


class _LibraryDefault:
    """The default of an adapter's parameter that a library defaults itself: a call that leaves
    the parameter out leaves it out of the library's call too, so the library's own default is
    what the checks see (the specs draw omitted parameters), not the spec's."""

    def __repr__(self) -> str:
        return "<the library's default>"


LIBRARY_DEFAULT: Any = _LibraryDefault()


def alpha_or_none(alpha: Any) -> Any:
    """torchvision's alpha as libraries that spell a disabled alpha None take it: a negative
    alpha is None; the library's default stays the library's default."""
    return None if alpha is not LIBRARY_DEFAULT and alpha < 0 else alpha


def given(**kwargs: Any) -> dict[str, Any]:
    """The keyword arguments the caller gave (those not left at LIBRARY_DEFAULT)."""
    return {k: v for k, v in kwargs.items() if v is not LIBRARY_DEFAULT}


ADAPTERS: dict[str, tuple[tuple[str, str], ...]] = {
    "torchvision": (
        ("sigmoid_focal_loss", "implementations.torchvision_ops:sigmoid_focal_loss"),
        ("generalized_box_iou_loss", "implementations.torchvision_ops:generalized_box_iou_loss"),
        ("distance_box_iou_loss", "implementations.torchvision_ops:distance_box_iou_loss"),
        ("complete_box_iou_loss", "implementations.torchvision_ops:complete_box_iou_loss"),
        ("box_iou", "implementations.torchvision_ops:box_iou"),
        ("generalized_box_iou", "implementations.torchvision_ops:generalized_box_iou"),
    ),
    "fvcore": (
        ("sigmoid_focal_loss", "implementations.adapters.fvcore_nn:sigmoid_focal_loss"),
        ("generalized_box_iou_loss", "implementations.adapters.fvcore_nn:generalized_box_iou_loss"),
        ("smooth_l1_loss", "implementations.adapters.fvcore_nn:smooth_l1_loss"),
    ),
    "kornia": (
        ("sigmoid_focal_loss", "implementations.adapters.kornia_losses:sigmoid_focal_loss"),
        ("softmax_focal_loss", "implementations.adapters.kornia_losses:softmax_focal_loss"),
        ("lovasz_hinge", "implementations.adapters.kornia_losses:lovasz_hinge"),
        ("lovasz_softmax", "implementations.adapters.kornia_losses:lovasz_softmax"),
    ),
    "timm": (
        ("cross_entropy", "implementations.adapters.timm_loss:cross_entropy"),
    ),
    "monai": (
        ("soft_dice_loss", "implementations.adapters.monai_losses:soft_dice_loss"),
        ("soft_jaccard_loss", "implementations.adapters.monai_losses:soft_jaccard_loss"),
        ("sigmoid_focal_loss", "implementations.adapters.monai_losses:sigmoid_focal_loss"),
    ),
    "segmentation_models_pytorch": tuple(
        (spec, f"implementations.adapters.smp_losses:{spec}") for spec in (
            "soft_dice_loss", "soft_jaccard_loss", "tversky_loss", "lovasz_softmax",
            "lovasz_hinge", "sigmoid_focal_loss", "softmax_focal_loss", "cross_entropy",
            "binary_cross_entropy_with_logits")),
    "pytorch_toolbelt": tuple(
        (spec, f"implementations.adapters.toolbelt_losses:{spec}") for spec in (
            "soft_dice_loss", "soft_jaccard_loss", "lovasz_softmax", "lovasz_hinge",
            "sigmoid_focal_loss", "softmax_focal_loss", "quality_focal_loss", "cross_entropy",
            "binary_cross_entropy_with_logits", "balanced_binary_cross_entropy_with_logits")),
    # A port outside torch: JAX through a torch.autograd.Function bridge, values and gradients.
    "optax": tuple(
        (spec, f"implementations.adapters.optax_losses:{spec}") for spec in (
            "sigmoid_focal_loss", "binary_cross_entropy_with_logits", "cross_entropy",
            "huber_loss", "mse_loss", "kl_div", "soft_dice_loss", "soft_jaccard_loss",
            "tversky_loss")),
}

DISTRIBUTIONS = {"torchvision": "torchvision", "fvcore": "fvcore", "kornia": "kornia",
                 "timm": "timm", "monai": "monai",
                 "segmentation_models_pytorch": "segmentation_models_pytorch",
                 "pytorch_toolbelt": "pytorch_toolbelt", "optax": "optax"}
