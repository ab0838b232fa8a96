"""Segmentation losses in float64: soft Dice, soft Jaccard, Tversky, Dice + CE, the Lovasz
hinge and Lovasz-softmax, and the hard Jaccard index (IoU) they stand in for.

torch has none of these, so the calls are this project's design, shared by the region losses:

    loss(input, target, activation='softmax', smooth=0.0, include_background=True,
         classes='all', per_image=False, ignore_index=None, reduction='mean')

Inputs. ``input`` holds logits of shape (N, C, *spatial) (ndim >= 2; spatial may be empty).
``activation`` turns them into probabilities p: 'softmax' over the class axis 1, or 'sigmoid'
elementwise. ``target`` is either

- an integer label map of shape (N, *spatial) with values in [0, C) or equal to
  ``ignore_index``; it is one-hot encoded over C, and an ignored pixel leaves every sum (both
  its p and its g are 0); or
- a float (or bool) mask g of the input's shape with values in [0, 1]: one-hot, soft or
  multi-label. ``ignore_index`` is for label maps only.

Soft counts, per (image, class) when ``per_image`` else per class (summed over the batch and
the spatial axes):

    I = sum p g,   P = sum p,   G = sum g,   FP = sum p (1 - g),   FN = sum (1 - p) g

Class selection acts on the score array S, (N, C) with per_image else (C,): ``classes`` is
'all', 'present' (the entries with G > 0, per image when per_image) or a list of class ids,
which selects exactly those columns in that order (a class listed twice counts twice);
``include_background=False`` drops class 0 from 'all' and 'present' and is not consulted for a
list. The loss array is L = 1 - S over the selected columns, and the reductions are

    'none' -> L, shape (N, C') or (C',); an entry that 'present' leaves out is 0;
    'sum'  -> the sum of the kept entries;
    'mean' -> that sum / the number of kept entries (``kept_entries``); a mean over no entry
              is 0.0, not nan: Berman et al.'s ``mean(..., empty=0)``, so that a batch with
              nothing to segment (every pixel ignored, no class present) costs nothing.

Zero denominators. With smooth = 0 a loss whose denominator is 0 (nothing predicted and
nothing present) is 1 (score 0): the limit of FP / (P + 0) = 1 as the predictions of an absent
class vanish (see ``_ratio``), so the loss does not jump where a probability underflows. With
smooth > 0 the formulas themselves give (0 + smooth) / (0 + smooth) = 1, a loss of 0.

Accuracy. 1 - p is not formed by subtraction: it is sigma(-x) for the sigmoid and
-expm1(log p) for the softmax, so confident predictions keep their small complements. Each
loss is written as a ratio of sums of non-negative terms, e.g. 1 - Dice = (FP + FN) / (P + G),
so a loss near 0 keeps its relative accuracy instead of being the rounding error of 1 - S.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy.special import expit

from reference.classification import cross_entropy, log_softmax
from reference.reduction import check_reduction, reduce

__all__ = [
    "SoftCounts",
    "dice_ce_loss",
    "jaccard_index",
    "kept_entries",
    "lovasz_grad",
    "lovasz_hinge",
    "lovasz_softmax",
    "one_hot",
    "soft_counts",
    "soft_dice_loss",
    "soft_jaccard_loss",
    "tversky_loss",
]

ACTIVATIONS: tuple[str, ...] = ("softmax", "sigmoid")
DICE_FORMS: tuple[str, ...] = ("standard", "squared")
# Where a library adds the smoothing term, as the multiple of `smooth` it amounts to in the
# formulas above (the conventions of conformance.variants).
DICE_SMOOTHING: dict[str, float] = {"dice": 1.0, "tversky": 2.0}
JACCARD_SMOOTHING: dict[str, float] = {"jaccard": 1.0, "doubled": 0.5}
# How a library scores a class (conventions too): a 0 / 0 score (smooth 0, nothing predicted
# and nothing present) as loss 1 or NaN; a class with no ground truth scored by its predictions
# or costing 0; the intersection as sum p g or sum min(p, g).
EMPTY_SCORES: tuple[str, ...] = ("one", "nan")
ABSENT_CLASSES: tuple[str, ...] = ("scored", "zero")
INTERSECTIONS: tuple[str, ...] = ("product", "min")

Classes = str | Sequence[int] | np.ndarray


# ---------------------------------------------------------------------------
# checks and layout


def _logits(input: np.ndarray, min_ndim: int = 2) -> np.ndarray:
    x = np.asarray(input, dtype=np.float64)
    if x.ndim < min_ndim:
        layout = "(N, C, *spatial)" if min_ndim == 2 else "(N, *spatial)"
        raise ValueError(f"input must have shape {layout}, got {x.shape}")
    return x


def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(map(repr, valid))}")


def _check_smooth(smooth: float) -> None:
    # a negative smooth can cancel a denominator, and then the score is no longer in [0, 1]
    if not (np.isfinite(smooth) and smooth >= 0):
        raise ValueError(f"smooth must be finite and >= 0, got {smooth}")


def _is_label_map(target: np.ndarray) -> bool:
    return np.issubdtype(target.dtype, np.integer)


def _valid_pixels(target: np.ndarray, ignore_index: int | None) -> np.ndarray:
    """The pixels that take part: those whose target is not ignore_index."""
    if ignore_index is None:
        return np.ones(np.shape(target), dtype=bool)
    return np.asarray(target) != ignore_index


def _label_map(
    target: np.ndarray, num_classes: int, ignore_index: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """(labels with ignored pixels replaced by 0 so they can index, valid-pixel mask)."""
    labels = np.asarray(target)
    if not _is_label_map(labels):
        raise ValueError(f"a label map must be an integer array, got {labels.dtype}")
    valid = _valid_pixels(labels, ignore_index)
    if np.any(valid & ((labels < 0) | (labels >= num_classes))):
        raise ValueError(
            f"target labels must lie in [0, {num_classes}) or equal ignore_index={ignore_index}"
        )
    return np.where(valid, labels, 0), valid


def one_hot(target: np.ndarray, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """One-hot encoding of an integer label map (N, *spatial) -> float64 (N, C, *spatial).

    g[n, c, ...] = 1 where target[n, ...] == c; an ignored pixel (target == ignore_index) is
    0 in every class. Labels must lie in [0, num_classes) or equal ignore_index.
    """
    labels, valid = _label_map(target, num_classes, ignore_index)
    if labels.ndim < 1:
        raise ValueError(f"a label map must have shape (N, *spatial), got {labels.shape}")
    classes = np.arange(num_classes).reshape((1, num_classes) + (1,) * (labels.ndim - 1))
    hot = (labels[:, None] == classes) & valid[:, None]
    return hot.astype(np.float64)


def _ground_truth(
    x: np.ndarray, target: np.ndarray, ignore_index: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """The target as g of the input's shape, and the valid-pixel mask broadcast to it."""
    target = np.asarray(target)
    if _is_label_map(target):
        expected = x.shape[:1] + x.shape[2:]
        if target.shape != expected:
            raise ValueError(
                f"label-map target shape {target.shape} must equal the input shape without "
                f"its class axis, {expected}"
            )
        g = one_hot(target, x.shape[1], ignore_index)
        return g, np.broadcast_to(_valid_pixels(target, ignore_index)[:, None], x.shape)
    if not (np.issubdtype(target.dtype, np.floating) or target.dtype == np.bool_):
        raise ValueError(f"target must be an integer label map or a float mask, got {target.dtype}")
    if ignore_index is not None:
        raise ValueError("ignore_index applies to integer label maps only, not to float masks")
    if target.shape != x.shape:
        raise ValueError(f"mask target shape {target.shape} must equal input shape {x.shape}")
    g = target.astype(np.float64)
    if np.any((g < 0) | (g > 1)) or np.any(np.isnan(g)):
        raise ValueError("mask target values must lie in [0, 1]")
    return g, np.ones(x.shape, dtype=bool)


