"""The tolerance model: one declared rule per dtype, applied to an error scale the spec derives.

For every compared element the allowed error is

    allowed = eps(dtype) * k[dtype] * (1 + log2(n)) * scale + floor[dtype]

where `scale` is the magnitude of the quantities that were rounded on the way to that element
(the spec declares it: for a logits loss, |loss| plus |logit|, since cancellation between terms of
that size is what a correct float computation loses), reduced exactly like the loss itself, and
`n` is the number of terms accumulated.  The reference is computed in float64 from the inputs
already rounded to the tested dtype, so input rounding is never part of the error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from conformance.case import DTYPES, dtype_name


@dataclass(frozen=True)
class ToleranceRule:
    k: Mapping[str, float]
    floor: Mapping[str, float]
    reason: str = "default rule"

    def allowed(self, scale: np.ndarray, dtype: torch.dtype, n_terms: int) -> np.ndarray:
        name = dtype_name(dtype)
        eps = torch.finfo(dtype).eps
        growth = 1.0 + math.log2(max(n_terms, 1))
        return eps * self.k[name] * growth * np.abs(scale) + self.floor[name]

    def describe(self, dtype: torch.dtype) -> str:
        name = dtype_name(dtype)
        return (
            f"{self.k[name]:g} * eps({name}) * (1 + log2 n) * scale + {self.floor[name]:.1e}"
            f" [{self.reason}]"
        )


def _floors() -> dict[str, float]:
    # A few smallest normals: results that underflow to zero (or to a subnormal) are correct.
    return {name: 4 * torch.finfo(dt).tiny for name, dt in DTYPES.items()}

DEFAULT_RULE = ToleranceRule(
    k={"float64": 8.0, "float32": 8.0, "float16": 4.0, "bfloat16": 4.0},
    floor=_floors(),
)


_HUGE = float(np.finfo(np.float64).max)


@dataclass(frozen=True)
class Comparison:
    """Outcome of comparing one output with its expectation, elementwise."""

    ok: bool
    worst_abs: float
    worst_rel: float
    usage: float  # max of error / allowed: below 1 passes, its inverse is the headroom
    index: tuple[int, ...]
    actual: float
    expected: float
    allowed: float
    problem: str | None = None

    def summary(self) -> str:
        where = f" at index {self.index}" if self.index else ""
        head = f"{self.problem}: " if self.problem else ""
        return (
            f"{head}got {self.actual!r}, expected {self.expected!r}{where}; "
            f"abs err {self.worst_abs:.3g}, rel err {self.worst_rel:.3g},"
            f" allowed {self.allowed:.3g}"
        )


def compare(
    actual: np.ndarray,
    expected: np.ndarray,
    allowed: np.ndarray,
    nan_expected: bool | np.ndarray = False,
    op: str = "eq",
) -> Comparison:
    """Elementwise check of `actual` against `expected` (op 'eq') or as an upper bound ('le').

    NaN never passes unless `nan_expected` says so for that element; infinities must match exactly.
    """
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        raise ValueError(f"shape {actual.shape} vs {expected.shape}")
    allowed = np.broadcast_to(np.asarray(allowed, dtype=np.float64), expected.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = actual - expected
        err = np.abs(diff) if op == "eq" else np.maximum(diff, 0.0)
    if not np.any(nan_expected) and np.isfinite(diff).all():
        # The common case, both sides finite everywhere (inf - x is never finite): nothing to
        # classify, every element is judged by its ratio alone.
        problems = None
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            ratio = np.where(err == 0, 0.0, err / allowed)
        # As nan_to_num(ratio, nan=inf) has it, for less: an error over 0 allowed is huge.
        ratio = np.where(np.isnan(ratio), np.inf, np.minimum(ratio, _HUGE))
    else:
        nan_ok = np.broadcast_to(np.asarray(nan_expected, dtype=bool), expected.shape)
        ratio, err, problems = _classified(actual, expected, err, allowed, nan_ok, op)
    if ratio.size == 0:
        return Comparison(True, 0.0, 0.0, 0.0, (), math.nan, math.nan, math.nan)
    flat = int(np.argmax(ratio))
    idx = tuple(int(i) for i in np.unravel_index(flat, ratio.shape)) if ratio.ndim else ()
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(np.isfinite(err) & (expected != 0), err / np.abs(expected), 0.0)
    finite_err = np.where(np.isfinite(err), err, 0.0)
    usage = float(ratio.flat[flat])
    bad = problems is not None and bool((problems != "").any())
    return Comparison(
        ok=usage <= 1.0,
        worst_abs=float(np.max(finite_err)) if not bad else float(err.flat[flat]),
        worst_rel=float(np.max(rel)),
        usage=usage,
        index=idx,
        actual=float(actual.flat[flat]),
        expected=float(expected.flat[flat]),
        allowed=float(allowed.flat[flat]),
        problem=(str(problems.flat[flat]) or None) if problems is not None else None,
    )


def _classified(actual: np.ndarray, expected: np.ndarray, err: np.ndarray,
                allowed: np.ndarray, nan_ok: np.ndarray, op: str,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ratios, errors and the problem of each element where a NaN or an infinity is involved:
    a NaN passes only where declared, an infinity only where the expectation is that one."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        same_inf = np.isinf(actual) & (actual == expected)
        err = np.where(same_inf, 0.0, err)
        if op == "le":
            err = np.where(np.isneginf(actual) | np.isposinf(expected), 0.0, err)
        ratio = np.where(err == 0, 0.0, err / allowed)
    a_nan, e_nan = np.isnan(actual), np.isnan(expected)
    problems = np.full(expected.shape, "", dtype=object)
    problems[e_nan & ~nan_ok] = "the reference is NaN where the spec expects a value"
    problems[nan_ok & ~a_nan] = "the spec expects NaN here"
    problems[a_nan & ~e_nan] = "NaN where a finite value is expected"
    overflow = np.isinf(actual) & ~np.isinf(expected) & ~a_nan & ~e_nan
    if op == "le":  # -inf is below any bound
        overflow &= ~np.isneginf(actual)
    problems[overflow] = "inf where the value is finite"
    bad = problems != ""
    ratio = np.where(nan_ok & a_nan & e_nan, 0.0, ratio)
    ratio = np.where(bad, np.inf, np.nan_to_num(ratio, nan=np.inf))
    return ratio, err, problems
