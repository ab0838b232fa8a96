"""The reductions shared by every reference loss ('none', 'sum', 'mean')."""

from __future__ import annotations

import numpy as np

REDUCTIONS: tuple[str, ...] = ("none", "mean", "sum")


def check_reduction(reduction: str, valid: tuple[str, ...] = REDUCTIONS) -> None:
    """Raise ValueError unless ``reduction`` is one of ``valid``."""
    if reduction not in valid:
        raise ValueError(
            f"unknown reduction {reduction!r}; expected one of {', '.join(map(repr, valid))}"
        )


def reduce(elementwise: np.ndarray, reduction: str,
           denominator: float | np.ndarray | None = None) -> np.ndarray:
    """Reduce an elementwise loss.

    'none' -> the elementwise values as float64;
    'sum'  -> sum_i l_i, a 0-d float64 array;
    'mean' -> (sum_i l_i) / denominator, a 0-d float64 array, where the denominator
              defaults to the number of elements. Losses with their own normaliser (the
              weighted count of cross_entropy, the batch size of kl_div's 'batchmean')
              pass it explicitly. 0/0 is nan, as in torch (e.g. every target ignored).
              A denominator with the elements' shape divides each element by its own
              entry before the plain mean: mean_i l_i / d_i (ctc_loss divides each
              sample's loss by its target length).
    """
    check_reduction(reduction)
    values = np.asarray(elementwise, dtype=np.float64)
    if reduction == "none":
        return values
    if reduction == "mean" and np.ndim(denominator) > 0:
        with np.errstate(invalid="ignore", divide="ignore"):
            each = values / np.asarray(denominator, dtype=np.float64)
            return np.asarray(np.sum(each, dtype=np.float64) / np.float64(each.size))
    total = np.sum(values, dtype=np.float64)
    if reduction == "sum":
        return np.asarray(total, dtype=np.float64)
    if denominator is None:
        denominator = values.size
    # An empty or fully ignored batch is 0/0: nan is the answer, not a warning.
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.float64(total) / np.float64(denominator), dtype=np.float64)