def _probabilities(x: np.ndarray, activation: str) -> tuple[np.ndarray, np.ndarray]:
    """p and 1 - p, the complement evaluated without the cancellation of 1 - p."""
    _check_choice("activation", activation, ACTIVATIONS)
    if activation == "sigmoid":
        return expit(x), expit(-x)
    log_p = log_softmax(x)
    # log p is accurate to the last digit even where p rounds to 1 (see log_softmax), and
    # -expm1 turns that into 1 - p with the same relative accuracy
    return np.exp(log_p), -np.expm1(log_p)


def _sum_axes(ndim: int, per_image: bool) -> tuple[int, ...]:
    """Axes summed into a count: space (per image), or the batch and space."""
    spatial = tuple(range(2, ndim))
    return spatial if per_image else (0, *spatial)


# ---------------------------------------------------------------------------
# soft counts and class selection


class SoftCounts(NamedTuple):
    """Soft confusion counts, each of shape (N, C) (per image) or (C,)."""

    intersection: np.ndarray  # I  = sum p g
    prediction: np.ndarray  # P  = sum p
    target: np.ndarray  # G  = sum g
    false_positive: np.ndarray  # FP = sum p (1 - g)
    false_negative: np.ndarray  # FN = sum (1 - p) g
    prediction_sq: np.ndarray  # sum p^2
    target_sq: np.ndarray  # sum g^2
    squared_error: np.ndarray  # sum (p - g)^2


