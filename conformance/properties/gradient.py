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
# Relative to max(1, |x|). A smooth element settles at the first steps; a kink's one-sided
# derivatives are read at the last, which must be shorter than the distance to the next kink
# (a box 1e-3 wide at x = 3e3 is 3e-7 of |x| wide; at 1e-6 every step crossed it).
STEPS = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8)


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


def _evaluable(f: Callable[[np.ndarray], np.ndarray]
               ) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    """f of a stack of points, made safe point by point: a point outside the reference's
    domain (p < 0, say) gives NaN, the others their values."""

    def one(x: np.ndarray) -> np.ndarray:
        try:
            return np.asarray(f(x[None])[0], dtype=np.float64)
        except (ValueError, ZeroDivisionError, FloatingPointError):
            return np.array(np.nan)

    def many(points: list[np.ndarray], whole: bool = False) -> list[np.ndarray] | None:
        """Every point's value; with `whole`, None unless every point has one."""
        if len(points) > 1 or whole:
            try:
                return list(np.asarray(f(np.stack(points)), dtype=np.float64))
            except (ValueError, ZeroDivisionError, FloatingPointError):
                if whole:
                    return None
                # some point is outside the domain: find which, one at a time
        return [one(x) for x in points]

    return many


@dataclass
class Elementwise:
    """Each output element's derivative along the coordinate that owns it, unweighted: one
    set of reference calls, shared by every reduction (each weights the elements
    differently)."""

    owner: np.ndarray  # the output's shape: the moved coordinate each element depends on
    settled: np.ndarray  # smooth elements
    value: np.ndarray  # a smooth element's derivative
    low: np.ndarray  # a kinked element's one-sided derivatives, the smaller and the larger
    high: np.ndarray
    error: np.ndarray  # the estimate's own error
    undefined: np.ndarray  # per moved coordinate: f cannot be evaluated around it

    def weighted(self, linear: np.ndarray | float) -> list[Derivative | None]:
        """d sum(linear * f) / d x_k for each moved coordinate k (None where undefined). A
        kink in a sum of elements is the sum of the elements' intervals, so torch's
        tie-breaking in one element and a kink of the opposite convexity in another are both
        within bounds."""
        linear = np.broadcast_to(linear, self.owner.shape)
        mine = self.owner >= 0
        kinked = mine & ~self.settled
        n = len(self.undefined)
        with np.errstate(invalid="ignore"):
            ends = (linear * self.low, linear * self.high)
            low = np.where(kinked, np.minimum(*ends), 0.0)
            high = np.where(kinked, np.maximum(*ends), 0.0)
            smooth = np.where(mine & self.settled, linear * self.value, 0.0)
            error = np.where(mine, np.abs(linear) * self.error, 0.0)

        def total(part: np.ndarray) -> np.ndarray:
            return np.bincount(self.owner[mine], weights=part[mine], minlength=n)

        value, kinks = total(smooth), np.bincount(self.owner[kinked], minlength=n)
        lows, highs, errors = value + total(low), value + total(high), total(error)
        return [None if self.undefined[k] else Derivative(
            value=float(value[k]), low=float(lows[k]), high=float(highs[k]),
            error=float(errors[k]), kink=bool(kinks[k])) for k in range(n)]


