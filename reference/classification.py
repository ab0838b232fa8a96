"""Classification losses in float64, written as the formulas of their papers.

Conventions follow ``torch.nn.functional`` (and ``torchvision.ops`` for the sigmoid
focal loss): argument names, defaults, broadcasting and the reduction denominators.
Every function returns a float64 array, 0-d for 'sum' and 'mean'.

Notation in the docstrings: x logits, p probabilities, y targets, sigma(x) = 1 / (1 + e^-x),
w weights; log sigma(x) and log(1 - sigma(x)) = log sigma(-x) come from
``scipy.special.log_expit`` so that |x| up to 1e4 stays finite and accurate.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_expit

from reference.reduction import check_reduction, reduce

__all__ = [
    "balanced_bce_weights",
    "balanced_binary_cross_entropy_with_logits",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "class_index_weight_sum",
    "cross_entropy",
    "focal_mean_denominator",
    "kl_div",
    "log_softmax",
    "multilabel_soft_margin_loss",
    "nll_loss",
    "quality_focal_loss",
    "sigmoid_focal_loss",
    "softmax_focal_loss",
]


# ---------------------------------------------------------------------------
# helpers


def _as_float(array: np.ndarray) -> np.ndarray:
    return np.asarray(array, dtype=np.float64)


def _check_same_shape(input: np.ndarray, target: np.ndarray, name: str = "target") -> None:
    if input.shape != target.shape:
        raise ValueError(f"{name} shape {target.shape} must equal input shape {input.shape}")


def _broadcast(value: np.ndarray | float, shape: tuple[int, ...], name: str) -> np.ndarray:
    try:
        return np.broadcast_to(np.asarray(value, dtype=np.float64), shape)
    except ValueError:
        raise ValueError(
            f"{name} of shape {np.shape(value)} does not broadcast to input shape {shape}"
        ) from None


def _zero_times(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a * b with 0 * (anything) = 0: the 0 log 0 = 0 convention of cross entropies."""
    with np.errstate(invalid="ignore"):
        return np.where(a == 0, 0.0, a * b)


def _class_last(input: np.ndarray) -> tuple[np.ndarray, int]:
    """Move torch's class axis (0 for a 1-D input, else 1) to the end."""
    if input.ndim == 0:
        raise ValueError("input needs a class axis: shape (C,), (N, C) or (N, C, d1, ...)")
    class_axis = 0 if input.ndim == 1 else 1
    return np.moveaxis(input, class_axis, -1), class_axis


