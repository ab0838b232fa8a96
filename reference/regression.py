"""Regression losses in float64, written as their formulas.

Conventions follow ``torch.nn.functional``: argument names, defaults and the reduction
(mean = sum / input.size; the mean over zero elements is 0/0 = nan, as in torch). Unlike
torch, which broadcasts mismatched shapes with a warning, ``input`` and ``target`` must
have the same shape. Every function returns a float64 array, 0-d for 'sum' and 'mean'.

Notation: x input, y target, d = |x - y|. d is one correctly rounded subtraction, and no
formula below subtracts anything from it that could cancel (on the linear branches
d >= beta, so d - beta / 2 >= d / 2), so every loss keeps the relative accuracy of d.
"""

from __future__ import annotations

import numpy as np

from reference.reduction import check_reduction, reduce

__all__ = [
    "gaussian_nll_loss",
    "gaussian_variance",
    "huber_loss",
    "l1_loss",
    "mse_loss",
    "poisson_nll_loss",
    "smooth_l1_loss",
]


def _distance(input: np.ndarray, target: np.ndarray) -> np.ndarray:
    """d = |x - y| after checking that the shapes agree."""
    x = np.asarray(input, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"target shape {y.shape} must equal input shape {x.shape}")
    return np.abs(x - y)


def l1_loss(input: np.ndarray, target: np.ndarray, reduction: str = "mean") -> np.ndarray:
    """Absolute error (torch.nn.functional.l1_loss).

    l = |x - y|
    """
    check_reduction(reduction)
    return reduce(_distance(input, target), reduction)


def mse_loss(input: np.ndarray, target: np.ndarray, reduction: str = "mean") -> np.ndarray:
    """Squared error (torch.nn.functional.mse_loss).

        l = (x - y)^2

    Overflows to inf for |x - y| > 1.3e154, where the true value exceeds float64.
    """
    check_reduction(reduction)
    d = _distance(input, target)
    with np.errstate(over="ignore"):
        return reduce(d * d, reduction)


def smooth_l1_loss(
    input: np.ndarray, target: np.ndarray, reduction: str = "mean", beta: float = 1.0,
    empty_mean: str = "nan",
) -> np.ndarray:
    """Smooth L1 (Girshick 2015, Fast R-CNN, eq. 3; torch.nn.functional.smooth_l1_loss).

        l = 0.5 d^2 / beta     if d < beta
        l = d - 0.5 beta       otherwise

    The two branches meet at d = beta with value and slope continuous. beta = 0 is
    torch's convention for plain L1 (the quadratic branch is empty, so l = d); beta < 0
    raises ValueError, as in torch.

    empty_mean (a convention): the 'mean' of no element is 0 / 0 = NaN ('nan', torch), or 0
    ('zero', fvcore and torchvision's box losses).
    """
    check_reduction(reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss needs beta >= 0, got {beta}")
    if empty_mean not in ("nan", "zero"):
        raise ValueError(f"empty_mean must be 'nan' or 'zero', not {empty_mean!r}")
    d = _distance(input, target)
    if reduction == "mean" and d.size == 0 and empty_mean == "zero":
        return np.asarray(0.0)
    if beta == 0:
        return reduce(d, reduction)
    # d / beta < 1 on the quadratic branch, so this order cannot overflow where d^2 would;
    # np.where evaluates both branches, and the one it drops may overflow harmlessly
    with np.errstate(over="ignore"):
        loss = np.where(d < beta, 0.5 * d * (d / beta), d - 0.5 * beta)
    return reduce(loss, reduction)


def huber_loss(
    input: np.ndarray, target: np.ndarray, reduction: str = "mean", delta: float = 1.0
) -> np.ndarray:
    """Huber loss (Huber 1964; torch.nn.functional.huber_loss).

        l = 0.5 d^2                  if d < delta
        l = delta (d - 0.5 delta)    otherwise

    so huber(delta) = delta * smooth_l1(beta=delta). delta must be > 0, as in torch.
    """
    check_reduction(reduction)
    if not delta > 0:
        raise ValueError(f"huber_loss needs delta > 0, got {delta}")
    d = _distance(input, target)
    # np.where evaluates both branches; the dropped one may overflow harmlessly
    with np.errstate(over="ignore"):
        loss = np.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))
    return reduce(loss, reduction)