def elementwise_derivatives(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                            owner: np.ndarray, noise: np.ndarray | float = 0.0,
                            at_once: bool = False) -> Elementwise:
    """The derivative of each element of f's output along the coordinate it depends on, for
    f(points) returning, for each row of moved values of x, the output, where `owner` (the
    output's shape) says which coordinate each output element depends on (-1: none of them).
    One coordinate: owner is all 0. Several: each output element depends on one of them only
    (a separable loss), so moving them all at once gives every derivative from one set of
    calls.

    Each output element is classified on its own: smooth (one-sided derivatives agree and two
    steps agree) or kinked (one-sided derivatives stable but different). A coordinate around
    which f cannot be evaluated (a domain boundary) is undefined.

    `noise`: the elementwise scale of f's own rounding error, where it exceeds |f| (a value
    that is a small difference of larger terms, like KL's t log t - t x near its minimum): the
    float64 reference is no more precise than eps times that scale, and its differences no
    more than that over h.

    `at_once`: ask f for every point of every step in one call (f evaluates a stack in one
    reference call); else one call per step, stopping once every element has settled."""
    f = _evaluable(f)
    spans = [relative * np.maximum(1.0, np.abs(x)) for relative in STEPS]

    def around(h: np.ndarray) -> list[np.ndarray]:
        return [x + h, x - h, x + h / 2, x - h / 2]

    # At once where f stacks and every point is inside the reference's domain (a step past a
    # thin box's width inverts it: then step by step, as without stacking).
    later = f([x, *(point for h in spans for point in around(h))], whole=True) if at_once else None
    if later is None:
        f0 = f([x])[0]
    else:
        f0, *later = later
    shape = np.shape(owner) if np.ndim(owner) else np.shape(f0)
    owner = np.broadcast_to(owner, shape)
    mine = owner >= 0
    undefined = np.zeros(len(x), dtype=bool)

    def defined(*values: np.ndarray) -> np.ndarray:
        """Per output element: finite in every value (a scalar NaN: nowhere)."""
        ok = np.ones(shape, dtype=bool)
        for v in values:
            ok &= np.broadcast_to(np.isfinite(v), shape)
        return ok

    undefined[np.unique(owner[mine & ~defined(f0)])] = True
    smooth_value = np.zeros(shape)
    settled = ~mine
    low = high = error = np.zeros(shape)
    # A kink's one-sided derivatives come from the step where they are most stable: the
    # smallest change from the previous step plus rounding (too long a step crosses the next
    # kink, too short a one drowns in rounding). That change is their error.
    previous_left = previous_right = np.full(shape, np.nan)
    kink_error = np.full(shape, np.inf)
    steady = np.zeros(shape, dtype=bool)  # kinks whose one-sided derivatives stopped moving
    eps = np.finfo(np.float64).eps
    for i, h_moved in enumerate(spans):
        h = np.where(mine, h_moved[np.maximum(owner, 0)], 1.0)
        fp, fm, fp2, fm2 = later[4 * i:4 * i + 4] if later else f(around(h_moved))
        undefined[np.unique(owner[mine & ~defined(fp, fm, fp2, fm2)])] = True
        if undefined.all():
            break
        with np.errstate(invalid="ignore"):
            d1, d2 = (fp - fm) / (2 * h), (fp2 - fm2) / h
            central = (4 * d2 - d1) / 3
            # Truncation (the two estimates' difference) plus the rounding of f, amplified by
            # 1/h.
            roundoff = 8 * eps * np.maximum(np.abs(f0), np.maximum(np.abs(fp), np.abs(fm))) / h
            # The reference's own rounding at this step: part of the estimate's error (what the
            # allowed error must cover), not of the smooth-or-kink decision.
            resolution = 8 * eps * np.broadcast_to(noise, shape) / h
            err = np.abs(d2 - d1) + roundoff
            right = 2 * (fp2 - f0) / (h / 2) - (fp - f0) / h
            left = 2 * (f0 - fm2) / (h / 2) - (f0 - fm) / h
            scale = np.abs(central) + np.abs(f0) * 1e-3 + 1e-12
            # A kink shows in the one-sided derivatives, not in central differences: those see
            # the average of the two sides and agree with themselves at every step (|x| at 0).
            agree = np.abs(right - left) <= 1e-6 * (np.abs(right) + np.abs(left) + scale) + (
                8 * roundoff)
            smooth = agree & (err <= 1e-6 * scale) & ~settled
        # Agreement is within a tolerance, so a kink whose sides differ by less (touching
        # boxes where the union and the enclosing box nearly coincide: a gap of 3e-6 relative)
        # passes for smooth: either side is then as right as the centre, and the error says so.
        smooth_value = np.where(smooth, central, smooth_value)
        error = np.where(smooth, err + resolution + 0.5 * np.abs(right - left), error)
        settled = settled | smooth
        with np.errstate(invalid="ignore"):
            change = np.abs(right - previous_right) + np.abs(left - previous_left) + roundoff
            steadier = ~settled & (change < kink_error)
        low = np.where(steadier, np.minimum(left, right), low)
        high = np.where(steadier, np.maximum(left, right), high)
        kink_error = np.where(steadier, change, kink_error)
        steady |= ~settled & (change <= 1e-9 * (np.abs(left) + np.abs(right)) + 2 * roundoff)
        previous_left, previous_right = left, right
        if (settled | steady).all():
            break
    error = np.where(settled, error, 1e-6 * (np.abs(low) + np.abs(high)) + kink_error)
    return Elementwise(owner=owner, settled=settled, value=smooth_value, low=low, high=high,
                       error=error, undefined=undefined)


