"""Segmentation losses in torch: soft Dice, soft Jaccard, Tversky, Dice + CE, Lovasz, hard IoU.

The canonical calls are this project's own design (torch has none); the specs in
conformance/specs/segmentation.py document them. Region losses share one shape:
logits (N, C, *spatial), an integer label map (N, *spatial) or a float mask like the input,
soft counts per class (or per image and class), class selection, then 1 - score reduced over
the selected entries (a mean over no entry is 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

Classes = str | Sequence[int]


def _probabilities(input: torch.Tensor, activation: str) -> torch.Tensor:
    if activation == "softmax":
        return torch.softmax(input, dim=1)
    if activation == "sigmoid":
        return torch.sigmoid(input)
    raise ValueError(f"activation must be 'softmax' or 'sigmoid', not {activation!r}")


def _masks(
    input: torch.Tensor, target: torch.Tensor, ignore_index: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground truth (N, C, *spatial) in the input dtype, and the (N, 1, *spatial) valid mask."""
    if target.is_floating_point():
        return target.to(input.dtype), torch.ones_like(input[:, :1])
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else (
        target != ignore_index)
    safe = torch.where(valid, target, torch.zeros_like(target))
    g = F.one_hot(safe, input.shape[1]).movedim(-1, 1).to(input.dtype)
    mask = valid.unsqueeze(1).to(input.dtype)
    return g * mask, mask


def _sum_dims(input: torch.Tensor, per_image: bool) -> tuple[int, ...]:
    spatial = tuple(range(2, input.dim()))
    return spatial if per_image else (0, *spatial)


class _Sum:
    """Sums over the given dims; over none it is the identity (torch's x.sum(()) sums all)."""

    def __init__(self, dims: tuple[int, ...]) -> None:
        self.dims = dims

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(self.dims) if self.dims else x


def _soft_counts(input, target, activation, per_image, ignore_index):
    # Counted in at least float32: the score's partial derivatives (-num / den^2 for an
    # absent class with smooth 1e-5 is -1e5) overflow a half dtype before the chain rule
    # multiplies them by a probability's vanishing derivative. The loss is returned in the
    # input's dtype (_reduce_selected).
    input = input.to(torch.promote_types(input.dtype, torch.float32))
    g, mask = _masks(input, target, ignore_index)
    # where, not a product with the mask: an ignored pixel's gradient is 0 even where the
    # score's own partial derivative overflows a half dtype (inf * 0 would be NaN).
    probs = _probabilities(input, activation)
    p = torch.where(mask.bool(), probs, torch.zeros_like(probs))
    return p, g, _Sum(_sum_dims(input, per_image))


def _ratio(numerator: torch.Tensor, denominator: torch.Tensor,
           vanishes: torch.Tensor | None = None) -> torch.Tensor:
    """num / den, and 0 where den = 0: the limit as the predictions of an absent class vanish,
    so an underflowing probability cannot flip the score. Also 0, a constant, where the
    numerator is 0 whatever the predictions (`vanishes`: an absent class at smooth = 0): there
    num / den's backward, -num / den^2, is 0 / 0 once den^2 underflows (float16, den ~ 1e-7)."""
    empty = denominator == 0 if vanishes is None else (denominator == 0) | vanishes
    safe = torch.where(empty, torch.ones_like(denominator), denominator)
    # In at least float32: a half-precision den (a smooth of 1e-5, a probability of 4e-8) has
    # a square that underflows in the division's backward.
    wide = torch.promote_types(numerator.dtype, torch.float32)
    ratio = (numerator.to(wide) / safe.to(wide)).to(numerator.dtype)
    return torch.where(empty, torch.zeros_like(numerator), ratio)


