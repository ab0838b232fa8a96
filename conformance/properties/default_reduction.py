"""default_reduction_is_the_specs: a call without `reduction` is the canonical default."""

from __future__ import annotations

import numpy as np
import torch

from conformance.case import Case
from conformance.properties.base import Context, Property


class DefaultReduction(Property):
    """Users call losses without `reduction` more often than with it. The canonical signature
    names the default (torch's 'mean', torchvision's focal 'none'); a target whose own default
    differs returns another quantity, often of another shape, to every caller that leaves it
    out, and no check that passes the reduction explicitly can see it."""

    name = "default_reduction_is_the_specs"
    description = (
        "called without a reduction argument, the target returns what it returns for the"
        " canonical signature's default reduction"
    )
    only_in = torch.float32
    only_in_because = "a default is a matter of the signature, not of the dtype"

    def not_applicable(self, ctx: Context) -> str | None:
        default = ctx.spec.default_reduction
        if default is None:
            return "the spec has no reduction argument"
        if default not in ctx.calls:
            return f"the target lacks the spec's default reduction {default!r}"
        return super().not_applicable(ctx)

    def check(self, ctx: Context, case: Case) -> float:
        default = ctx.spec.default_reduction
        expected = ctx.values(case, default)
        result = ctx.expect(
            ctx.values(case, None), expected, 2 * ctx.allowed(case, default),
            case=case, reduction=None, nan_expected=np.isnan(expected),
            what=f"without a reduction argument the target does not return its"
                 f" reduction={default!r} value (the spec's default)",
        )
        return result.usage


DEFAULT_REDUCTION = DefaultReduction()
