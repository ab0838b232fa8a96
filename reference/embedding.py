"""Embedding losses in float64, written as their formulas: the cosine embedding loss, the
triplet margin loss, and the triplet loss of a given distance, with the distances they use.

Conventions follow ``torch.nn.functional``: argument names, defaults and the reduction (mean =
sum / number of outputs, 0/0 = nan over zero elements). An embedding lies along the last axis:
(N, D) rows, or one (D,) vector whose loss is 0-d. The functions are written over any leading
axes (the gradient check stacks moved copies of a case along a new first one), and all tensors
of a call share one shape (torch broadcasts some of them, which no spec here relies on). Every
function returns a float64 array, 0-d for 'sum' and 'mean'. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from reference.ranking import _sum_of_three
from reference.reduction import check_reduction, reduce

__all__ = [
    "COSINE_EPS",
    "cosine_embedding_loss",
    "cosine_similarity",
    "pairwise_distance",
    "squared_distance",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
]

# torch's EPSILON in aten's cosine_embedding_loss, `constexpr float EPSILON = 1e-12`: a float32
# constant, so 1e-12 as float32 (9.999999960041972e-13) whatever the inputs' dtype.
COSINE_EPS = float(np.float32(1e-12))
# F.cosine_similarity's default eps: each norm is clamped at it, max(|x|, 1e-8).
CLAMPED_NORM_EPS = 1e-8
COSINE_EPS_CONVENTIONS = ("added", "clamped")


def _as_float(array: np.ndarray) -> np.ndarray:
    return np.asarray(array, dtype=np.float64)


def _check_same_shape(**arrays: np.ndarray) -> None:
    (first, reference), *others = arrays.items()
    if reference.ndim < 1:
        raise ValueError(f"{first} must have an embedding axis, got shape {reference.shape}")
    for name, other in others:
        if other.shape != reference.shape:
            raise ValueError(f"{name} shape {other.shape} must equal {first} shape"
                             f" {reference.shape}")


def _p_norm(v: np.ndarray, p: float) -> np.ndarray:
    """(sum_i |v_i|^p)^(1/p) over the last axis (max_i |v_i| for p = inf), scaled by the
    largest |v_i| so that the powers neither overflow (|v| = 1e200, p = 3) nor underflow
    (|v| = 1e-300): each term (|v_i| / m)^p lies in [0, 1], the largest at 1."""
    a = np.abs(v)
    m = np.max(a, axis=-1, initial=0.0)
    if np.isinf(p):
        return m
    safe = np.where(m > 0, m, 1.0)[..., None]
    with np.errstate(under="ignore"):
        total = np.sum((a / safe) ** p, axis=-1)
    return np.where(m > 0, m * total ** (1.0 / p), 0.0)


def pairwise_distance(x1: np.ndarray, x2: np.ndarray, p: float = 2.0,
                      eps: float = 1e-6) -> np.ndarray:
    """torch.pairwise_distance: the p-norm of the difference shifted by eps, over the last axis,

        d(x1, x2) = || x1 - x2 + eps ||_p = (sum_i |x1_i - x2_i + eps|^p)^(1/p),   p > 0

    (max_i |x1_i - x2_i + eps| for p = inf). eps is added to every coordinate of the
    difference, not to the norm: identical vectors are D^(1/p) eps apart, and the distance is
    not symmetric, d(x2, x1) = || x1 - x2 - eps ||_p. Below p = 1 it is no norm; torch
    computes it all the same.

    Accuracy: each coordinate x1_i - x2_i + eps is a three-term sum, summed without error
    (`_sum_of_three`), so a difference that eps nearly cancels keeps its remainder; the scaled
    norm then loses a few ulps (a division, a power, a sum of D terms, a root).
    """
    if not p > 0:
        raise ValueError(f"p must be positive, not {p!r}")
    a, b = _as_float(x1), _as_float(x2)
    _check_same_shape(x1=a, x2=b)
    return _p_norm(_sum_of_three(a, -b, np.full(a.shape, np.float64(eps))), p)


def squared_distance(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """The squared Euclidean distance over the last axis, sum_i (x1_i - x2_i)^2, no eps.

    Accuracy: one rounding per difference, then squares and a sum of D non-negative terms: a
    few ulps relative.
    """
    a, b = _as_float(x1), _as_float(x2)
    _check_same_shape(x1=a, x2=b)
    with np.errstate(over="ignore"):
        return np.sum((a - b) ** 2, axis=-1)


def _unit(x: np.ndarray, cosine_eps: str) -> tuple[np.ndarray, np.ndarray]:
    """x / n(x), and e = 1 - |x / n(x)|^2, the share of n^2 that is not |x|^2, where n is the
    norm the convention divides by:

        'added':   n = sqrt(|x|^2 + eps), eps = COSINE_EPS    (e = eps / n^2)
        'clamped': n = max(|x|, 1e-8)                          (e = 1 - (|x| / n)^2)

    Neither forms |x|^2 (a hypot of the scaled norm and sqrt(eps)), so that 1e200 keeps its
    norm and 1e-300 its direction."""
    norm = _p_norm(x, 2.0)
    if cosine_eps == "added":
        root = np.sqrt(COSINE_EPS)
        n = np.hypot(norm, root)
        with np.errstate(under="ignore"):
            rest = (root / n) ** 2
    else:
        n = np.maximum(norm, CLAMPED_NORM_EPS)
        ratio = norm / n
        rest = (1.0 - ratio) * (1.0 + ratio)
    return x / n[..., None], rest


def _check_cosine_eps(cosine_eps: str) -> None:
    if cosine_eps not in COSINE_EPS_CONVENTIONS:
        raise ValueError(f"cosine_eps must be one of {COSINE_EPS_CONVENTIONS}, not"
                         f" {cosine_eps!r}")


def cosine_similarity(x1: np.ndarray, x2: np.ndarray, cosine_eps: str = "added") -> np.ndarray:
    """The cosine of two vectors (along the last axis) as cosine_embedding_loss takes it:

        'added' (torch's aten):  cos = x1 . x2 / sqrt((|x1|^2 + eps) (|x2|^2 + eps))
        'clamped' (F.cosine_similarity):  cos = x1 . x2 / (max(|x1|, 1e-8) max(|x2|, 1e-8))

    with eps = COSINE_EPS. A zero vector has cosine 0 with anything under both.

    Accuracy: the sum of D products of vectors no longer than 1, each coordinate one division
    from its input: D + 2 ulps of sum_i |u1_i u2_i| <= 1, absolutely.
    """
    _check_cosine_eps(cosine_eps)
    a, b = _as_float(x1), _as_float(x2)
    _check_same_shape(x1=a, x2=b)
    u1, _ = _unit(a, cosine_eps)
    u2, _ = _unit(b, cosine_eps)
    return np.sum(u1 * u2, axis=-1)


def cosine_embedding_loss(
    input1: np.ndarray,
    input2: np.ndarray,
    target: np.ndarray,
    margin: float = 0.0,
    reduction: str = "mean",
    cosine_eps: str = "added",
) -> np.ndarray:
    """Cosine embedding loss (torch.nn.functional.cosine_embedding_loss).

        l = 1 - cos(x1, x2)              if y = 1
        l = max(0, cos(x1, x2) - margin)  if y = -1

    for x1, x2 of shape (N, D) with y of shape (N,), or one pair (D,) with a 0-d y; y must be
    +1 or -1 (torch scores any other label 0). cos is `cosine_similarity` under the convention
    ``cosine_eps``: 'added' (the spec's: torch's aten adds eps = 1e-12, a float32 constant,
    to both squared norms), or 'clamped' (each norm clamped at 1e-8, as F.cosine_similarity
    does: a loss built on it). They differ below norms of about 1e-5: identical vectors of
    norm 1e-6 have cosine 1/2 under 'added', 1 under 'clamped'. A zero vector has cosine 0:
    loss 1 for a similar pair, max(0, -margin) for a dissimilar one.

    Accuracy: 1 - cos is not formed as a difference, which loses every digit of the tiny loss
    of nearly parallel vectors. With u = x / n and e = 1 - |u|^2 (`_unit`),

        1 - u1 . u2 = (|u1 - u2|^2 + e1 + e2) / 2,

    a sum of non-negative terms; only u1 - u2 subtracts, an ulp of |u| <= 1 per coordinate.
    cos - margin is the hinge's own subtraction.
    """
    check_reduction(reduction)
    _check_cosine_eps(cosine_eps)
    x1, x2, y = _as_float(input1), _as_float(input2), _as_float(target)
    _check_same_shape(input1=x1, input2=x2)
    if y.shape != x1.shape[:-1]:
        raise ValueError(f"target shape {y.shape} must be the inputs' without their last axis,"
                         f" {x1.shape[:-1]}")
    if not np.all((y == 1) | (y == -1)):
        raise ValueError("target must hold only +1 and -1")
    u1, e1 = _unit(x1, cosine_eps)
    u2, e2 = _unit(x2, cosine_eps)
    similar = 0.5 * (np.sum((u1 - u2) ** 2, axis=-1) + e1 + e2)
    dissimilar = np.maximum(np.sum(u1 * u2, axis=-1) - margin, 0.0)
    return reduce(np.where(y == 1, similar, dissimilar), reduction)


def _hinge(d_positive: np.ndarray, d_negative: np.ndarray, margin: float) -> np.ndarray:
    """max(margin + d(a, p) - d(a, n), 0), its three terms summed without error."""
    return np.maximum(_sum_of_three(np.full(np.shape(d_positive), np.float64(margin)),
                                    d_positive, -d_negative), 0.0)


def _check_margin(margin: float) -> None:
    if not margin > 0:
        raise ValueError(f"margin must be greater than 0, got {margin!r}")


def triplet_margin_loss(
    anchor: np.ndarray,
    positive: np.ndarray,
    negative: np.ndarray,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-06,
    swap: bool = False,
    reduction: str = "mean",
) -> np.ndarray:
    """Triplet margin loss (torch.nn.functional.triplet_margin_loss; Schroff et al. 2015 with
    p-norm distances, Balntas et al. 2016 for the swap).

        l = max(margin + d(a, p) - d(a, n), 0),   d = pairwise_distance(., ., p, eps)

    for (N, D) rows or one (D,) triplet (a 0-d loss). With ``swap`` the negative's distance is
    the smaller of d(a, n) and d(p, n): the positive stands in for the anchor where it is the
    closer to the negative. margin must be > 0 (torch raises a ValueError otherwise).

    Accuracy: each distance loses a few ulps (`pairwise_distance`); the hinge's argument is
    a three-term sum, summed without error, so a triplet that nearly meets the margin keeps
    what is left of it, up to those ulps of d(a, p) and d(a, n).
    """
    check_reduction(reduction)
    _check_margin(margin)
    a, pos, neg = _as_float(anchor), _as_float(positive), _as_float(negative)
    _check_same_shape(anchor=a, positive=pos, negative=neg)
    d_positive = pairwise_distance(a, pos, p, eps)
    d_negative = pairwise_distance(a, neg, p, eps)
    if swap:
        d_negative = np.minimum(d_negative, pairwise_distance(pos, neg, p, eps))
    return reduce(_hinge(d_positive, d_negative, margin), reduction)


def triplet_margin_with_distance_loss(
    anchor: np.ndarray,
    positive: np.ndarray,
    negative: np.ndarray,
    *,
    distance_function: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: str = "mean",
) -> np.ndarray:
    """Triplet margin loss of a given distance
    (torch.nn.functional.triplet_margin_with_distance_loss).

        l = max(margin + d(a, p) - d(a, n), 0)

    where d is ``distance_function``, called on two float64 arrays of the inputs' shape and
    returning one distance per row (their shape without the last axis); None is
    `pairwise_distance` with its defaults (p = 2, eps = 1e-6), as torch's default is
    torch.pairwise_distance. With ``swap``, d(a, n) is replaced by min(d(a, n), d(p, n)), the
    positive passed first, as torch calls it. margin must be > 0.

    Accuracy: the distance's own, and the hinge's three-term sum without error.
    """
    check_reduction(reduction)
    _check_margin(margin)
    a, pos, neg = _as_float(anchor), _as_float(positive), _as_float(negative)
    _check_same_shape(anchor=a, positive=pos, negative=neg)
    distance = pairwise_distance if distance_function is None else distance_function

    def d(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = _as_float(distance(x, y))
        if out.shape != x.shape[:-1]:
            raise ValueError(f"distance_function returned shape {out.shape}, not one distance"
                             f" per row {x.shape[:-1]}")
        return out

    d_positive, d_negative = d(a, pos), d(a, neg)
    if swap:
        d_negative = np.minimum(d_negative, d(pos, neg))
    return reduce(_hinge(d_positive, d_negative, margin), reduction)
