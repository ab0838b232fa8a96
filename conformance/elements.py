"""Element laws: how the elements of a drawn array are distributed, decoded for a whole array at
once from one Hypothesis choice.

Drawing every element through its own Hypothesis strategy costs tens of microseconds per element
(a 125-element array of logits took 20 to 40 ms, more than checking it); one byte string per
array is one choice however long it is. Each element takes WIDTH bytes: the first picks one
regime of the law (a mixture's parts, by weight), the next three a position u in [0, 1) within
that regime. All-zero bytes decode to the first regime's simplest value, so Hypothesis, which
shrinks byte strings toward zeros, still shrinks toward simple inputs (an ordinary regime
first, values near 0, integer 0, False).

A law is a small immutable value: `Uniform(-8, 8) | Power10(-3, 4, signed=True) | Values(...)`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
from hypothesis import strategies as st

WIDTH = 4
_POSITION_BITS = 24  # three position bytes, big-endian: earlier bytes weigh more
_SHIFTS = np.array([16, 8, 0], dtype=np.uint32)
_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


class Law:
    """Maps positions u in [0, 1) to element values; `a | b` mixes two laws half and half."""

    def at(self, u: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def regimes(self) -> tuple[tuple[float, Law], ...]:
        return ((1.0, self),)

    def __or__(self, other: Law) -> Law:
        return mixture(self, other)


@dataclass(frozen=True)
class Uniform(Law):
    """Uniform on [lo, hi]; u = 0 is the value nearest 0, and u grows away from it."""

    lo: float
    hi: float

    def at(self, u: np.ndarray) -> np.ndarray:
        anchor = min(max(0.0, self.lo), self.hi)
        up = self.hi - anchor
        t = u * (self.hi - self.lo)
        return np.clip(np.where(t <= up, anchor + t, anchor - (t - up)), self.lo, self.hi)


@dataclass(frozen=True)
class Power10(Law):
    """10**e with e uniform in [lo_exp, hi_exp] (log-spaced magnitudes); both signs if signed."""

    lo_exp: float
    hi_exp: float
    signed: bool = False

    def at(self, u: np.ndarray) -> np.ndarray:
        sign = np.ones_like(u)
        if self.signed:
            sign = np.where(u < 0.5, 1.0, -1.0)
            u = np.where(u < 0.5, 2.0 * u, 2.0 * u - 1.0)
        return sign * 10.0 ** (self.lo_exp + (self.hi_exp - self.lo_exp) * u)


@dataclass(frozen=True)
class Values(Law):
    """One of a few exact values, equally likely; u = 0 is the first."""

    values: tuple[float, ...]

    def at(self, u: np.ndarray) -> np.ndarray:
        n = len(self.values)
        index = np.minimum((u * n).astype(np.int64), n - 1)
        return np.asarray(self.values, dtype=np.float64)[index]


@dataclass(frozen=True)
class Integers(Law):
    """An integer in [lo, hi], equally likely; u = 0 is lo."""

    lo: int
    hi: int

    def at(self, u: np.ndarray) -> np.ndarray:
        count = self.hi - self.lo + 1
        return self.lo + np.minimum(np.floor(u * count), count - 1)


@dataclass(frozen=True)
class Mapped(Law):
    """A single regime's values through a vectorized function (a module-level one: laws compare
    equal by their parts, and equal laws share one cached strategy)."""

    law: Law
    fn: Callable[[np.ndarray], np.ndarray]

    def at(self, u: np.ndarray) -> np.ndarray:
        return self.fn(self.law.at(u))


@dataclass(frozen=True)
class Mixture(Law):
    """Regimes with weights summing to 1; nested mixtures are flattened by `mixture`."""

    parts: tuple[tuple[float, Law], ...]

    def regimes(self) -> tuple[tuple[float, Law], ...]:
        return self.parts


def mixture(*laws: Law, weights: tuple[float, ...] | None = None) -> Mixture:
    """Each law with its weight (default: equal, as st.one_of); a mixture's own regimes keep
    their shares within it."""
    weights = weights or (1.0,) * len(laws)
    total = sum(weights)
    parts = tuple((w / total * inner, regime) for w, law in zip(weights, laws, strict=True)
                  for inner, regime in law.regimes())
    return Mixture(parts)


def _positions(raw: np.ndarray) -> np.ndarray:
    """u in [0, 1) from each row's three position bytes p: (p + frac(p * golden)) / 2**24.

    Hypothesis makes bytes one at a time (about a microsecond each), so an element carries
    three position bytes, not seven; the Weyl sequence frac(p * golden) fills the bits below
    them, so values still use the whole float64 mantissa (a target that rounds its inputs to
    float32 must not get inputs float32 holds exactly), while p = 0 stays exactly u = 0."""
    p = (raw.astype(np.uint32) << _SHIFTS).sum(axis=1, dtype=np.uint32).astype(np.float64)
    return (p + np.modf(p * _GOLDEN)[0]) / 2.0**_POSITION_BITS


def _choose(law: Law, selector: np.ndarray, u: np.ndarray) -> np.ndarray:
    regimes = law.regimes()
    if len(regimes) == 1:
        return np.asarray(regimes[0][1].at(u), dtype=np.float64)
    bounds = np.cumsum([w for w, _ in regimes])[:-1]
    which = np.searchsorted(bounds, selector, side="right")
    out = np.empty(u.shape, dtype=np.float64)
    for i, (_, regime) in enumerate(regimes):
        chosen = which == i
        if chosen.any():
            out[chosen] = regime.at(u[chosen])
    return out


def decode(law: Law, shape: tuple[int, ...], raw: bytes) -> np.ndarray:
    """The array of `shape` that `raw` (WIDTH bytes per element) stands for under `law`."""
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(-1, WIDTH)
    selector = (rows[:, 0].astype(np.float64) + 0.5) / 256.0
    return _choose(law, selector, _positions(rows[:, 1:])).reshape(shape)


@cache
def _byte_strings(size: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=size, max_size=size)


@lru_cache(maxsize=4096)
def arrays(law: Law, shape: tuple[int, ...], dtype: type = np.float64) -> st.SearchStrategy:
    """Arrays of `shape` whose elements follow `law`, as `dtype` (float64, int64 or bool).

    Cached: Hypothesis validates every new strategy object on its first draw, which cost more
    than the draw itself when each case built its own."""
    size = math.prod(shape)

    def build(raw: bytes) -> np.ndarray:
        return decode(law, shape, raw).astype(dtype)

    return _byte_strings(size * WIDTH).map(build)