def soft_counts(
    input: np.ndarray,
    target: np.ndarray,
    activation: str = "softmax",
    per_image: bool = False,
    ignore_index: int | None = None,
    intersection: str = "product",
) -> SoftCounts:
    """The soft counts I, P, G, FP, FN (and the squared sums of the V-Net Dice) of logits
    ``input`` (N, C, *spatial) against ``target`` (label map or mask; see the module notes).

    Ignored pixels are masked out of p, 1 - p and g, so they add 0 to every sum.

    intersection 'product' is I = sum p g (FP = P - I, FN = G - I); 'min' is sum min(p, g)
    = (P + G - |p - g|_1) / 2 (Wang & Blaschko's semimetric form, smp 0.5), so FP = sum
    max(p - g, 0) and FN = sum max(g - p, 0). The two agree on {0, 1} targets.
    """
    _check_choice("intersection", intersection, INTERSECTIONS)
    x = _logits(input)
    g, valid = _ground_truth(x, target, ignore_index)
    p, q = _probabilities(x, activation)
    # np.where rather than a product: the logits of an ignored pixel may be inf or nan
    p, q = np.where(valid, p, 0.0), np.where(valid, q, 0.0)
    axes = _sum_axes(x.ndim, per_image)

    def total(values: np.ndarray) -> np.ndarray:
        return np.sum(values, axis=axes, dtype=np.float64)

    # p - g as p (1 - g) - (1 - p) g: exact-ish for a hard g, where p - 1 would cancel
    difference = p * (1 - g) - q * g
    if intersection == "min":
        overlap = np.minimum(p, g)
        false_positive, false_negative = np.maximum(difference, 0), np.maximum(-difference, 0)
    else:
        overlap, false_positive, false_negative = p * g, p * (1 - g), q * g
    return SoftCounts(
        intersection=total(overlap),
        prediction=total(p),
        target=total(g),
        false_positive=total(false_positive),
        false_negative=total(false_negative),
        prediction_sq=total(p * p),
        target_sq=total(g * g),
        squared_error=total(difference * difference),
    )


def _columns(
    num_classes: int, include_background: bool, classes: Classes
) -> tuple[np.ndarray, bool]:
    """(the selected class columns, whether 'present' filtering applies)."""
    if isinstance(classes, str):
        _check_choice("classes", classes, ("all", "present"))
        first = 0 if include_background else 1
        return np.arange(first, num_classes), classes == "present"
    columns = np.asarray(classes)
    if columns.size == 0:
        return np.zeros(0, dtype=np.intp), False
    if columns.ndim != 1 or not np.issubdtype(columns.dtype, np.integer):
        raise ValueError(
            f"classes must be 'all', 'present' or a list of class ids, got {classes!r}"
        )
    if np.any((columns < 0) | (columns >= num_classes)):
        raise ValueError(f"class ids must lie in [0, {num_classes}), got {columns.tolist()}")
    return columns, False


def _kept_mask(
    target_count: np.ndarray, include_background: bool, classes: Classes
) -> tuple[np.ndarray, np.ndarray]:
    """(selected columns, kept mask over them) for G of shape (..., C)."""
    columns, present = _columns(target_count.shape[-1], include_background, classes)
    selected = target_count[..., columns]
    kept = selected > 0 if present else np.ones(selected.shape, dtype=bool)
    return columns, kept


