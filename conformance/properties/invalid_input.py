"""Invalid input is refused: an error, or NaN where the spec allows it, never a loss value."""

from __future__ import annotations

import numpy as np
import torch

from conformance.case import Case
from conformance.guard import NotApplicable, PropertyFailure, TargetError, to_numpy
from conformance.invalid import RAISE_OR_NAN, changes
from conformance.properties.base import Context, Property


class RejectsInvalidInput(Property):
    name = "rejects_invalid_input"
    description = (
        "each invalid form the spec declares (an inverted box, a label past the last class, a"
        " target batch of 1 against N, a class weight of the wrong length) makes the target"
        " raise, or return NaN where the spec allows it: never a value that looks like a loss"
    )

    only_in = torch.float32
    only_in_because = "an invalid input is invalid in every dtype"

    def prepare(self, spec, case: Case) -> Case | None:
        return case if any(form.make(case) is not None for form in spec.invalid) else None

    def check(self, ctx: Context, case: Case) -> float:
        # The valid case gets a value: refusing everything is not refusing the invalid.
        for reduction in ctx.calls:
            ctx.call(case, reduction)
        for form in ctx.spec.invalid:
            bad = form.make(case)
            if bad is None:
                continue
            for reduction in ctx.calls:
                kwargs = {} if reduction is None else {"reduction": reduction}
                try:
                    out, _, _ = ctx.target(bad, ctx.dtype, ctx.device, keep_warnings=True,
                                           **kwargs)
                except TargetError as exc:
                    if "exception" in exc.details:
                        continue  # the target refused it: what is owed
                    raise
                except NotApplicable:
                    continue
                values = to_numpy(out) if out.is_floating_point() else np.asarray(out)
                if form.owed == RAISE_OR_NAN and np.isnan(values).any():
                    continue
                owed = "an error or NaN" if form.owed == RAISE_OR_NAN else "an error"
                shown = np.array2string(np.asarray(values).reshape(-1)[:6], precision=6)
                # A warning is no refusal (the value still comes back), but the user saw one.
                warned = (f", warning {ctx.target.warned[0][:120]!r}" if ctx.target.warned
                          else " without a warning")
                raise PropertyFailure(
                    f"on {form.name} ({changes(case, bad)}) the target returned"
                    f" {shown}{' ...' if values.size > 6 else ''} of shape"
                    f" {tuple(values.shape)} for reduction={reduction!r}{warned}; {owed} is"
                    " owed", reduction=reduction, seen=bad)
        return 0.0


REJECTS_INVALID_INPUT = RejectsInvalidInput()