def _log_softmax(z: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, accurate also when one class dominates.

    scipy.special.log_softmax computes log(sum_c e^(z_c - max)) with the leading 1 inside
    the sum, so for z = [40, 0] it returns log p_0 = 0 where the truth is -4.2e-18.
    Writing the sum as 1 + T, with T the other classes' terms, and taking log1p(T)
    keeps that small value; for the other classes both parts of
    (z_c - max) - log1p(T) are <= 0, so no digits cancel either.
    """
    top = np.argmax(z, axis=-1)[..., None]
    shifted = z - np.take_along_axis(z, top, axis=-1)
    is_top = np.arange(z.shape[-1]) == top
    rest = np.sum(np.where(is_top, 0.0, np.exp(shifted)), axis=-1, keepdims=True)
    return shifted - np.log1p(rest)


def log_softmax(input: np.ndarray) -> np.ndarray:
    """log softmax over torch's class axis (1, or 0 for a 1-D input), accurate to the last
    digit also when one class dominates (see _log_softmax)."""
    z, class_axis = _class_last(_as_float(input))
    return np.moveaxis(_log_softmax(z), -1, class_axis)


def _class_vector(value: np.ndarray | None, num_classes: int, name: str) -> np.ndarray:
    if value is None:
        return np.ones(num_classes, dtype=np.float64)
    vector = np.asarray(value, dtype=np.float64)
    if vector.shape != (num_classes,):
        raise ValueError(f"{name} must have shape ({num_classes},), got {vector.shape}")
    return vector


def _class_indices(
    target: np.ndarray, ignore_index: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """(kept mask, target with ignored entries replaced by 0 so it can index safely)."""
    indices = np.asarray(target)
    if not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"class-index target must be an integer array, got {indices.dtype}")
    kept = indices != ignore_index
    out_of_range = (indices < 0) | (indices >= num_classes)
    if np.any(kept & out_of_range):
        raise ValueError(
            f"target values must lie in [0, {num_classes}) or equal ignore_index={ignore_index}"
        )
    return kept, np.where(kept, indices, 0)


def _check_index_target_shape(target: np.ndarray, batch_shape: tuple[int, ...]) -> None:
    if np.shape(target) != batch_shape:
        raise ValueError(
            f"class-index target shape {np.shape(target)} must equal the input shape "
            f"without its class axis, {batch_shape}"
        )


def _gather(values: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """values[..., indices] along the last (class) axis."""
    return np.take_along_axis(values, indices[..., None], axis=-1)[..., 0]


def _bce_with_logits(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """-(y log sigma(x) + (1 - y) log(1 - sigma(x))), elementwise."""
    return -(y * log_expit(x) + (1 - y) * log_expit(-x))


# ---------------------------------------------------------------------------
# binary cross entropies


def binary_cross_entropy(
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    reduction: str = "mean",
    log_clamp: float | None = -100.0,
) -> np.ndarray:
    """Binary cross entropy on probabilities (torch.nn.functional.binary_cross_entropy).

        l = -w * (y * max(log p, c) + (1 - y) * max(log(1 - p), c)),   c = log_clamp

    torch clamps each logarithm at c = -100 so that p = 0 or 1 gives a finite loss; that
    convention is kept as the explicit ``log_clamp`` (None removes it, and then
    p = 0 with y > 0 gives inf). 0 * log 0 counts as 0 either way. ``weight``
    broadcasts to the input's shape; mean = sum / input.size.
    """
    check_reduction(reduction)
    p = _as_float(input)
    y = _as_float(target)
    _check_same_shape(p, y)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("binary_cross_entropy input must be probabilities in [0, 1]")
    w = _broadcast(1.0 if weight is None else weight, p.shape, "weight")

    with np.errstate(divide="ignore"):
        log_p = np.log(p)
        log_1mp = np.log1p(-p)
    if log_clamp is not None:
        log_p = np.maximum(log_p, log_clamp)
        log_1mp = np.maximum(log_1mp, log_clamp)

    loss = -w * (_zero_times(y, log_p) + _zero_times(1 - y, log_1mp))
    return reduce(loss, reduction)


def binary_cross_entropy_with_logits(
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    reduction: str = "mean",
    pos_weight: np.ndarray | None = None,
) -> np.ndarray:
    """Binary cross entropy on logits (torch.nn.functional.binary_cross_entropy_with_logits).

        l = -w * (pos_weight * y * log sigma(x) + (1 - y) * log(1 - sigma(x)))

    ``pos_weight`` broadcasts against the trailing dimensions, so shape (C,) weights the
    classes of an input (..., C), as in torch; ``weight`` broadcasts to the input's
    shape. mean = sum / input.size.
    """
    check_reduction(reduction)
    x = _as_float(input)
    y = _as_float(target)
    _check_same_shape(x, y)
    w = _broadcast(1.0 if weight is None else weight, x.shape, "weight")
    pw = _broadcast(1.0 if pos_weight is None else pos_weight, x.shape, "pos_weight")

    loss = -w * (pw * y * log_expit(x) + (1 - y) * log_expit(-x))
    return reduce(loss, reduction)


def balanced_bce_weights(target: np.ndarray, count_eps: float = 0.0) -> np.ndarray:
    """Elementwise weights of the class-balanced BCE (Xie & Tu 2015, HED, eq. 2).

        beta_n = |Y_-| / |Y| = 1 - mean(y_n)   (fraction of negatives in sample n)
        w = beta_n * y + (1 - beta_n) * (1 - y)

    The mean runs over every axis except the batch axis 0, so ``target`` needs ndim >= 2.
    count_eps (a convention): beta_n = |Y_-| / (|Y| + count_eps), so 1 - beta_n =
    (|Y_+| + count_eps) / (|Y| + count_eps) (pytorch_toolbelt's 1e-7).
    """
    y = _as_float(target)
    if y.ndim < 2:
        raise ValueError("balanced BCE needs a batch axis and at least one more: ndim >= 2")
    if np.any((y != 0) & (y != 1)):
        raise ValueError("balanced BCE needs a binary (0/1) target")
    elements = float(np.prod(y.shape[1:]))  # per sample
    positives = np.sum(y, axis=tuple(range(1, y.ndim)), keepdims=True)
    beta = (elements - positives) / (elements + count_eps)
    # 1 - beta as the positive share itself: re-deriving it as 1 - (1 - m) would cost digits
    # when positives are rare
    positive_share = (positives + count_eps) / (elements + count_eps)
    return beta * y + positive_share * (1 - y)


def balanced_binary_cross_entropy_with_logits(
    input: np.ndarray, target: np.ndarray, reduction: str = "mean", count_eps: float = 0.0
) -> np.ndarray:
    """Class-balanced BCE on logits (Xie & Tu 2015, HED; the balanced CE of seed 001).

        l = -(beta * y * log sigma(x) + (1 - beta) * (1 - y) * log(1 - sigma(x)))

    with beta the per-sample fraction of negatives. For a binary y this is
    binary_cross_entropy_with_logits(x, y, weight=balanced_bce_weights(y)), which is how
    it is computed. mean = sum / input.size. count_eps: see balanced_bce_weights.
    """
    check_reduction(reduction)
    x = _as_float(input)
    y = _as_float(target)
    _check_same_shape(x, y)
    loss = balanced_bce_weights(y, count_eps) * _bce_with_logits(x, y)
    return reduce(loss, reduction)


def multilabel_soft_margin_loss(
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    reduction: str = "mean",
) -> np.ndarray:
    """Multi-label soft margin loss (torch.nn.functional.multilabel_soft_margin_loss).

        l_n = (1 / C) sum_c w_c * -(y_nc log sigma(x_nc) + (1 - y_nc) log sigma(-x_nc))

    for scores (N, C) (or one sample, (C,)) and labels y in {0, 1} of the same shape: each
    sample's class mean of binary cross-entropy with logits, w (C,) weighting the classes
    (the mean still divides by C). 'none' is (N,) (0-d for one sample); mean = sum / N.
    """
    check_reduction(reduction)
    x = _as_float(input)
    y = _as_float(target)
    _check_same_shape(x, y)
    if x.ndim not in (1, 2):
        raise ValueError(f"input must be (C,) or (N, C), got shape {x.shape}")
    w = _class_vector(weight, x.shape[-1], "weight")
    return reduce(np.mean(w * _bce_with_logits(x, y), axis=-1), reduction)


# ---------------------------------------------------------------------------
# softmax cross entropies


def class_index_weight_sum(
    target: np.ndarray,
    weight: np.ndarray | None,
    ignore_index: int,
    num_classes: int,
) -> float:
    """sum over the non-ignored i of weight[y_i] (their count when weight is None).

    This is the denominator of torch's 'mean' for class-index targets in cross_entropy
    and nll_loss.
    """
    kept, safe = _class_indices(target, ignore_index, num_classes)
    w = _class_vector(weight, num_classes, "weight")
    return float(np.sum(w[safe[kept]]))


def cross_entropy(
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> np.ndarray:
    """Softmax cross entropy (torch.nn.functional.cross_entropy).

    ``input`` holds logits of shape (C,), (N, C) or (N, C, d1, ...); the class axis is 1
    (0 for a 1-D input). p = softmax over that axis, eps = label_smoothing,
    w = weight (ones when None).

    Integer ``target``: class indices, shaped like the input without its class axis.

        l_i = (1 - eps) * w[y_i] * (-log p_{i,y_i}) + (eps / C) * sum_c w_c * (-log p_{i,c})
        l_i = 0 where y_i == ignore_index
        mean = sum_i l_i / sum_{i not ignored} w[y_i]

    The smoothing term shares the weighted denominator, as in torch; with every target
    ignored the mean is 0/0 = nan.

    Float ``target``: class probabilities of the input's shape (Szegedy et al. 2016
    smoothing mixes them with the uniform distribution).

        t' = (1 - eps) * t + eps / C
        l_i = -sum_c w_c * t'_{i,c} * log p_{i,c}
        mean = sum_i l_i / (input.size / C)       (the weights do not enter the denominator)
    """
    check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must lie in [0, 1], got {label_smoothing}")
    logits = _as_float(input)
    z, class_axis = _class_last(logits)
    num_classes = z.shape[-1]
    w = _class_vector(weight, num_classes, "weight")
    log_p = _log_softmax(z)
    eps = label_smoothing
    target = np.asarray(target)

    if np.issubdtype(target.dtype, np.floating):
        _check_same_shape(logits, target, "probability target")
        t = np.moveaxis(target.astype(np.float64), class_axis, -1)
        t_smooth = (1 - eps) * t + eps / num_classes
        loss = -np.sum(w * _zero_times(t_smooth, log_p), axis=-1)
        return reduce(loss, reduction, denominator=logits.size / num_classes)

    _check_index_target_shape(target, z.shape[:-1])
    kept, y = _class_indices(target, ignore_index, num_classes)
    nll = -_gather(log_p, y)
    smooth = -np.sum(w * log_p, axis=-1)
    loss = np.where(kept, (1 - eps) * w[y] * nll + (eps / num_classes) * smooth, 0.0)
    denominator = class_index_weight_sum(target, weight, ignore_index, num_classes)
    return reduce(loss, reduction, denominator=denominator)


def nll_loss(
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> np.ndarray:
    """Negative log likelihood (torch.nn.functional.nll_loss).

    ``input`` holds log-probabilities laid out as in cross_entropy; ``target`` holds
    class indices.

        l_i = -w[y_i] * input[i, y_i],   0 where y_i == ignore_index
        mean = sum_i l_i / sum_{i not ignored} w[y_i]    (nan when every target is ignored)
    """
    check_reduction(reduction)
    log_p, _ = _class_last(_as_float(input))
    num_classes = log_p.shape[-1]
    w = _class_vector(weight, num_classes, "weight")
    _check_index_target_shape(target, log_p.shape[:-1])
    kept, y = _class_indices(target, ignore_index, num_classes)
    with np.errstate(invalid="ignore"):
        # an ignored position may hold -inf; np.where drops whatever it produced
        loss = np.where(kept, -w[y] * _gather(log_p, y), 0.0)
    denominator = class_index_weight_sum(target, weight, ignore_index, num_classes)
    return reduce(loss, reduction, denominator=denominator)


def kl_div(
    input: np.ndarray,
    target: np.ndarray,
    reduction: str = "mean",
    log_target: bool = False,
) -> np.ndarray:
    """Pointwise Kullback-Leibler divergence (torch.nn.functional.kl_div).

    ``input`` is log q; ``target`` is p (or log p when log_target).

        l = p * (log p - log q)              log_target=False, with 0 * (anything) = 0
        l = exp(log p) * (log p - log q)     log_target=True

    'mean' divides by input.size; 'batchmean' (the true KL for a batch of
    distributions) divides by input.shape[0], or by 1 for a 0-d input.

    Where p = 0 the term is 0 whatever log q is: torch agrees for finite log q but
    gives nan for log q = -inf (and, with log_target, for log p = -inf).
    """
    check_reduction(reduction, ("none", "sum", "mean", "batchmean"))
    log_q = _as_float(input)
    target = _as_float(target)
    _check_same_shape(log_q, target)

    with np.errstate(divide="ignore", invalid="ignore"):
        if log_target:
            log_p = target
            loss = _zero_times(np.exp(log_p), log_p - log_q)
        else:
            p = target
            loss = _zero_times(p, np.log(p) - log_q)

    if reduction == "batchmean":
        batch = log_q.shape[0] if log_q.ndim > 0 else 1
        return reduce(loss, "mean", denominator=batch)
    return reduce(loss, reduction)


# ---------------------------------------------------------------------------
# focal losses


def sigmoid_focal_loss(
    inputs: np.ndarray,
    targets: np.ndarray,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
    soft_targets: str = "interpolated",
) -> np.ndarray:
    """Sigmoid focal loss (Lin et al. 2017, eq. 5; torchvision.ops.sigmoid_focal_loss).

        ce = BCE-with-logits(x, y)
        1 - p_t = y * (1 - sigma(x)) + (1 - y) * sigma(x)
        l = alpha_t * (1 - p_t)^gamma * ce,   alpha_t = alpha * y + (1 - alpha) * (1 - y)

    A negative ``alpha`` drops alpha_t (torchvision's switch). Soft targets in [0, 1] are
    allowed; 0^0 = 1, so gamma = 0 gives alpha_t * ce. mean = sum / inputs.size.

    ``soft_targets``, how a fractional y enters (every form agrees on y in {0, 1}):
        'interpolated' (the paper's p_t and alpha_t, linear in y; torchvision), as above;
        'exp_bce'      1 - p_t = 1 - exp(-ce) (mmdetection's, smp's), alpha_t as above;
        'per_term'     l = y alpha (1 - p)^gamma (-log p) + (1 - y)(1 - alpha) p^gamma
                       (-log(1 - p)), p = sigma(x): each class term its own weight (kornia);
                       a negative alpha drops alpha and 1 - alpha.
    """
    check_reduction(reduction)
    x = _as_float(inputs)
    y = _as_float(targets)
    _check_same_shape(x, y, "targets")

    weighted = alpha >= 0
    if soft_targets == "per_term":
        positive = y * expit(-x) ** gamma * -log_expit(x)
        negative = (1 - y) * expit(x) ** gamma * -log_expit(-x)
        if weighted:
            positive, negative = alpha * positive, (1 - alpha) * negative
        return reduce(positive + negative, reduction)
    ce = _bce_with_logits(x, y)
    if soft_targets == "interpolated":
        # 1 - p_t from sigma(-x) directly: forming p_t first and subtracting it from 1
        # loses everything below 1e-16 once the prediction is confident.
        one_minus_pt = y * expit(-x) + (1 - y) * expit(x)
    elif soft_targets == "exp_bce":
        one_minus_pt = -np.expm1(-ce)  # 1 - exp(-ce) without cancelling for a small ce
    else:
        raise ValueError(f"soft_targets must be 'interpolated', 'exp_bce' or 'per_term',"
                         f" not {soft_targets!r}")
    loss = one_minus_pt**gamma * ce
    if weighted:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return reduce(loss, reduction)


def softmax_focal_loss(
    input: np.ndarray,
    target: np.ndarray,
    alpha: np.ndarray | None = None,
    gamma: float = 2.0,
    ignore_index: int = -100,
    reduction: str = "mean",
    mean_over: str = "kept",
) -> np.ndarray:
    """Multi-class (softmax) focal loss (Lin et al. 2017) with class-index targets.

    Layouts as in cross_entropy. p_t = softmax probability of the target class.

        l_i = -alpha[y_i] * (1 - p_t)^gamma * log p_t,   0 where y_i == ignore_index
        mean = sum_i l_i / #{i not ignored}

    ``alpha`` is an optional per-class array of shape (C,) (None means 1). Design
    decision: unlike cross_entropy's ``weight``, alpha does NOT enter the mean's
    denominator; it rescales each class's loss, it is not a resampling weight. With
    every target ignored the mean is 0/0 = nan. gamma = 0 gives alpha-weighted cross
    entropy (0^0 = 1).

    mean_over (a convention): what 'mean' divides by. 'kept', the targets not ignored (as
    above); 'all', every target, ignored ones included (smp); 'elements', every element of a
    per-class map, C times every target (kornia's focal_loss).
    """
    check_reduction(reduction)
    z, _ = _class_last(_as_float(input))
    num_classes = z.shape[-1]
    a = _class_vector(alpha, num_classes, "alpha")
    _check_index_target_shape(target, z.shape[:-1])
    kept, y = _class_indices(target, ignore_index, num_classes)

    log_pt = _gather(_log_softmax(z), y)
    # 1 - p_t as -expm1(log p_t) stays exact where p_t rounds to 1
    one_minus_pt = -np.expm1(log_pt)
    loss = np.where(kept, -a[y] * one_minus_pt**gamma * log_pt, 0.0)
    return reduce(loss, reduction, denominator=focal_mean_denominator(
        np.count_nonzero(kept), kept.size, num_classes, mean_over))


def focal_mean_denominator(kept: int, targets: int, classes: int, mean_over: str) -> float:
    """What the softmax focal loss's 'mean' divides by under each `mean_over` convention."""
    counts = {"kept": kept, "all": targets, "elements": targets * classes}
    if mean_over not in counts:
        raise ValueError(f"mean_over must be one of {sorted(counts)}, not {mean_over!r}")
    return float(counts[mean_over])


def quality_focal_loss(
    input: np.ndarray,
    target: np.ndarray,
    beta: float = 2.0,
    reduction: str = "mean",
) -> np.ndarray:
    """Quality Focal Loss (Li et al. 2020, Generalized Focal Loss, eq. 5), elementwise.

        l = -|y - sigma(x)|^beta * ((1 - y) log(1 - sigma(x)) + y log sigma(x))

    with y in [0, 1] a soft quality (IoU) target. mean = sum / input.size.

    Accuracy: y - sigma(x) is formed as y * (1 - sigma(x)) - (1 - y) * sigma(x), so a
    confident prediction of a hard target keeps its tiny distance (1 - sigma(40) = 4e-18
    instead of 0). Where y is close to sigma(x) the two rounded products cancel, and
    |y - sigma| is only known to a few ulps of the larger product, as for any float64
    evaluation.
    """
    check_reduction(reduction)
    x = _as_float(input)
    y = _as_float(target)
    _check_same_shape(x, y)

    distance = np.abs(y * expit(-x) - (1 - y) * expit(x))
    loss = distance**beta * _bce_with_logits(x, y)
    return reduce(loss, reduction)