def poisson_nll_loss(
    input: np.ndarray,
    target: np.ndarray,
    log_input: bool = True,
    full: bool = False,
    eps: float = 1e-8,
    reduction: str = "mean",
) -> np.ndarray:
    """Poisson negative log-likelihood (torch.nn.functional.poisson_nll_loss).

    For a count y and a predicted rate lambda, given as log lambda = x (log_input) or as
    lambda = x:

        l = exp(x) - y x                  (log_input=True)
        l = x - y log(x + eps)            (log_input=False: eps keeps log(0) away)

    the negative log of the Poisson likelihood lambda^y e^(-lambda) / y! without log y!.
    full adds Stirling's approximation of log y!, y log y - y + log(2 pi y) / 2, where y > 1
    only (0 at and below 1, where log 0! = log 1! = 0 and the approximation is poor).
    mean = sum / number of elements.

    Accuracy: near x = 1, log(x + eps) is log1p((x - 1) + eps), where x - 1 is exact, so a
    count times a log that is nearly 0 keeps its digits (1 + 1e-8 rounds in float64).
    """
    check_reduction(reduction)
    x = np.asarray(input, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"target shape {y.shape} must equal input shape {x.shape}")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        loss = np.exp(x) - y * x if log_input else x - y * _log_of_sum(x, eps)
        if full:
            above = np.where(y > 1, y, 2.0)  # any y > 1: the masked entries are never used
            stirling = above * np.log(above) - above + 0.5 * np.log(2 * np.pi * above)
            loss = loss + np.where(y > 1, stirling, 0.0)
    return reduce(loss, reduction)


def _log_of_sum(x: np.ndarray, eps: float) -> np.ndarray:
    """log(x + eps), through log1p where x is within [0.5, 2] (Sterbenz: x - 1 is exact)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        near_one = np.abs(x - 1.0) <= 0.5
        return np.where(near_one, np.log1p((x - 1.0) + eps), np.log(x + eps))



def gaussian_variance(input: np.ndarray, var: np.ndarray | float) -> np.ndarray:
    """var laid out against input as torch.nn.functional.gaussian_nll_loss accepts it: a
    number for every element; one per element (heteroscedastic); input's shape without its
    last axis, or with one axis of length 1 (homoscedastic along it). Negative entries and
    any other shape raise."""
    x = np.asarray(input, dtype=np.float64)
    v = np.asarray(var, dtype=np.float64)
    if np.any(v < 0):
        raise ValueError("var has negative entries")
    if v.ndim == 0 or v.shape == x.shape:
        return np.broadcast_to(v, x.shape)
    if v.shape == x.shape[:-1]:
        return np.broadcast_to(v[..., None], x.shape)
    # One axis where var has length 1 and the input does not: broadcast along it.
    mismatched = [b for a, b in zip(x.shape, v.shape, strict=False) if a != b]
    if v.ndim == x.ndim and mismatched == [1]:
        return np.broadcast_to(v, x.shape)
    raise ValueError(f"var of shape {v.shape} does not fit input of shape {x.shape}")


def gaussian_nll_loss(
    input: np.ndarray,
    target: np.ndarray,
    var: np.ndarray | float,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> np.ndarray:
    """Gaussian negative log-likelihood (torch.nn.functional.gaussian_nll_loss).

    For a target y drawn from a normal distribution of predicted mean x and variance v:

        l = (log max(v, eps) + (x - y)^2 / max(v, eps)) / 2   (+ log(2 pi) / 2 where full)

    the negative log of the density exp(-(x - y)^2 / 2v) / sqrt(2 pi v), with v clamped
    from below at eps (torch clamps; it does not add eps). v is laid out as
    `gaussian_variance` says. 'none' has input's shape; mean = sum / number of elements.

    Accuracy: x - y is one rounding and nothing after it cancels except log v against
    (x - y)^2 / v, whose sizes are the error scale.
    """
    check_reduction(reduction)
    x = np.asarray(input, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"target shape {y.shape} must equal input shape {x.shape}")
    v = np.maximum(gaussian_variance(x, var), eps)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # eps = 0 at v = 0
        loss = 0.5 * (np.log(v) + (x - y) ** 2 / v)
    if full:
        loss = loss + 0.5 * np.log(2 * np.pi)
    return reduce(loss, reduction)
