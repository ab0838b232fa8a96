"""Named input domains: Hypothesis strategies that reach the regimes where losses break.

Element laws (conformance.elements) mix ordinary values with log-spaced magnitudes (as scipy's
mpmath checks do) so that both everyday inputs and extremes (|logit| = 1e4, p = 1e-30,
p = 1 - 1e-7) are drawn, and shrinking still moves toward small, simple values. Arrays are drawn
whole, one Hypothesis choice each.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conformance.elements import Integers, Law, Mapped, Power10, Uniform, Values, arrays, mixture

MAX_LOGIT = 1e4


def _halves(v: np.ndarray) -> np.ndarray:
    return np.round(2.0 * v) / 2.0


def _one_minus(v: np.ndarray) -> np.ndarray:
    return 1.0 - v


def ordinary(lo: float, hi: float) -> Law:
    """Everyday values in [lo, hi]: uniform, and on the half-integer grid (exact ties, kinks hit
    exactly, values every dtype stores exactly)."""
    return Uniform(lo, hi) | Mapped(Uniform(lo, hi), _halves)


def logits(max_magnitude: float = MAX_LOGIT) -> Law:
    """Real-valued scores: ordinary, tiny (1e-3) and huge (up to 1e4), and the float32 cliffs."""
    cliffs = [0.0, 1.0, -1.0, 17.0, -17.0, 88.5, -88.5, 104.0, -104.0, 1e4, -1e4]
    return mixture(
        ordinary(-8.0, 8.0),
        Power10(-3.0, float(np.log10(max_magnitude)), signed=True),
        Values(tuple(c for c in cliffs if abs(c) <= max_magnitude)),
    )


def probabilities() -> Law:
    """Values in [0, 1]: exact 0 and 1, and values within 1e-30 / 1e-7 of either end."""
    return mixture(
        Uniform(0.0, 1.0),
        Values((0.0, 1.0, 0.5)),
        Power10(-30.0, -1.0),
        Mapped(Power10(-7.0, -1.0), _one_minus),
    )


def binary_targets() -> Law:
    return Values((0.0, 1.0))


def soft_targets() -> Law:
    return Values((0.0, 1.0)) | Uniform(0.0, 1.0)


def positive_weights() -> Law:
    """Weights from 1e-3 to 1e3 (extreme class weights are a classic place for bugs)."""
    return Values((1.0,)) | Power10(-3.0, 3.0)


def booleans() -> Law:
    return Values((0.0, 1.0))


def array(shape: tuple[int, ...], law: Law, dtype: type = np.float64) -> st.SearchStrategy:
    """Arrays of `shape` whose elements follow `law` (conformance.elements), drawn in bulk."""
    return arrays(law, tuple(shape), dtype)


# Shape strategies are built once (cached): see conformance.specs.common on why.


@cache
def elementwise_shape(min_dims: int = 0, max_dims: int = 3) -> st.SearchStrategy[tuple[int, ...]]:
    """Shapes of elementwise losses: scalars, one sample, and small batches."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=5)


@cache
def class_layout(max_classes: int = 12) -> st.SearchStrategy[tuple[int, ...]]:
    """(C,), (N, C) or (N, C, d1, ...): one class, one sample, many classes, K-dim inputs."""
    return _class_layout(st.one_of(st.integers(1, max_classes), st.sampled_from([1, 2, 64])))


_LAYOUT_KINDS = st.sampled_from(["batch", "batch", "unbatched", "spatial"])


@st.composite
def _class_layout(draw: st.DrawFn, class_counts: st.SearchStrategy[int]) -> tuple[int, ...]:
    classes = draw(class_counts)
    kind = draw(_LAYOUT_KINDS)
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
    labels = draw(array(shape, Integers(0, num_classes - 1), np.int64))
    if ignore_index is not None:
        ignored = draw(array(shape, booleans(), np.bool_))
        labels = np.where(ignored, ignore_index, labels)
    return labels


@st.composite
def class_probabilities(draw: st.DrawFn, shape: tuple[int, ...]) -> np.ndarray:
    """Probability vectors along the class axis: one-hot rows, and rows with exact zeros."""
    raw = draw(array(shape, Values((0.0,)) | Uniform(0.0, 1.0)))
    axis = class_axis(shape)
    total = raw.sum(axis=axis, keepdims=True)
    uniform = np.full(shape, 1.0 / shape[axis])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, raw / total, uniform)