def _reduce_selected(
    score: torch.Tensor, present: torch.Tensor, include_background: bool, classes: Classes,
    reduction: str, dtype: torch.dtype | None = None,
) -> torch.Tensor:
    loss = 1 - (score if dtype is None else score.to(dtype))
    if isinstance(classes, str):
        if classes not in ("all", "present"):
            raise ValueError(f"classes must be 'all', 'present' or a list, not {classes!r}")
        if not include_background:
            loss, present = loss[..., 1:], present[..., 1:]
        keep = present if classes == "present" else torch.ones_like(present)
    else:
        index = torch.as_tensor(list(classes), dtype=torch.long, device=loss.device)
        loss, keep = loss[..., index], torch.ones_like(present[..., index])
    loss = torch.where(keep, loss, torch.zeros_like(loss))
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        kept = keep.sum()
        # A mean over no selected entry is 0 (nothing to learn), not 0 / 0.
        return loss.sum() / kept.clamp(min=1)
    raise ValueError(f"reduction must be 'none', 'mean' or 'sum', not {reduction!r}")


def soft_dice_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    activation: str = "softmax",
    form: str = "standard",
    smooth: float = 0.0,
    include_background: bool = True,
    classes: Classes = "all",
    per_image: bool = False,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """1 - (2 sum pg + smooth) / (sum p + sum g + smooth); form 'squared' uses sum p^2 + sum g^2
    (Milletari et al. 2016)."""
    p, g, total = _soft_counts(input, target, activation, per_image, ignore_index)
    intersection = total(p * g)
    if form == "standard":
        denominator = total(p) + total(g)
    elif form == "squared":
        denominator = total(p * p) + total(g * g)
    else:
        raise ValueError(f"form must be 'standard' or 'squared', not {form!r}")
    present = total(g) > 0
    score = _ratio(2 * intersection + smooth, denominator + smooth, ~present & (smooth == 0))
    return _reduce_selected(score, present, include_background, classes, reduction,
                            input.dtype)


def tversky_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    alpha: float = 0.5,
    beta: float = 0.5,
    activation: str = "softmax",
    smooth: float = 0.0,
    include_background: bool = True,
    classes: Classes = "all",
    per_image: bool = False,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """1 - (TP + smooth) / (TP + alpha FP + beta FN + smooth) (Salehi et al. 2017)."""
    p, g, total = _soft_counts(input, target, activation, per_image, ignore_index)
    tp = total(p * g)
    fp = total(p * (1 - g))
    fn = total((1 - p) * g)
    present = total(g) > 0
    score = _ratio(tp + smooth, tp + alpha * fp + beta * fn + smooth, ~present & (smooth == 0))
    return _reduce_selected(score, present, include_background, classes, reduction,
                            input.dtype)


def soft_jaccard_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    activation: str = "softmax",
    smooth: float = 0.0,
    include_background: bool = True,
    classes: Classes = "all",
    per_image: bool = False,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """1 - (|X n Y| + smooth) / (|X u Y| + smooth), |X u Y| = TP + FP + FN (no cancellation)."""
    return tversky_loss(input, target, 1.0, 1.0, activation, smooth, include_background,
                        classes, per_image, ignore_index, reduction)


def dice_ce_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    lambda_dice: float = 1.0,
    lambda_ce: float = 1.0,
    smooth: float = 0.0,
    ignore_index: int | None = None,
) -> torch.Tensor:
    """lambda_dice * soft Dice (softmax, all classes, batch) + lambda_ce * cross-entropy."""
    dice = soft_dice_loss(input, target, smooth=smooth, ignore_index=ignore_index)
    ce = F.cross_entropy(input, target, ignore_index=-100 if ignore_index is None
                         else ignore_index)
    return lambda_dice * dice + lambda_ce * ce