def kept_entries(
    input: np.ndarray,
    target: np.ndarray,
    include_background: bool = True,
    classes: Classes = "all",
    per_image: bool = False,
    ignore_index: int | None = None,
) -> int:
    """The number of (image,) class entries the region losses average over: the 'mean'
    denominator of soft_dice_loss, soft_jaccard_loss and tversky_loss.

    It is the number of selected columns (times N when per_image), less the entries with
    G = 0 when classes == 'present'. It does not depend on the logits' values, nor on the
    activation, the form or smooth. When it is 0 the losses' 'mean' is 0.0.
    """
    x = _logits(input)
    g, _ = _ground_truth(x, target, ignore_index)
    target_count = np.sum(g, axis=_sum_axes(x.ndim, per_image))
    _, kept = _kept_mask(target_count, include_background, classes)
    return int(np.count_nonzero(kept))


def _ratio(numerator: np.ndarray, denominator: np.ndarray, empty: str = "one") -> np.ndarray:
    """The loss numerator / denominator, with 0 / 0 = 1 (score 0), or NaN with empty='nan'.

    Every numerator here is a sum of terms that the denominator also holds (all >= 0), so a
    zero denominator comes with a zero numerator. 1 is the limit of the loss as the predictions
    of an absent class vanish (FP / (P + 0) = 1 for every P > 0): any other value would make the
    loss jump where a probability underflows (0 in float32, 1e-137 in float64). 'nan' is the
    division as written (monai, optax).
    """
    _check_choice("empty_score", empty, EMPTY_SCORES)
    fill = 1.0 if empty == "one" else np.nan
    out = np.full(np.broadcast(numerator, denominator).shape, fill, dtype=np.float64)
    return np.divide(numerator, denominator, out=out, where=denominator != 0)


def _without_absent(loss: np.ndarray, target_count: np.ndarray, absent: str) -> np.ndarray:
    """absent 'zero': a class with no ground truth costs 0 (smp), still counted in the mean."""
    _check_choice("absent_class", absent, ABSENT_CLASSES)
    return np.where(target_count > 0, loss, 0.0) if absent == "zero" else loss


def _region_loss(
    loss: np.ndarray,
    target_count: np.ndarray,
    include_background: bool,
    classes: Classes,
    reduction: str,
) -> np.ndarray:
    """Select the classes of the per-(image,)class loss array and reduce the kept entries."""
    columns, kept = _kept_mask(target_count, include_background, classes)
    selected = np.where(kept, loss[..., columns], 0.0)
    count = np.count_nonzero(kept)
    if reduction == "mean" and count == 0:
        # Berman et al.'s mean(..., empty=0): nothing to segment costs nothing
        return np.asarray(0.0, dtype=np.float64)
    return reduce(selected, reduction, denominator=count)


def _check_region_args(reduction: str, activation: str, smooth: float) -> None:
    check_reduction(reduction)
    _check_choice("activation", activation, ACTIVATIONS)
    _check_smooth(smooth)


# ---------------------------------------------------------------------------
# region losses


def soft_dice_loss(
    input: np.ndarray,
    target: np.ndarray,
    activation: str = "softmax",
    form: str = "standard",
    smooth: float = 0.0,
    include_background: bool = True,
    classes: Classes = "all",
    per_image: bool = False,
    ignore_index: int | None = None,
    reduction: str = "mean",
    smoothing: str = "dice",
    empty_score: str = "one",
    absent_class: str = "scored",
    intersection: str = "product",
) -> np.ndarray:
    """Soft Dice loss, 1 - S per (image,) class, then reduced (see the module notes).

        form 'standard':  S = (2 I + smooth) / (P + G + smooth)
        form 'squared':   S = (2 I + smooth) / (sum p^2 + sum g^2 + smooth)
                          (Milletari et al. 2016, V-Net)

    Since P + G = 2 I + FP + FN and sum p^2 + sum g^2 = 2 I + sum (p - g)^2, the loss is
    evaluated as

        1 - S = (FP + FN) / (P + G + smooth)                    ('standard')
        1 - S = sum (p - g)^2 / (sum p^2 + sum g^2 + smooth)    ('squared')

    A score with a zero denominator (smooth = 0, p = g = 0 throughout) is 1.

    smoothing (a convention, conformance.variants): 'dice' is the above; 'tversky' adds smooth
    to the score written as the Tversky index at alpha = beta = 1/2,
    S = (I + smooth) / ((P + G) / 2 + smooth), which is the above at 2 smooth.
    empty_score, absent_class and intersection: conventions too (see the constants above).
    """
    _check_region_args(reduction, activation, smooth)
    _check_choice("form", form, DICE_FORMS)
    _check_choice("smoothing", smoothing, DICE_SMOOTHING)
    smooth = smooth * DICE_SMOOTHING[smoothing]
    n = soft_counts(input, target, activation, per_image, ignore_index, intersection)
    if form == "standard":
        loss = _ratio(n.false_positive + n.false_negative, n.prediction + n.target + smooth,
                      empty_score)
    else:
        loss = _ratio(n.squared_error, n.prediction_sq + n.target_sq + smooth, empty_score)
    loss = _without_absent(loss, n.target, absent_class)
    return _region_loss(loss, n.target, include_background, classes, reduction)


