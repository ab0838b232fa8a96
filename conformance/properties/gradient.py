"""Gradients: the target's autograd against derivatives of the float64 reference.

The reference has no autograd: its derivatives are central differences with Richardson
extrapolation, at a step that shrinks until two estimates agree (step control with an error
estimate). Where they never agree but each one-sided derivative is stable on its own, the point
is a kink (a hinge, a tie in a sort, a touching box edge). There the spec's subgradient
convention applies (`LossSpec.subgradient`): by default any value between the one-sided
derivatives (a Clarke subgradient along that coordinate), or exactly their midpoint. A NaN or
infinite gradient where the value is finite is always a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from conformance.case import Case
from conformance.guard import PropertyFailure, gradient, to_numpy
from conformance.properties.base import Context, Property

MAX_COORDINATES = 12  # finite differences on a deterministic sample of coordinates per input
STEPS = (1e-3, 1e-4, 1e-5, 1e-6)  # relative to max(1, |x|)


def cotangent(shape: tuple[int, ...]) -> np.ndarray:
    """A fixed, non-uniform weighting of the output's elements: errors cannot cancel in it."""
    n = int(np.prod(shape, dtype=int))
    return (1.0 + 0.5 * np.sin(np.arange(n) * 1.7 + 0.3)).reshape(shape)


def _coordinates(size: int) -> np.ndarray:
    if size <= MAX_COORDINATES:
        return np.arange(size)
    return np.unique(np.linspace(0, size - 1, MAX_COORDINATES).round().astype(int))


@dataclass
class Derivative:
    value: float  # the smooth part's derivative (the whole derivative where nothing kinks)
    low: float  # with every kinked output element at its lower one-sided derivative
    high: float  # ... and at its upper one
    error: float  # the estimate's own error
    kink: bool


def _evaluable(f: Callable[[float], np.ndarray]) -> Callable[[float], np.ndarray]:
    """f, with a point outside the reference's domain (p < 0, say) mapped to NaN."""

    def safe(x: float) -> np.ndarray:
        try:
            return np.asarray(f(x), dtype=np.float64)
        except (ValueError, ZeroDivisionError, FloatingPointError):
            return np.array(np.nan)

    return safe


def derivative(f: Callable[[float], np.ndarray], x: float,
               noise: np.ndarray | float = 0.0) -> Derivative | None:
    """d sum(f) / d x at x, for f returning the weighted elements of an output.

    Each output element is classified on its own: smooth (one-sided derivatives agree and two
    steps agree) or kinked (one-sided derivatives stable but different). A kink in a sum of
    elements is the sum of the elements' intervals, so torch's tie-breaking in one element and
    a kink of the opposite convexity in another are both within bounds. None where f cannot be
    evaluated around x (a domain boundary).

    `noise`: the elementwise scale of f's own rounding error, where it exceeds |f| (a value
    that is a small difference of larger terms, like KL's t log t - t x near its minimum): the
    float64 reference is no more precise than eps times that scale, and its differences no
    more than that over h."""
    f = _evaluable(f)
    f0 = f(x)
    if not np.all(np.isfinite(f0)):
        return None
    smooth_value = np.zeros(np.shape(f0))
    settled = np.zeros(np.shape(f0), dtype=bool)
    low = high = error = np.zeros(np.shape(f0))
    eps = np.finfo(np.float64).eps
    for relative in STEPS:
        h = relative * max(1.0, abs(x))
        fp, fm, fp2, fm2 = f(x + h), f(x - h), f(x + h / 2), f(x - h / 2)
        if not all(np.all(np.isfinite(v)) for v in (fp, fm, fp2, fm2)):
            return None
        d1, d2 = (fp - fm) / (2 * h), (fp2 - fm2) / h
        central = (4 * d2 - d1) / 3
        # Truncation (the two estimates' difference) plus the rounding of f, amplified by 1/h.
        roundoff = 8 * eps * np.maximum(np.abs(f0), np.maximum(np.abs(fp), np.abs(fm))) / h
        # The reference's own rounding at this step: part of the estimate's error (what the
        # allowed error must cover), not of the smooth-or-kink decision.
        resolution = 8 * eps * np.broadcast_to(noise, np.shape(f0)) / h
        err = np.abs(d2 - d1) + roundoff
        right = 2 * (fp2 - f0) / (h / 2) - (fp - f0) / h
        left = 2 * (f0 - fm2) / (h / 2) - (f0 - fm) / h
        scale = np.abs(central) + np.abs(f0) * 1e-3 + 1e-12
        # A kink shows in the one-sided derivatives, not in central differences: those see the
        # average of the two sides and agree with themselves at every step (|x| at 0).
        agree = np.abs(right - left) <= 1e-6 * (np.abs(right) + np.abs(left) + scale) + (
            8 * roundoff)
        smooth = agree & (err <= 1e-6 * scale) & ~settled
        smooth_value = np.where(smooth, central, smooth_value)
        error = np.where(smooth, err + resolution, error)
        settled |= smooth
        low = np.where(settled, low, np.minimum(left, right))
        high = np.where(settled, high, np.maximum(left, right))
        if settled.all():
            break
    kinked = ~settled
    total_smooth = float(np.sum(smooth_value[settled]))
    total_error = float(np.sum(error[settled]) + 1e-6 * np.sum(
        (np.abs(low) + np.abs(high))[kinked]))
    return Derivative(
        value=total_smooth,
        low=total_smooth + float(np.sum(low[kinked])),
        high=total_smooth + float(np.sum(high[kinked])),
        error=total_error,
        kink=bool(kinked.any()),
    )


