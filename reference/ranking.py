"""Margin losses in float64, written as their formulas: ranking and embedding hinges, the
soft margin, and the multi-class and multi-label hinges on class scores.

Conventions follow ``torch.nn.functional``: argument names, defaults and the reduction
(mean = sum / number of outputs, 0/0 = nan over zero elements). For the pairwise losses all
tensors of a call must share one shape (torch broadcasts), and the target must hold only +1
and -1: torch computes something for other values, but the losses are defined for those two
only. Every function returns a float64 array, 0-d for 'sum' and 'mean'.
"""

from __future__ import annotations

import numpy as np

from reference.reduction import check_reduction, reduce

__all__ = [
    "hinge_embedding_loss",
    "margin_ranking_loss",
    "multi_margin_loss",
    "multilabel_margin_loss",
    "soft_margin_loss",
]


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


def _sum_of_three(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """a + b + c, summed with error-free transformations (two TwoSums and their collected
    errors, Ogita, Rump & Oishi 2005): a hinge's argument that nearly cancels keeps its true
    small remainder rather than the rounding error of a partial sum. Non-finite terms take
    the plain sum."""
    with np.errstate(invalid="ignore", over="ignore"):
        pair, pair_error = _two_sum(a, b)
        total, total_error = _two_sum(pair, c)
        compensated = total + (pair_error + total_error)
        return np.where(np.isfinite(compensated), compensated, a + b + c)


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
    margin - y x1 + y x2, summed without error (`_sum_of_three`): a margin that nearly
    cancels y (x1 - x2) leaves its true small remainder.
    """
    check_reduction(reduction)
    x1 = _as_float(input1)
    x2 = _as_float(input2)
    y = _as_float(target)
    _check_shapes("input1", x1, input2=x2, target=y)
    _check_sign_target(y)

    hinge = _sum_of_three(-y * x1, y * x2, np.float64(margin))
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



def _class_scores(input: np.ndarray) -> np.ndarray:
    """(N, C) scores, or one sample (C,) as a batch of 1."""
    x = _as_float(input)
    if x.ndim not in (1, 2):
        raise ValueError(f"input must be (C,) or (N, C), got shape {x.shape}")
    return x.reshape(1, -1) if x.ndim == 1 else x


def _per_sample(losses: np.ndarray, input: np.ndarray, reduction: str) -> np.ndarray:
    """The samples' losses, 0-d for one (C,) sample, reduced over the batch."""
    return reduce(losses[0] if np.ndim(input) == 1 else losses, reduction)


def multi_margin_loss(
    input: np.ndarray,
    target: np.ndarray,
    p: int = 1,
    margin: float = 1.0,
    weight: np.ndarray | None = None,
    reduction: str = "mean",
    weight_placement: str = "outside",
) -> np.ndarray:
    """Multi-class hinge loss (torch.nn.functional.multi_margin_loss; Weston & Watkins 1999).

        l_n = (1 / C) sum_{i != y_n} w_{y_n} max(0, margin - x_n[y_n] + x_n[i])^p,  p in {1, 2}

    for scores x (N, C) (or one sample, (C,)) and class indices y (N,) (0-d). Every other
    class should score at least ``margin`` below the target class; the sum leaves the
    target class out, but the mean still divides by C. w (C,) weights the target's class
    (ones when None). 'none' is (N,), 0-d for one sample; mean = sum / N.

    ``weight_placement``: where w enters. 'outside' multiplies the hinge's power, as
    torch computes it (aten's multi_margin_loss kernels); 'inside' scales the hinge's
    argument, max(0, w (margin - x[y] + x[i]))^p, as torch's documentation writes it. The
    two differ for p = 2 (by a factor w) and for a negative weight.

    Accuracy: the hinge's argument is a three-term sum, summed without error
    (`_sum_of_three`), so a score difference that nearly meets the margin keeps its
    remainder.
    """
    check_reduction(reduction)
    if p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, not {p!r}")
    if weight_placement not in ("outside", "inside"):
        raise ValueError(f"weight_placement must be 'outside' or 'inside', not"
                         f" {weight_placement!r}")
    x = _class_scores(input)
    n, classes = x.shape
    y = np.asarray(target).reshape(-1)
    if y.shape != (n,):
        raise ValueError(f"target shape {np.shape(target)} must be the input's batch ({n},)")
    if np.any((y < 0) | (y >= classes)):
        raise ValueError(f"target must hold class indices in [0, {classes})")
    w = np.ones(classes) if weight is None else _as_float(weight)
    if w.shape != (classes,):
        raise ValueError(f"weight shape {w.shape} must be ({classes},)")
    rows = np.arange(n)
    own = x[rows, y][:, None]
    z = _sum_of_three(np.float64(margin) * np.ones_like(x), -own * np.ones_like(x), x)
    w_own = w[y][:, None]
    if weight_placement == "outside":
        terms = w_own * np.maximum(z, 0.0) ** p
    else:
        terms = np.maximum(w_own * z, 0.0) ** p
    terms[rows, y] = 0.0
    return _per_sample(np.sum(terms, axis=1) / classes, input, reduction)


def multilabel_margin_loss(
    input: np.ndarray,
    target: np.ndarray,
    reduction: str = "mean",
) -> np.ndarray:
    """Multi-label hinge loss (torch.nn.functional.multilabel_margin_loss).

        l_n = (1 / C) sum_j sum_{i not in Y_n} max(0, 1 - (x_n[y_nj] - x_n[i]))

    for scores x (N, C) (or one sample, (C,)) and a target of the same shape that lists
    the sample's classes y_n0, y_n1, ... from the front, ended by the first -1 (the rest is
    ignored). Y_n is the set of listed classes: each listed class should score at least 1
    above every class not listed. A class listed twice counts twice, as the sum over j
    says. 'none' is (N,), 0-d for one sample; mean = sum / N.

    Accuracy: 1 - x[y] + x[i] is summed without error (`_sum_of_three`).
    """
    check_reduction(reduction)
    x = _class_scores(input)
    y = np.asarray(target).reshape(x.shape)
    if np.shape(target) != np.shape(input):
        raise ValueError(f"target shape {np.shape(target)} must equal input shape"
                         f" {np.shape(input)}")
    n, classes = x.shape
    if np.any((y < -1) | (y >= classes)):
        raise ValueError(f"target must hold class indices in [0, {classes}) or -1")
    # The listed prefix: entries before a row's first -1.
    listed = np.cumsum(y == -1, axis=1) == 0
    safe = np.where(listed, y, 0)
    rows = np.arange(n)[:, None]
    is_target = np.zeros((n, classes), dtype=bool)
    np.logical_or.at(is_target, (np.broadcast_to(rows, y.shape)[listed], safe[listed]), True)
    own = x[rows, safe]  # (N, S): the score of each listed class
    shape = (n, classes, classes)
    z = _sum_of_three(np.ones(shape), -np.broadcast_to(own[:, :, None], shape),
                      np.broadcast_to(x[:, None, :], shape))
    counted = listed[:, :, None] & ~is_target[:, None, :]
    terms = np.where(counted, np.maximum(z, 0.0), 0.0)
    return _per_sample(np.sum(terms, axis=(1, 2)) / classes, input, reduction)