def soft_jaccard_loss(
    input: np.ndarray,
    target: np.ndarray,
    activation: str = "softmax",
    smooth: float = 0.0,
    include_background: bool = True,
    classes: Classes = "all",
    per_image: bool = False,
    ignore_index: int | None = None,
    reduction: str = "mean",
    smoothing: str = "jaccard",
    empty_score: str = "one",
    absent_class: str = "scored",
    intersection: str = "product",
) -> np.ndarray:
    """Soft Jaccard (IoU) loss, 1 - S per (image,) class, then reduced.

        S = (I + smooth) / (P + G - I + smooth) = (I + smooth) / (I + FP + FN + smooth)
        1 - S = (FP + FN) / (I + FP + FN + smooth)

    The union is summed as I + FP + FN, where nothing can cancel. A score with a zero
    denominator (smooth = 0, p = g = 0 throughout) is 1.

    smoothing (a convention, conformance.variants): 'jaccard' is the above; 'doubled' adds
    smooth to the score written with Dice's doubled terms, S = (2 I + smooth) / (2 U + smooth),
    which is the above at smooth / 2.
    empty_score, absent_class and intersection: conventions too (see the constants above).
    """
    _check_region_args(reduction, activation, smooth)
    _check_choice("smoothing", smoothing, JACCARD_SMOOTHING)
    smooth = smooth * JACCARD_SMOOTHING[smoothing]
    n = soft_counts(input, target, activation, per_image, ignore_index, intersection)
    errors = n.false_positive + n.false_negative
    loss = _without_absent(_ratio(errors, n.intersection + errors + smooth, empty_score),
                           n.target, absent_class)
    return _region_loss(loss, n.target, include_background, classes, reduction)


def tversky_loss(
    input: np.ndarray,
    target: np.ndarray,
    alpha: float = 0.5,
    beta: float = 0.5,
    activation: str = "softmax",
    smooth: float = 0.0,
    include_background: bool = True,
    classes: Classes = "all",
    per_image: bool = False,
    ignore_index: int | None = None,
    reduction: str = "mean",
    empty_score: str = "one",
    absent_class: str = "scored",
    intersection: str = "product",
) -> np.ndarray:
    """Tversky loss (Salehi et al. 2017), 1 - S per (image,) class, then reduced.

        S = (I + smooth) / (I + alpha FP + beta FN + smooth)
        1 - S = (alpha FP + beta FN) / (I + alpha FP + beta FN + smooth)

    alpha weighs false positives, beta false negatives; both must be >= 0. With smooth = 0,
    alpha = beta = 1/2 gives the Dice loss and alpha = beta = 1 the Jaccard loss. With
    smooth > 0 the Jaccard identity still holds, but alpha = beta = 1/2 with smooth s is
    the Dice loss with smooth 2 s (multiply the fraction by 2 / 2). A score with a zero
    denominator is 1. empty_score, absent_class and intersection: conventions (see the
    constants above).
    """
    _check_region_args(reduction, activation, smooth)
    for name, weight in (("alpha", alpha), ("beta", beta)):
        if not (np.isfinite(weight) and weight >= 0):
            raise ValueError(f"{name} must be finite and >= 0, got {weight}")
    n = soft_counts(input, target, activation, per_image, ignore_index, intersection)
    errors = alpha * n.false_positive + beta * n.false_negative
    loss = _without_absent(_ratio(errors, n.intersection + errors + smooth, empty_score),
                           n.target, absent_class)
    return _region_loss(loss, n.target, include_background, classes, reduction)


