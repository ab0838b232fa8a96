"""Gradients against the target's own values: a backward that does not match its forward.

gradient_matches_reference holds a target to the spec's derivative, conventions included. This
property needs no reference value at all: in float64 it compares the target's autograd gradient,
projected on a fixed direction v, with central differences of the target's own float64 values
along v. A factor computed under no_grad, a detached term or a hand-written backward with a
slip fails here even where the target's value follows another convention than the spec's (a
different eps, a different smoothing), which would otherwise only show as a value failure.

One direction per input keeps the cost to one set of finite differences per call (the
unreduced one, and one reduction). Moving every coordinate at once crosses every kink on the
way, and kinks of opposite convexity in one element (an intersection's min beside an enclosing
box's max) leave the one-sided derivatives no bound on a subgradient. So an output element is
judged only where every step agrees on one derivative (no kink or thin feature within the
longest step); the others get weight 0 in the backward, and a case with none left is counted
apart, like a case outside the domain. gradient_matches_reference checks kinks coordinate by
coordinate.

Where the spec owes a gradient that is not its value's derivative (CIoU's alpha is frozen in
the gradient, `LossSpec.gradient_reference`), the difference between the two is the spec's,
known from the reference: the target's gradient must differ from its own values' derivative
by exactly that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from conformance.case import Case
from conformance.guard import OutsideDomain, PropertyFailure, TargetError, gradient, to_numpy
from conformance.properties.base import Context, Property
from conformance.properties.gradient import cotangent, reduction_weights

FLOAT64 = torch.float64
NOTHING_TO_JUDGE = "no value or gradient to judge (the other properties report why)"


# Steps along the direction (of unit size per coordinate). Every step is read: an element is
# smooth only where all of them agree, so no feature of the loss lies within the longest step
# (a thin box crossed by the long steps reads flat there and moves at the short ones).
STEPS = (1e-3, 1e-4, 1e-5, 1e-6)


def direction(x: np.ndarray) -> np.ndarray:
    """A fixed direction with no zero and no symmetry that a detached term could hide in."""
    n = x.size
    i = np.arange(n)
    return (np.cos(i * 2.3 + 0.4) + 0.3 * np.sign(np.sin(i * 1.1 + 1.0))).reshape(x.shape)


@dataclass
class Along:
    """Each output element's derivative along t of f(x + t v) at 0, where it is smooth."""

    smooth: np.ndarray  # elements whose every step agrees
    value: np.ndarray
    error: np.ndarray
    defined: bool  # f could be evaluated at every point

    def total(self, weights: np.ndarray) -> tuple[float, float]:
        """d sum(weights * f) / dt over the smooth elements, and its error."""
        used = np.where(self.smooth, weights, 0.0)
        return float(np.sum(used * self.value)), float(np.sum(np.abs(used) * self.error))


def along(values: Callable[[Case], np.ndarray], case: Case, name: str, v: np.ndarray,
          shape: tuple[int, ...], rounding: np.ndarray | float = 0.0,
          eps: float = float(np.finfo(np.float64).eps)) -> Along:
    """Richardson central differences of values(case with name = x + t v) at every step.

    `rounding`: the scale of the values' rounding error beyond their size (their error scale,
    and what moving the input rounds: eps |x| per coordinate, through the gradient): the
    estimate is no better than eps times it over h. `eps`: that of
    the dtype the values come in (a target may compute and return float32 for float64)."""
    x = case.inputs[name]

    def at(t: float) -> np.ndarray:
        try:
            return np.broadcast_to(values(case.with_inputs(**{name: x + t * v})), shape)
        except (ValueError, ZeroDivisionError, FloatingPointError):  # outside the reference's
            return np.full(shape, np.nan)                             # domain (an inverted box)

    ts = [0.0] + [t for h in STEPS for t in (h, -h, h / 2, -h / 2)]
    f = np.stack([at(t) for t in ts]).astype(np.float64)
    if not np.all(np.isfinite(f)):
        return Along(np.zeros(shape, bool), np.zeros(shape), np.zeros(shape), defined=False)
    f0 = f[0]
    centrals, errors, smooth = [], [], np.ones(shape, dtype=bool)
    resolved = np.zeros((len(STEPS), *shape), dtype=bool)
    for k, h in enumerate(STEPS):
        fp, fm, fp2, fm2 = f[1 + 4 * k:5 + 4 * k]
        d1, d2 = (fp - fm) / (2 * h), (fp2 - fm2) / h
        central = (4 * d2 - d1) / 3
        roundoff = 8 * eps * (np.maximum(np.abs(f0), np.maximum(np.abs(fp), np.abs(fm)))
                              + rounding) / h
        right = 2 * (fp2 - f0) / (h / 2) - (fp - f0) / h
        left = 2 * (f0 - fm2) / (h / 2) - (f0 - fm) / h
        scale = np.abs(central) + np.abs(f0) * 1e-3 + 1e-12
        err = np.abs(d2 - d1) + roundoff
        # A step whose rounding alone is past the smooth test's tolerance (large values at
        # the shortest steps) says nothing either way.
        resolved[k] = roundoff <= 1e-7 * scale
        smooth &= ~resolved[k] | (
            (np.abs(right - left) <= 1e-6 * (np.abs(right) + np.abs(left) + scale)
             + 8 * roundoff) & (err <= 1e-6 * scale))
        centrals.append(central)
        errors.append(err)
    centrals_, errors_ = np.stack(centrals), np.stack(errors)
    best = np.argmin(np.where(resolved, errors_, np.inf), axis=0)
    value = np.take_along_axis(centrals_, best[None], 0)[0]
    error = np.take_along_axis(errors_, best[None], 0)[0]
    # Every resolved step's estimate is the same derivative, within the estimates' errors,
    # and at least two steps are resolved.
    smooth &= (resolved.sum(axis=0) >= 2) & np.all(~resolved | (
        np.abs(centrals_ - value) <= errors_ + error + 1e-6 * (
            np.abs(value) + np.abs(f0) * 1e-3 + 1e-12)), axis=0)
    return Along(smooth, value, error, defined=True)


