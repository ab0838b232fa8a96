"""Named input domains: Hypothesis strategies that reach the regimes where losses break.

Element strategies mix ordinary values with log-spaced magnitudes (as scipy's mpmath checks do)
so that both everyday inputs and extremes (|logit| = 1e4, p = 1e-30, p = 1 - 1e-7) are drawn,
and shrinking still moves toward small, simple values.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

MAX_LOGIT = 1e4


def _signed_log_spaced(lo_exp: float, hi_exp: float) -> st.SearchStrategy[float]:
    return st.builds(
        lambda sign, exponent: sign * 10.0**exponent,
        st.sampled_from([1.0, -1.0]),
        st.floats(lo_exp, hi_exp),
    )


def logits(max_magnitude: float = MAX_LOGIT) -> st.SearchStrategy[float]:
    """Real-valued scores: ordinary, tiny (1e-3) and huge (up to 1e4), and the float32 cliffs."""
    cliffs = [0.0, 1.0, -1.0, 17.0, -17.0, 88.5, -88.5, 104.0, -104.0, 1e4, -1e4]
    return st.one_of(
        st.floats(-8.0, 8.0),
        _signed_log_spaced(-3.0, float(np.log10(max_magnitude))),
        st.sampled_from([c for c in cliffs if abs(c) <= max_magnitude]),
    )


def probabilities() -> st.SearchStrategy[float]:
    """Values in [0, 1]: exact 0 and 1, and values within 1e-30 / 1e-7 of either end."""
    return st.one_of(
        st.floats(0.0, 1.0),
        st.sampled_from([0.0, 1.0, 0.5]),
        st.floats(-30.0, -1.0).map(lambda e: 10.0**e),
        st.floats(-7.0, -1.0).map(lambda e: 1.0 - 10.0**e),
    )


def binary_targets() -> st.SearchStrategy[float]:
    return st.sampled_from([0.0, 1.0])


def soft_targets() -> st.SearchStrategy[float]:
    return st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))


def positive_weights() -> st.SearchStrategy[float]:
    """Weights from 1e-3 to 1e3 (extreme class weights are a classic place for bugs)."""
    return st.one_of(st.just(1.0), st.floats(-3.0, 3.0).map(lambda e: 10.0**e))


def array(shape: tuple[int, ...], elements: st.SearchStrategy[float]) -> st.SearchStrategy:
    return hnp.arrays(np.float64, shape, elements=elements)


@st.composite
def elementwise_shape(draw: st.DrawFn, min_dims: int = 0, max_dims: int = 3) -> tuple[int, ...]:
    """Shapes of elementwise losses: scalars, one sample, and small batches."""
    return draw(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=5))


@st.composite
def class_layout(draw: st.DrawFn, max_classes: int = 12) -> tuple[int, ...]:
    """(C,), (N, C) or (N, C, d1, ...): one class, one sample, many classes, K-dim inputs."""
    classes = draw(st.one_of(st.integers(1, max_classes), st.sampled_from([1, 2, 64])))
    kind = draw(st.sampled_from(["batch", "batch", "unbatched", "spatial"]))
    if kind == "unbatched":
        return (classes,)
    batch = draw(st.integers(1, 5))
    if kind == "batch":
        return (batch, classes)
    extra = draw(st.lists(st.integers(1, 3), min_size=1, max_size=2))
    return (batch, classes, *extra)


def class_axis(shape: tuple[int, ...]) -> int:
    return 0 if len(shape) == 1 else 1


def without_class_axis(shape: tuple[int, ...]) -> tuple[int, ...]:
    axis = class_axis(shape)
    return shape[:axis] + shape[axis + 1 :]


@st.composite
def class_indices(
    draw: st.DrawFn, shape: tuple[int, ...], num_classes: int, ignore_index: int | None
) -> np.ndarray:
    """Integer targets in [0, C); with an ignore_index, some (possibly all) are ignored."""
    labels = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, num_classes - 1)))
    if ignore_index is not None:
        ignored = draw(hnp.arrays(np.bool_, shape, elements=st.booleans()))
        labels = np.where(ignored, ignore_index, labels)
    return labels


@st.composite
def class_probabilities(draw: st.DrawFn, shape: tuple[int, ...]) -> np.ndarray:
    """Probability vectors along the class axis: one-hot rows, and rows with exact zeros."""
    raw = draw(array(shape, st.one_of(st.just(0.0), st.floats(0.0, 1.0))))
    axis = class_axis(shape)
    total = raw.sum(axis=axis, keepdims=True)
    uniform = np.full(shape, 1.0 / shape[axis])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, raw / total, uniform)
