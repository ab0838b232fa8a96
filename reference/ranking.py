"""Ranking and embedding losses in float64, written as their formulas.

Conventions follow ``torch.nn.functional``: argument names, defaults and the reduction
(mean = sum / input.size, 0/0 = nan over zero elements). All tensors of a call must share
one shape (torch broadcasts), and the target must hold only +1 and -1: torch computes
something for other values, but the losses are defined for those two only.
Every function returns a float64 array, 0-d for 'sum' and 'mean'.
"""

from __future__ import annotations

import numpy as np

from reference.reduction import check_reduction, reduce

__all__ = ["hinge_embedding_loss", "margin_ranking_loss", "soft_margin_loss"]


def _as_float(array: np.ndarray) -> np.ndarray:
    return np.asarray(array, dtype=np.float64)


def _check_shapes(reference_name: str, reference: np.ndarray, **others: np.ndarray) -> None:
    for name, other in others.items():
        if other.shape != reference.shape:
            raise ValueError(
                f"{name} shape {other.shape} must equal {reference_name} shape {reference.shape}"
            )


def _check_sign_target(y: np.ndarray) -> None:
    if not np.all((y == 1) | (y == -1)):
        raise ValueError("target must hold only +1 and -1")


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """s = fl(a + b) and its rounding error e, so that a + b = s + e exactly (Knuth)."""
    s = a + b
    b_part = s - a
    return s, (a - (s - b_part)) + (b - b_part)


def margin_ranking_loss(
    input1: np.ndarray,
    input2: np.ndarray,
    target: np.ndarray,
    margin: float = 0.0,
    reduction: str = "mean",
) -> np.ndarray:
    """Margin ranking loss (torch.nn.functional.margin_ranking_loss).

        l = max(0, -y (x1 - x2) + margin),   y in {+1, -1}

    y = 1 asks for x1 to rank above x2 by at least ``margin``; the margin may be negative.

    Accuracy: with y = +-1 the products y x are exact, so the loss is the three-term sum
    margin - y x1 + y x2. It is summed with error-free transformations (two TwoSums and
    their collected errors, Ogita, Rump & Oishi 2005), so a margin that nearly cancels
    y (x1 - x2) leaves its true small remainder rather than the rounding error of
    x1 - x2. Non-finite inputs take the plain formula.
    """
    check_reduction(reduction)
    x1 = _as_float(input1)
    x2 = _as_float(input2)
    y = _as_float(target)
    _check_shapes("input1", x1, input2=x2, target=y)
    _check_sign_target(y)

    with np.errstate(invalid="ignore", over="ignore"):
        pair, pair_error = _two_sum(-y * x1, y * x2)
        total, total_error = _two_sum(pair, np.float64(margin))
        compensated = total + (pair_error + total_error)
        plain = -y * (x1 - x2) + margin
    hinge = np.where(np.isfinite(compensated), compensated, plain)
    return reduce(np.maximum(hinge, 0.0), reduction)


def hinge_embedding_loss(
    input: np.ndarray,
    target: np.ndarray,
    margin: float = 1.0,
    reduction: str = "mean",
) -> np.ndarray:
    """Hinge embedding loss (torch.nn.functional.hinge_embedding_loss).

        l = x                    if y = 1
        l = max(0, margin - x)   if y = -1

    x is meant to be a distance (>= 0), but torch's definition is kept as is for any x:
    for y = 1 the loss is x itself, negative for a negative x.
    """
    check_reduction(reduction)
    x = _as_float(input)
    y = _as_float(target)
    _check_shapes("input", x, target=y)
    _check_sign_target(y)
    return reduce(np.where(y == 1, x, np.maximum(margin - x, 0.0)), reduction)


def soft_margin_loss(
    input: np.ndarray,
    target: np.ndarray,
    reduction: str = "mean",
) -> np.ndarray:
    """Soft margin loss (torch.nn.functional.soft_margin_loss): the logistic loss of a +-1 label.

        l = log(1 + exp(-y x)),   y in {+1, -1}

    the binary cross-entropy with logits of x against the label (1 + y) / 2.

    Accuracy: y x is exact for y = +-1, and log(1 + e^z) is taken as logaddexp(0, z), which
    neither overflows for a large negative margin (l = -y x + log(1 + e^(y x))) nor loses
    the tiny loss of a large positive one (log1p of e^(-y x)).
    """
    check_reduction(reduction)
    x = _as_float(input)
    y = _as_float(target)
    _check_shapes("input", x, target=y)
    _check_sign_target(y)
    return reduce(np.logaddexp(0.0, -y * x), reduction)