def _lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovasz extension of the Jaccard loss at sorted errors (Berman et al. 2018,
    Alg. 1): the increments of 1 - J along the sorted order."""
    total = gt_sorted.sum()
    intersection = total - gt_sorted.cumsum(0)
    union = total + (1 - gt_sorted).cumsum(0)
    jaccard = 1 - intersection / union
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])


def _hinge_flat(logits: torch.Tensor, labels: torch.Tensor,
                ignore_index: int | None) -> torch.Tensor:
    if ignore_index is not None:
        keep = labels != ignore_index
        logits, labels = logits[keep], labels[keep]
    if logits.numel() == 0:
        return logits.sum() * 0  # every pixel ignored: no loss, and a zero gradient
    y = labels.to(logits.dtype)
    errors = 1 - logits * (2 * y - 1)
    errors_sorted, order = torch.sort(errors, descending=True)
    return torch.dot(F.relu(errors_sorted), _lovasz_grad(y[order]))


def _mean_over_images(losses: list[torch.Tensor], input: torch.Tensor) -> torch.Tensor:
    """The mean of per-image losses; over no image it is 0 (Berman et al.'s mean(...,
    empty=0)), connected to the input so that its backward runs."""
    return torch.stack(losses).mean() if losses else input.sum() * 0


def lovasz_hinge(
    input: torch.Tensor, target: torch.Tensor, per_image: bool = True,
    ignore_index: int | None = None,
) -> torch.Tensor:
    """Binary Lovasz hinge: logits (N, *spatial), labels {0, 1}; per_image averages images."""
    if per_image:
        return _mean_over_images([_hinge_flat(x.reshape(-1), y.reshape(-1), ignore_index)
                                  for x, y in zip(input, target, strict=True)], input)
    return _hinge_flat(input.reshape(-1), target.reshape(-1), ignore_index)


def _softmax_flat(probs: torch.Tensor, labels: torch.Tensor, classes: Classes,
                  ignore_index: int | None) -> torch.Tensor:
    num_classes = probs.shape[1]
    probs = probs.movedim(1, -1).reshape(-1, num_classes)
    labels = labels.reshape(-1)
    if ignore_index is not None:
        keep = labels != ignore_index
        probs, labels = probs[keep], labels[keep]
    if probs.numel() == 0:
        return probs.sum() * 0
    ids = range(num_classes) if isinstance(classes, str) else classes
    losses = []
    for c in ids:
        fg = (labels == c).to(probs.dtype)
        if classes == "present" and not bool(fg.any()):
            continue
        errors_sorted, order = torch.sort((fg - probs[:, c]).abs(), descending=True)
        losses.append(torch.dot(errors_sorted, _lovasz_grad(fg[order])))
    return torch.stack(losses).mean() if losses else probs.sum() * 0


def lovasz_softmax(
    input: torch.Tensor, target: torch.Tensor, classes: Classes = "present",
    per_image: bool = False, ignore_index: int | None = None,
) -> torch.Tensor:
    """Lovasz-softmax (Berman et al. 2018) on logits (N, C, *spatial), labels (N, *spatial)."""
    if isinstance(classes, str) and classes not in ("all", "present"):
        raise ValueError(f"classes must be 'all', 'present' or a list, not {classes!r}")
    probs = torch.softmax(input, dim=1)
    if per_image:
        return _mean_over_images([_softmax_flat(p[None], y[None], classes, ignore_index)
                                  for p, y in zip(probs, target, strict=True)], probs)
    return _softmax_flat(probs, target, classes, ignore_index)


def jaccard_index(
    input: torch.Tensor, target: torch.Tensor, num_classes: int,
    ignore_index: int | None = None, per_image: bool = False, empty: float = 1.0,
) -> torch.Tensor:
    """Hard per-class IoU of predicted labels (N, *spatial) against labels; float64 (exact
    ratios of counts); `empty` where a class is neither predicted nor present."""
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else (
        target != ignore_index)
    safe = torch.where(valid, target, torch.zeros_like(target))
    pred = F.one_hot(input, num_classes).bool() & valid[..., None]
    true = F.one_hot(safe, num_classes).bool() & valid[..., None]
    dims = tuple(range(1, input.dim())) if per_image else tuple(range(input.dim()))
    inter = (pred & true).sum(dims).double()
    union = (pred | true).sum(dims).double()
    iou = torch.where(union == 0, torch.full_like(union, empty), inter / union.clamp(min=1))
    if per_image:  # over no image the mean is 0, as Berman et al.'s mean(..., empty=0)
        return iou.sum(0) / max(iou.shape[0], 1)
    return iou