def dice_ce_loss(
    input: np.ndarray,
    target: np.ndarray,
    lambda_dice: float = 1.0,
    lambda_ce: float = 1.0,
    smooth: float = 0.0,
    ignore_index: int | None = None,
) -> np.ndarray:
    """Dice + cross entropy on softmax logits (N, C, *spatial) and a label map (N, *spatial).

        l = lambda_dice * soft_dice_loss(input, target, smooth, ignore_index)
            + lambda_ce * cross_entropy(input, target, ignore_index)

    The Dice term has the defaults otherwise (softmax, standard form, every class, counts
    over the batch, mean over classes); the cross entropy is the mean over the non-ignored
    pixels (reference.classification.cross_entropy, with ignore_index -100 when None). With
    every pixel ignored the cross entropy is 0/0 = nan, as in torch, and so is the sum.
    Returns a 0-d array.
    """
    target = np.asarray(target)
    if not _is_label_map(target):
        raise ValueError(f"dice_ce_loss needs an integer label map target, got {target.dtype}")
    dice = soft_dice_loss(input, target, smooth=smooth, ignore_index=ignore_index)
    ce = cross_entropy(input, target, ignore_index=-100 if ignore_index is None else ignore_index)
    return np.asarray(lambda_dice * dice + lambda_ce * ce, dtype=np.float64)


# ---------------------------------------------------------------------------
# Lovasz extension of the Jaccard loss (Berman, Rannen Triki & Blaschko 2018)


def lovasz_grad(gt_sorted: np.ndarray) -> np.ndarray:
    """Gradient of the Lovasz extension of the Jaccard loss w.r.t. the sorted errors
    (Alg. 1 of Berman et al. 2018), along the last axis.

    g = gt_sorted, the ground truth (values in [0, 1], 0/1 in the losses) of the pixels in
    the order of decreasing error, and for k = 0, 1, ...:

        I_k = sum(g) - cumsum(g)_k          (foreground not yet among the first k+1)
        U_k = sum(g) + cumsum(1 - g)_k      (foreground plus the background among them)
        J_k = 1 - I_k / U_k
        grad_0 = J_0,   grad_k = J_k - J_{k-1}

    J_k is the Jaccard loss of mispredicting the first k+1 pixels, so grad_k is the
    increment of the set function, and loss = dot(errors_sorted, grad) its Lovasz extension.

    Evaluation: U_k - I_k = cumsum(g)_k + cumsum(1 - g)_k = k + 1, and from there

        J_k = (k + 1) / U_k,   grad_k = (I_{k-1} + k g_k) / (U_{k-1} U_k)  (k >= 1)

    (g_k = 1 gives 1 / U_k, g_k = 0 gives I_{k-1} / (U_{k-1} U_k)), where the difference
    J_k - J_{k-1} of two numbers near 1 would cancel. For a 0/1 g every count and product
    is an exact integer (below 2^53), so each grad is the exact value rounded once; for a
    soft g every term is still >= 0 and the grads are good to a few ulps.

    Edge cases: U_k >= k + 1 > 0, so nothing divides by 0. Without foreground (sum(g) = 0)
    every J_k is 1 and grad = (1, 0, ..., 0): the loss is the largest error, the Jaccard
    loss being 1 as soon as anything is predicted. No pixel gives an empty last axis.
    """
    g = np.asarray(gt_sorted, dtype=np.float64)
    if g.ndim == 0:
        raise ValueError("gt_sorted needs at least one axis (the sorted pixels)")
    if np.any((g < 0) | (g > 1)) or np.any(np.isnan(g)):
        raise ValueError("gt_sorted values must lie in [0, 1]")
    foreground = np.sum(g, axis=-1, keepdims=True)
    intersection = foreground - np.cumsum(g, axis=-1)
    union = foreground + np.cumsum(1 - g, axis=-1)
    k = np.arange(g.shape[-1], dtype=np.float64)
    grad = np.empty_like(g)
    grad[..., :1] = 1 / union[..., :1]  # J_0 = 1 / U_0
    grad[..., 1:] = (intersection[..., :-1] + k[1:] * g[..., 1:]) / (
        union[..., :-1] * union[..., 1:]
    )
    return grad