def _reduction_weights(spec, case: Case, reduction: str | None, cotangent_: np.ndarray,
                       elementwise_shape: tuple[int, ...]) -> np.ndarray:
    """The weights that turn the elementwise output into the target's weighted output."""
    if reduction in ("none", None):
        return cotangent_
    factor = 1.0 if reduction == "sum" else 1.0 / spec.denominator(case, reduction)
    return float(cotangent_) * factor * np.ones(elementwise_shape)


class GradientMatchesReference(Property):
    name = "gradient_matches_reference"
    narrow_dtypes = True
    description = (
        "the autograd gradient of every differentiable input, under every reduction, equals"
        " the derivative of the float64 reference (Richardson central differences with step"
        " control); at a kink it follows the spec's subgradient convention; never NaN or inf"
    )

    def prepare(self, spec, case: Case) -> Case | None:
        return spec.gradient_domain(case) if spec.gradient_domain else case

    def keeps(self, spec, rounded: Case) -> bool:
        if spec.gradient_domain is None:
            return True
        again = spec.gradient_domain(rounded)
        return all(np.array_equal(again.inputs[k], v) for k, v in rounded.inputs.items())

    def check(self, ctx: Context, case: Case) -> float:
        spec = ctx.spec
        usage = 0.0
        declared = spec.differentiable or (next(iter(case.inputs)),)
        missing = [n for n in declared if n not in case.inputs]
        if missing:  # a spec error: a gradient check of nothing would pass vacuously
            raise ValueError(f"spec {spec.name!r} declares differentiable inputs {missing}"
                             f" that its cases do not have ({list(case.inputs)})")
        names = [n for n in declared if np.issubdtype(case.inputs[n].dtype, np.floating)]
        for name in names:
            position = list(case.inputs).index(name)
            # The reference's elementwise values at perturbed points, shared by the reductions:
            # each one only weights them differently.
            perturbed: dict[tuple[int, float], np.ndarray] = {}
            for reduction in ctx.calls:
                if np.any(spec.expects_nan(case, reduction)):
                    continue
                kwargs = {} if reduction is None else {"reduction": reduction}
                out, args, _ = ctx.target(case, ctx.dtype, ctx.device, grad_inputs=(name,),
                                          **kwargs)
                weights = cotangent(tuple(out.shape))
                weighted = out * torch.as_tensor(weights, dtype=out.dtype, device=out.device)
                grad = to_numpy(gradient(weighted, args[position], ctx.target.timeout))
                usage = max(usage, self._compare(ctx, case, name, reduction, weights, grad,
                                                 perturbed))
        return usage

    def _compare(self, ctx: Context, case: Case, name: str, reduction: str | None,
                 weights: np.ndarray, grad: np.ndarray,
                 perturbed: dict[tuple[int, float], np.ndarray]) -> float:
        spec = ctx.spec
        base = case.inputs[name]
        frozen = spec.gradient_reference(case) if spec.gradient_reference else None
        if grad.shape != base.shape:
            raise PropertyFailure(
                f"the gradient of {name!r} has shape {grad.shape}, the input {base.shape}",
                reduction=reduction)
        if not np.all(np.isfinite(spec.call_reference(case, reduction))):
            return 0.0  # no gradient is owed where the value itself is not finite
        bad = ~np.isfinite(grad)
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            raise PropertyFailure(
                f"the gradient of {name!r} is {grad[index]!r} at {index} where the loss is"
                f" finite (reduction={reduction!r})", reduction=reduction)

        elementwise = spec.elementwise_reduction
        shape = np.shape(frozen(case, elementwise) if frozen
                         else spec.call_reference(case, elementwise))
        linear = _reduction_weights(spec, case, reduction, weights, shape)

        def loss_at(flat_index: int) -> Callable[[float], np.ndarray]:
            def f(value: float) -> np.ndarray:
                values = perturbed.get((flat_index, value))
                if values is None:
                    moved = base.copy().reshape(-1)
                    moved[flat_index] = value
                    at = case.with_inputs(**{name: moved.reshape(base.shape)})
                    values = frozen(at, elementwise) if frozen else spec.call_reference(
                        at, elementwise)
                    perturbed[(flat_index, value)] = values
                return linear * values

            return f

        # The gradient's error scale: its own size, and the cotangent's (a derivative of O(1)
        # probabilities computed in this dtype is good to eps in absolute terms, however small).
        magnitude = (np.max(np.abs(grad)) if grad.size else 0.0) + float(np.max(np.abs(
            weights), initial=0.0))
        # The spec's value error scale over the value: how ill-conditioned this case is (box
        # coordinates far larger than a side, logits far larger than the loss). Gradients
        # computed in the dtype inherit that conditioning.
        reference_value = np.abs(spec.call_reference(case, elementwise))
        condition = max(1.0, float(np.max(spec.scale(case, elementwise), initial=0.0)) / (
            float(np.max(reference_value, initial=0.0)) + 1.0))
        magnitude *= condition
        eps = torch.finfo(ctx.dtype).eps * spec.tolerance.k[ctx.dtype_name]
        usage = 0.0
        # The reference's own rounding, elementwise: eps(float64) times the spec's error scale.
        noise = np.abs(linear) * spec.magnitude(case, spec.call_reference(case, elementwise))
        for flat in _coordinates(base.size):
            found = derivative(loss_at(int(flat)), float(base.reshape(-1)[flat]), noise)
            if found is None:
                continue
            got = float(grad.reshape(-1)[flat])
            index = tuple(int(i) for i in np.unravel_index(flat, base.shape))
            scale = abs(found.high) + abs(found.low) + magnitude
            allowed = eps * (1 + np.log2(max(base.size, 1))) * scale + 10 * found.error + 1e-300
            if found.kink and spec.subgradient == "midpoint":
                middle = 0.5 * (found.low + found.high)
                excess = abs(got - middle)
                expected = (f"{middle!r}, the midpoint of the one-sided derivatives"
                            f" {found.low!r} and {found.high!r} (a kink; the spec's convention)")
            elif found.kink:
                excess = max(found.low - got, got - found.high, 0.0)
                expected = f"between {found.low!r} and {found.high!r} (a kink)"
            else:
                excess = abs(got - found.value)
                expected = repr(found.value)
            ratio = excess / allowed
            if ratio > 1:
                raise PropertyFailure(
                    f"d loss / d {name}{list(index)} is {got!r}, the reference's derivative is"
                    f" {expected} (reduction={reduction!r}; allowed error {allowed:.3g})",
                    reduction=reduction)
            usage = max(usage, ratio)
        return usage


GRADIENT = GradientMatchesReference()
