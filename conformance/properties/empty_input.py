"""Empty input: the reference's value on it, with the empty shape, and a backward that runs."""

from __future__ import annotations

import numpy as np
import torch

from conformance.case import Case
from conformance.guard import PropertyFailure, TargetError, gradient, to_numpy
from conformance.properties.base import Context, Property


class HandlesEmptyInput(Property):
    name = "handles_empty_input"
    description = (
        "each empty form the spec declares (a batch of 0, an empty spatial axis, no boxes)"
        " gives the reference's value there under every reduction (0 for a sum over nothing,"
        " the spec's convention for a mean over nothing), with the reference's shape, and a"
        " backward that runs and has each input's shape"
    )

    only_in = torch.float32
    only_in_because = "an empty input holds no value a dtype could round"
    reads_reference = True  # the value owed on an empty input is the reference's

    def prepare(self, spec, case: Case) -> Case | None:
        return case if any(form.make(case) is not None for form in spec.empty) else None

    def check(self, ctx: Context, case: Case) -> float:
        spec = ctx.spec
        for form in spec.empty:
            empty = form.make(case)
            if empty is None:
                continue
            try:
                self._check_form(ctx, form.name, empty)
            except PropertyFailure as failure:
                failure.details.setdefault("seen", empty)  # a regime is the empty input's
                raise
        return 0.0

    def _check_form(self, ctx: Context, form: str, empty: Case) -> None:
        spec = ctx.spec
        where = f"on {form} ({_shapes(empty)})"
        # Each differentiable input is differentiated in a call of its own (a backward frees
        # the graph); a spec with none, or a target without autodiff (NumPy), is called once,
        # for its value.
        names = (spec.differentiable_inputs(empty) if ctx.target.gradients else []) or [None]
        for reduction in ctx.calls:
            owed = spec.call_reference(empty, reduction)
            kwargs = {} if reduction is None else {"reduction": reduction}
            for name in names:
                try:
                    out, args, _ = ctx.target(empty, ctx.dtype, ctx.device,
                                              grad_inputs=(name,) if name else (), **kwargs)
                except TargetError as exc:
                    raise PropertyFailure(f"{where}, reduction={reduction!r}: {exc}",
                                          reduction=reduction) from None
                if not out.is_floating_point():
                    raise PropertyFailure(f"{where} the target returned a {out.dtype} tensor"
                                          f" for reduction={reduction!r}", reduction=reduction)
                allowed = spec.tolerance.allowed(np.ones(owed.shape), ctx.dtype, 1)
                ctx.expect(to_numpy(out), owed, allowed, case=empty, reduction=reduction,
                           what=where, nan_expected=np.isnan(owed))
                if name is not None:
                    _backward_runs(out, args[list(empty.inputs).index(name)], name,
                                   f"{where}, reduction={reduction!r}", reduction)


def _backward_runs(out: torch.Tensor, wrt: torch.Tensor, name: str, where: str,
                   reduction: str | None) -> None:
    """A training step on an empty batch calls backward on what came back: it must run and
    give each input a gradient of its own shape."""
    try:
        grad = gradient(out, wrt)
    except TargetError as exc:
        raise PropertyFailure(f"{where}, the gradient of {name}: {exc}",
                              reduction=reduction) from None
    if tuple(grad.shape) != tuple(wrt.shape):
        raise PropertyFailure(f"{where}: the gradient of {name} has shape"
                              f" {tuple(grad.shape)}, not the input's {tuple(wrt.shape)}",
                              reduction=reduction)


def _shapes(case: Case) -> str:
    return ", ".join(f"{k} of shape {tuple(v.shape)}" for k, v in case.inputs.items())


HANDLES_EMPTY_INPUT = HandlesEmptyInput()