def _sort_by_error(
    errors: np.ndarray, foreground: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(errors, foreground) of each row (last axis) in the order of decreasing error.

    Ignored pixels go last, with error 0 and foreground 0. They then change nothing: the
    valid pixels before them see the same cumulative counts as without them (and sum(g)
    counts valid foreground only), and they add error 0 times a finite grad.

    Ties are broken by the foreground (first), so the order is a function of the
    (error, foreground) values alone: permuting pixels gives the same sorted sequence and
    the same floating-point sum. Mathematically the tie order is irrelevant anyway: a run
    of equal errors e contributes e times the sum of its grads, J_last - J_before, and after
    the run the cumulative counts are those of the whole run, whatever its order.
    """
    errors = np.where(valid, errors, 0.0)
    foreground = np.where(valid, foreground, 0.0)
    # np.lexsort: the last key is the primary one
    order = np.lexsort((-foreground, -errors, ~valid), axis=-1)
    return (
        np.take_along_axis(errors, order, axis=-1),
        np.take_along_axis(foreground, order, axis=-1),
    )


def _mean_or_zero(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean along ``axis``, 0 for an empty axis (Berman et al.'s mean(..., empty=0))."""
    count = values.shape[axis]
    return np.sum(values, axis=axis) / count if count else np.sum(values, axis=axis)


def _binary_target(
    target: np.ndarray, shape: tuple[int, ...], ignore_index: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """(y as float64 with ignored pixels set to 0, valid-pixel mask)."""
    y = np.asarray(target)
    if y.shape != shape:
        raise ValueError(f"target shape {y.shape} must equal input shape {shape}")
    valid = _valid_pixels(y, ignore_index)
    if np.any(valid & (y != 0) & (y != 1)):
        raise ValueError(f"lovasz_hinge needs a 0/1 target (or ignore_index={ignore_index})")
    return np.where(valid, y, 0).astype(np.float64), valid


def lovasz_hinge(
    input: np.ndarray,
    target: np.ndarray,
    per_image: bool = True,
    ignore_index: int | None = None,
) -> np.ndarray:
    """Binary Lovasz hinge loss (Berman et al. 2018, eq. 9 and Alg. 1).

    ``input``: logits x of shape (N, *spatial); ``target``: y in {0, 1} (integer or float) of
    the same shape, or ignore_index for pixels that are left out.

        s = 2 y - 1,   m = 1 - x s     (hinge errors)
        loss = sum_k relu(m_(k)) grad_k,   m_(0) >= m_(1) >= ...,  grad = lovasz_grad(y sorted)

    the Lovasz extension of the Jaccard loss 1 - |y n pred| / |y u pred| of the foreground
    at relu(m). per_image: the mean over the N images of each image's loss (an image whose
    pixels are all ignored contributes 0 and counts in the mean, as in Berman et al.'s
    code; N = 0 gives 0); otherwise the loss of the whole batch as one image. Returns 0-d.
    """
    x = _logits(input, min_ndim=1)
    y, valid = _binary_target(target, x.shape, ignore_index)
    rows = x.shape[0] if per_image else 1
    shape = (rows, x.size // rows) if rows else (0, 0)
    signs = 2 * y - 1
    errors = 1 - x * signs  # x s is exact (s = +-1): one rounding per error
    m_sorted, y_sorted = _sort_by_error(
        errors.reshape(shape), y.reshape(shape), valid.reshape(shape)
    )
    losses = np.sum(np.maximum(m_sorted, 0.0) * lovasz_grad(y_sorted), axis=-1)
    return np.asarray(_mean_or_zero(losses), dtype=np.float64)


def lovasz_softmax(
    input: np.ndarray,
    target: np.ndarray,
    classes: Classes = "present",
    per_image: bool = False,
    ignore_index: int | None = None,
) -> np.ndarray:
    """Multi-class Lovasz-Softmax loss (Berman et al. 2018, eq. 12 and Alg. 1).

    ``input``: logits (N, C, *spatial), p = softmax over C; ``target``: a label map
    (N, *spatial) with values in [0, C) or ignore_index. For each class c:

        fg = (y == c),   m_c = |fg - p_c|   (1 - p_c on the foreground, p_c elsewhere)
        loss_c = sum_k m_c(k) grad_k,   m_c sorted decreasingly, grad = lovasz_grad(fg sorted)

    and the loss is the mean of loss_c over the classes: 'present' (those with foreground
    among the non-ignored pixels), 'all', or a list of class ids. A mean over no class is 0.
    per_image: the mean over the N images of each image's loss (an image whose pixels are
    all ignored contributes 0 and counts in the mean); otherwise the batch as one image.
    Returns 0-d.
    """
    x = _logits(input)
    labels, valid = _label_map(target, x.shape[1], ignore_index)
    if labels.shape != x.shape[:1] + x.shape[2:]:
        raise ValueError(
            f"label-map target shape {labels.shape} must equal the input shape without its "
            f"class axis, {x.shape[:1] + x.shape[2:]}"
        )
    columns, present = _columns(x.shape[1], True, classes)
    p, q = _probabilities(x, "softmax")
    n, c = x.shape[:2]
    pixels = x.size // (n * c) if n * c else 0

    def rows(values: np.ndarray) -> np.ndarray:
        """(N, C, *spatial) -> (rows, C, pixels): one row per image, or the whole batch."""
        values = values.reshape(n, c, pixels)
        return values if per_image else np.moveaxis(values, 0, 1).reshape(1, c, n * pixels)

    fg = rows(one_hot(target, c, ignore_index)) > 0  # ignored pixels are nobody's foreground
    valid_rows = np.broadcast_to(rows(np.broadcast_to(valid[:, None], x.shape)), fg.shape)
    errors = np.where(fg, rows(q), rows(p))
    m_sorted, fg_sorted = _sort_by_error(errors, fg.astype(np.float64), valid_rows)
    class_losses = np.sum(m_sorted * lovasz_grad(fg_sorted), axis=-1)[:, columns]
    every = np.ones(class_losses.shape, dtype=bool)
    kept = np.any(fg, axis=-1)[:, columns] if present else every
    counts = np.count_nonzero(kept, axis=-1)
    totals = np.sum(np.where(kept, class_losses, 0.0), axis=-1)
    # a mean over no class is 0 (Berman et al.'s mean(..., empty=0))
    image_losses = np.where(counts > 0, totals / np.maximum(counts, 1), 0.0)
    return np.asarray(_mean_or_zero(image_losses), dtype=np.float64)


# ---------------------------------------------------------------------------
# hard metric


def jaccard_index(
    input: np.ndarray,
    target: np.ndarray,
    num_classes: int,
    ignore_index: int | None = None,
    per_image: bool = False,
    empty: float = 1.0,
) -> np.ndarray:
    """Hard Jaccard index (IoU) per class of a predicted label map against the target.

    ``input`` and ``target``: integer label maps of one shape (N, *spatial). Pixels whose
    target is ignore_index are removed from both. For each class c:

        IoU_c = |{pred = c} n {y = c}| / |{pred = c} u {y = c}|,   ``empty`` when the union
                                                                    is empty

    counted over the whole batch, or per image and then averaged over the N images
    (per_image). Returns shape (num_classes,). Predicted labels must lie in
    [0, num_classes) on the pixels that are not ignored.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    pred = np.asarray(input)
    if not _is_label_map(pred):
        raise ValueError(
            f"input must be an integer label map (predicted classes), got {pred.dtype}"
        )
    labels, valid = _label_map(target, num_classes, ignore_index)
    if pred.shape != labels.shape or pred.ndim < 1:
        raise ValueError(
            f"input shape {pred.shape} and target shape {labels.shape} must be one (N, *spatial)"
        )
    if np.any(valid & ((pred < 0) | (pred >= num_classes))):
        raise ValueError(f"predicted labels must lie in [0, {num_classes})")
    n = pred.shape[0]
    shape = (n, pred.size // n if n else 0, 1)
    classes = np.arange(num_classes)
    # (N, pixels, C) indicators of the non-ignored pixels
    predicted = (pred.reshape(shape) == classes) & valid.reshape(shape)
    actual = (labels.reshape(shape) == classes) & valid.reshape(shape)
    axes = 1 if per_image else (0, 1)
    intersection = np.sum(predicted & actual, axis=axes).astype(np.float64)
    union = np.sum(predicted | actual, axis=axes).astype(np.float64)
    iou = np.full(union.shape, float(empty))
    np.divide(intersection, union, out=iou, where=union > 0)
    return _mean_or_zero(iou, axis=0) if per_image else iou
