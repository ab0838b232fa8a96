"""Pieces every family's declarations use."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from hypothesis import strategies as st

from conformance.empty import no_pixels, no_samples

# Generic properties most losses declare (matches_reference is always included).
GENERIC = ("reduction_consistency", "output_dtype", "no_input_mutation", "nonnegative",
           "gradient_matches_reference")

# Empty forms (conformance.empty): elementwise inputs lose their batch; class-scored inputs
# (N, C, *spatial) their batch or their last spatial axis.
EMPTY_ELEMENTS = (no_samples(),)
EMPTY_SCORES = (no_samples(min_ndim=2), no_pixels(min_ndim=3))

OMIT = object()  # a drawn parameter left out of the call, so the target's default is exercised


def params(**drawn: object) -> dict[str, object]:
    """Keyword parameters of a case, without those drawn as OMIT."""
    return {k: v for k, v in drawn.items() if v is not OMIT}


# The strategy builders below are cached: Hypothesis validates every new strategy object on its
# first draw, and a case that built its parameter strategies afresh paid for that on every draw
# (more than the draw itself). st.floats, st.integers, st.booleans and st.lists cache themselves.


@lru_cache(maxsize=1024)
def maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    """The parameter, or OMIT (the target's own default)."""
    return st.one_of(st.just(OMIT), strategy)


@lru_cache(maxsize=1024)
def choice(*values: object) -> st.SearchStrategy:
    """One of these exact values (the first is the simplest)."""
    return st.sampled_from(values)


@lru_cache(maxsize=1024)
def number(values: tuple[float, ...], lo: float, hi: float) -> st.SearchStrategy[float]:
    """A named value (a convention's special point) or any float in [lo, hi]."""
    return st.one_of(st.sampled_from(values), st.floats(lo, hi))


def zero_loss(input: np.ndarray, *_: object, reduction: str | None = None,
              **__: object) -> np.ndarray:
    """The reference of a loss that is 0: elementwise zeros, or a 0-d zero once reduced."""
    return np.zeros(np.shape(input)) if reduction in ("none", None) else np.zeros(())


def near_a_kink(z: np.ndarray, *scales: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Where a hinge's argument z, a sum of these terms, is nonzero but closer to 0 than a
    low-precision dtype resolves, and the band's half-width. 1 - 1.000000823 is -8e-7 in
    float64 and 0 in bfloat16: the target lands on the kink the reference is 8e-7 away from,
    out of the finite differences' reach. The band is 1e-2 of the terms' size, above
    bfloat16's eps (2^-8) and the differences' first step (1e-3)."""
    size = np.maximum.reduce([np.ones_like(z), *(np.abs(s) * np.ones_like(z) for s in scales)])
    return (z != 0) & (np.abs(z) < 1e-2 * size), 1e-2 * size


def overflow_only(terms: np.ndarray) -> np.ndarray:
    """Twice each term (autograd multiplies it by the output's cotangent, up to 2), where that
    is at least 1: below, only a term's overflow matters, never its underflow."""
    doubled = 2.0 * np.abs(terms)
    return np.where(doubled >= 1.0, doubled, 0.0)