class GradientMatchesOwnValues(Property):
    name = "gradient_matches_own_values"
    description = (
        "in float64, the autograd gradient along a fixed direction equals central differences"
        " of the target's own values along it, under every reduction (away from kinks): a"
        " backward that does not match the forward fails whatever convention the value follows"
    )

    only_in = FLOAT64
    only_in_because = "finite differences of the target's own values resolve its derivative there"

    def prepare(self, spec, case: Case) -> Case | None:
        return spec.gradient_domain(case) if spec.gradient_domain else case

    def check(self, ctx: Context, case: Case) -> float:
        spec = ctx.spec
        names = spec.differentiable_inputs(case)
        judged: list[float] = []
        why = "no call to judge"
        # The unreduced call, where each element is judged on its own, and one reduced call:
        # the reductions share the elementwise backward and differ by a weighting.
        unreduced = [r for r in ctx.calls if r in ("none", None)]
        reduced = [r for r in ctx.calls if r not in ("none", None)][:1]
        for name in names:
            v = direction(case.inputs[name])
            for reduction in unreduced + reduced:
                if np.any(spec.expects_nan(case, reduction)):
                    continue
                found = self._one(ctx, case, name, v, reduction)
                if isinstance(found, str):
                    why = found
                else:
                    judged.append(found)
        if not judged:
            raise OutsideDomain(why)
        return max(judged)

    def _one(self, ctx: Context, case: Case, name: str, v: np.ndarray,
             reduction: str | None) -> float | str:
        """The usage of one (input, reduction), or why nothing was judged."""
        kwargs = {} if reduction is None else {"reduction": reduction}
        position = list(case.inputs).index(name)

        def backward(weights: np.ndarray, called: tuple[torch.Tensor, list[torch.Tensor]]
                     | None = None) -> np.ndarray | None:
            """d sum(weights * out) / d input, from the given call's graph or a new call."""
            out, args = called or ctx.target(case, FLOAT64, ctx.device, grad_inputs=(name,),
                                             **kwargs)[:2]
            if (not out.is_floating_point() or tuple(out.shape) != np.shape(weights)
                    or not torch.isfinite(out).all()):
                return None  # the value properties report the dtype, the shape or the value
            weighted = out * torch.as_tensor(weights, dtype=out.dtype, device=out.device)
            grad = to_numpy(gradient(weighted, args[position], ctx.target.timeout))
            return grad if grad.shape == v.shape else None  # gradient_matches_reference's

        out, args, _ = ctx.target(case, FLOAT64, ctx.device, grad_inputs=(name,), **kwargs)
        shape = tuple(out.shape)
        if not out.is_floating_point():
            return NOTHING_TO_JUDGE
        eps = torch.finfo(out.dtype).eps
        weights = cotangent(shape)
        grad = backward(weights, (out, args)) if weights.size else None
        if grad is None:
            return NOTHING_TO_JUDGE

        def own(at: Case) -> np.ndarray:
            try:
                value, _, _ = ctx.target(at, FLOAT64, ctx.device, **kwargs)
            except TargetError:  # a step left the target's domain: no derivative there
                return np.full(shape, np.nan)
            return to_numpy(value).reshape(shape)

        # The values' own rounding is eps times their error scale, not their size (a Dice
        # loss of 3e-14 is 1 - 0.99999999999997: its steps are eps(1)); the spec's scale says
        # it. Moving the input rounds it too: an error of eps |x| per coordinate, which reaches
        # the values through the gradient (a coordinate of 1e4 with a derivative of 1e4).
        rounding = float(np.sum(np.abs(grad * case.inputs[name]))) / float(np.max(weights))
        scale = np.abs(ctx.spec.scale(case, reduction))
        if scale.size != int(np.prod(shape, dtype=int)):
            return NOTHING_TO_JUDGE
        rounding = scale.reshape(shape) + rounding  # an output with a kept unit axis, too
        chosen = self._direction(own, case, name, v)
        if chosen is None:
            return ("the target cannot be evaluated around this case (the finite differences"
                    " of its own values)")
        v = chosen
        each = along(own, case, name, v, shape, rounding, eps)
        # Along a direction every coordinate's kinks are crossed at once, and kinks of
        # opposite convexity in one element (an intersection's min, an enclosing box's max)
        # leave its one-sided derivatives no bound on a subgradient: an element near a kink is
        # left out of the comparison (its weight is 0), a reduced output near one is not
        # judged.
        if not each.smooth.all():
            if not shape or not each.smooth.any():
                return "near a kink along the check's direction: not judged"
            weights = np.where(each.smooth, weights, 0.0)
            grad = backward(weights)
            if grad is None:
                return NOTHING_TO_JUDGE
        value, error = each.total(weights)
        owed = self._owed_difference(ctx, case, name, v, reduction, weights, shape)
        if owed is None:
            return "the spec's owed gradient is near a kink along the check's direction"
        shift, shift_error = owed
        got = float(np.sum(grad * v))
        # As in gradient_matches_reference, the cotangent's size is part of the scale: a
        # derivative of O(1) terms is good to eps in absolute terms, however small (a focal
        # loss of 1e-23 whose forward underflows to 0 while its backward does not).
        scale = (abs(value + shift) + float(np.sum(np.abs(grad * v)))
                 + float(np.max(np.abs(weights))))
        allowed = (eps * (1 + np.log2(max(v.size, 1))) * scale
                   + 10 * (error + shift_error) + 1e-300)
        excess = abs(got - (value + shift))
        if excess > allowed:
            what = (" plus the spec's declared difference between its gradient and its"
                    f" value's derivative ({shift!r})" if shift else "")
            raise PropertyFailure(
                f"the gradient of {name!r} along the direction v (reduction={reduction!r}) is"
                f" {got!r}; the derivative of the target's own float64 values along v{what}"
                f" is {value + shift!r} (allowed error {allowed:.3g}): the backward does not"
                " match the forward", reduction=reduction)
        return excess / allowed

    @staticmethod
    def _direction(own: Callable[[Case], np.ndarray], case: Case, name: str,
                   v: np.ndarray) -> np.ndarray | None:
        """v, or a shorter or narrower one the target can be evaluated along: near a domain
        edge (a probability of exactly 0) the longest steps leave it, so first shorter steps,
        then v without the coordinates that cannot move at all (each tried alone)."""
        x = case.inputs[name]

        def defined(d: np.ndarray) -> bool:
            h = STEPS[0]
            return all(np.all(np.isfinite(own(case.with_inputs(**{name: x + t * d}))))
                       for t in (h, -h))

        for candidate in (v, 1e-3 * v):
            if defined(candidate):
                return candidate
        if x.size > 64:
            return None
        mask = np.zeros(x.size)
        for i in range(x.size):
            alone = np.zeros(x.size)
            alone[i] = v.reshape(-1)[i]
            mask[i] = defined(alone.reshape(x.shape))
        narrow = v * mask.reshape(x.shape)
        return narrow if mask.any() and defined(narrow) else None

    def _owed_difference(self, ctx: Context, case: Case, name: str, v: np.ndarray,
                         reduction: str | None, weights: np.ndarray,
                         shape: tuple[int, ...]) -> tuple[float, float] | None:
        """(gradient owed - value's derivative) along v, and its error: 0 unless the spec
        declares a gradient that is not its value's derivative. None where either reference
        derivative is at a kink or undefined (then nothing is judged)."""
        spec = ctx.spec
        if spec.gradient_reference is None:
            return 0.0, 0.0
        frozen = spec.gradient_reference(case)
        elementwise = spec.elementwise_reduction
        each = np.shape(spec.call_reference(case, elementwise))
        if reduction in ("none", None) and each != shape:
            return None  # a wrong output shape: the value properties report it
        linear = reduction_weights(spec, case, reduction, weights, each)
        found = []
        for values in (lambda at: np.asarray(frozen(at, elementwise)),
                       lambda at: np.asarray(spec.call_reference(at, elementwise))):
            derivatives = along(values, case, name, v, each)
            # Elements left out of the comparison (weight 0) may sit at kinks.
            if not derivatives.defined or np.any(~derivatives.smooth & (linear != 0)):
                return None
            found.append(derivatives.total(linear))
        (owed, owed_error), (full, full_error) = found
        return owed - full, owed_error + full_error


GRADIENT_MATCHES_OWN_VALUES = GradientMatchesOwnValues()