def moves(coordinates: np.ndarray, input_shape: tuple[int, ...], output_shape: tuple[int, ...],
          axes: tuple[int, ...] | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """The coordinates to move together, each set with the owner map `derivatives` takes.

    `axes`: the input's axes one output element reads together (the spec's `separable`), or
    None. A sampled coordinate then moves with the same position in every other slice, so the
    check covers more coordinates in fewer calls. Each sampled coordinate alone where nothing
    is declared, or where the output's shape is not the input's without those axes."""
    rank = len(input_shape)
    alone = [(np.array([c]), np.zeros(output_shape, dtype=int)) for c in coordinates]
    if axes is None or not output_shape:
        return alone
    read = sorted({a % rank for a in axes})
    kept = [a for a in range(rank) if a not in read]
    if tuple(input_shape[a] for a in kept) != tuple(output_shape):
        return alone
    index = np.indices(input_shape).reshape(rank, -1)
    owner = np.ravel_multi_index(tuple(index[kept]), output_shape)
    position = (np.ravel_multi_index(tuple(index[read]), tuple(input_shape[a] for a in read))
                if read else np.zeros_like(owner))
    outer = np.arange(int(np.prod(output_shape, dtype=int))).reshape(output_shape)
    sets = []
    for p in np.unique(position[np.asarray(coordinates, dtype=int)]):
        flats = np.flatnonzero(position == p)
        sets.append((flats[np.argsort(owner[flats])], outer))
    return sets


def reduction_weights(spec, case: Case, reduction: str | None, cotangent_: np.ndarray,
                       elementwise_shape: tuple[int, ...]) -> np.ndarray:
    """The weights that turn the elementwise output into the target's weighted output."""
    if reduction in ("none", None):
        return cotangent_
    factor = 1.0 if reduction == "sum" else 1.0 / spec.denominator(case, reduction)
    if reduction != "sum" and np.ndim(factor):  # each element's own divisor, then the mean
        factor = factor / max(int(np.prod(elementwise_shape, dtype=int)), 1)
    return float(cotangent_) * factor * np.ones(elementwise_shape)


def _elementwise_loss(spec, case: Case) -> Callable[[Case], np.ndarray]:
    """The elementwise loss as a function of a (moved) case, with the spec's constants frozen
    at `case` where it declares a gradient_reference (CIoU's alpha)."""
    if spec.gradient_reference:
        frozen = spec.gradient_reference(case)
        return lambda at: np.asarray(frozen(at, spec.elementwise_reduction))
    return lambda at: spec.call_reference(at, spec.elementwise_reduction)


def _loss_of_each(spec, loss: Callable[[Case], np.ndarray], case: Case, name: str,
                  moved: np.ndarray, shape: tuple[int, ...]) -> list[np.ndarray]:
    """The elementwise loss at `case` with input `name` replaced by each of `moved` (a stack):
    one call of the stacked case where the spec declares `stacks`, else one call each."""
    if not spec.stacks:
        return [loss(case.with_inputs(**{name: one})) for one in moved]
    count = len(moved)
    stacked = {k: np.broadcast_to(v, (count, *np.shape(v))) for k, v in case.inputs.items()}
    out = loss(case.with_inputs(**{**stacked, name: moved}))
    if out.shape != (count, *shape):
        raise RuntimeError(f"spec {spec.name!r} declares stacks, but {count} stacked copies of"
                           f" a case with output shape {shape} gave shape {out.shape}")
    return list(out)


def reference_derivatives(
    spec, case: Case, name: str, linear: np.ndarray, axes: tuple[int, ...] | None,
    memo: dict[bytes, Elementwise] | None = None,
) -> list[tuple[int, Derivative]]:
    """The float64 reference's derivatives of sum(linear * elementwise loss) along the checked
    coordinates of input `name` (flat index, derivative); coordinates around which the
    reference cannot be evaluated are left out. `memo` keeps the elementwise derivatives
    across calls: the reductions only weight them differently."""
    base = case.inputs[name]
    memo = {} if memo is None else memo
    loss = _elementwise_loss(spec, case)
    reference = loss(case)
    shape = reference.shape
    # The reference's own rounding, elementwise: eps(float64) times the spec's error scale.
    noise = spec.magnitude(case, reference)

    def along(flats: np.ndarray, owner: np.ndarray) -> Elementwise:
        key = flats.tobytes()
        if key not in memo:
            def f(points: np.ndarray) -> np.ndarray:
                moved = np.repeat(base.reshape(1, -1), len(points), axis=0)
                moved[:, flats] = points
                return np.stack(_loss_of_each(spec, loss, case, name,
                                              moved.reshape(len(points), *base.shape), shape))

            memo[key] = elementwise_derivatives(f, base.reshape(-1)[flats], owner, noise,
                                                spec.stacks)
        return memo[key]

    checked: list[tuple[int, Derivative]] = []
    for flats, owner in moves(_coordinates(base.size), base.shape, shape, axes):
        found = along(flats, owner).weighted(linear)
        for flat, one in zip(flats, found, strict=True):
            if one is None and len(flats) > 1:  # moving the others too left the domain
                alone = np.array([flat])
                one = along(alone, np.zeros(shape, dtype=int)).weighted(linear)[0]
            if one is not None:
                checked.append((int(flat), one))
    return checked


class GradientMatchesReference(Property):
    reads_reference = True
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
        # An input a case gives as a number (gaussian_nll_loss's var) has no gradient to owe.
        missing = [n for n in declared if n not in case.inputs and n not in case.params]
        if missing:  # a spec error: a gradient check of nothing would pass vacuously
            raise ValueError(f"spec {spec.name!r} declares differentiable inputs {missing}"
                             f" that its cases do not have ({list(case.inputs)})")
        for name in spec.differentiable_inputs(case):
            position = list(case.inputs).index(name)
            # The reference's elementwise derivatives, shared by the reductions: each one
            # only weights them differently.
            memo: dict[bytes, Elementwise] = {}
            for reduction in ctx.calls:
                if np.any(spec.expects_nan(case, reduction)):
                    continue
                kwargs = {} if reduction is None else {"reduction": reduction}
                out, args, _ = ctx.target(case, ctx.dtype, ctx.device, grad_inputs=(name,),
                                          **kwargs)
                # The reference's output shape weights the elements; an output of another shape
                # but as many elements (a kept unit axis) is matches_reference's to report.
                wanted = np.shape(spec.call_reference(case, reduction))
                if out.numel() != int(np.prod(wanted, dtype=int)):
                    raise PropertyFailure(
                        f"output shape {tuple(out.shape)} for reduction={reduction!r},"
                        f" expected {wanted}", reduction=reduction)
                weights = cotangent(wanted)
                weighted = out * torch.as_tensor(weights.reshape(tuple(out.shape)),
                                                 dtype=out.dtype, device=out.device)
                grad = to_numpy(gradient(weighted, args[position], ctx.target.timeout))
                usage = max(usage, self._compare(ctx, case, name, reduction, weights, grad,
                                                 memo))
        return usage

    def _compare(self, ctx: Context, case: Case, name: str, reduction: str | None,
                 weights: np.ndarray, grad: np.ndarray, memo: dict[bytes, Elementwise]
                 ) -> float:
        spec = ctx.spec
        base = case.inputs[name]
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
        linear = reduction_weights(spec, case, reduction, weights,
                                    _elementwise_loss(spec, case)(case).shape)

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
        if spec.gradient_condition is not None:  # where the spec knows the backward's own
            condition = max(condition, float(spec.gradient_condition(case)))
        magnitude *= condition
        eps = torch.finfo(ctx.dtype).eps * spec.tolerance.k[ctx.dtype_name]
        usage = 0.0
        axes = spec.separable(case, name) if spec.separable else None
        checked = reference_derivatives(spec, case, name, linear, axes, memo)
        for flat, found in checked:
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
                    reduction=reduction, ratio=ratio)
            usage = max(usage, ratio)
        return usage


GRADIENT = GradientMatchesReference()
