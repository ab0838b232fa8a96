"""Properties every loss can declare: they know nothing of any one family."""

from __future__ import annotations

import numpy as np
import torch

from conformance.case import Case
from conformance.guard import NotApplicable, PropertyFailure, to_numpy
from conformance.layout import STRIDED
from conformance.properties.base import Context, Property
from conformance.properties.relation import Relation, reference, target
from reference.reduction import reduce

MATCHES_REFERENCE = Relation(
    name="matches_reference",
    description="the target's value equals the float64 reference under every reduction",
    lhs=target(),
    rhs=reference(label="reference"),
    narrow_dtypes=True,
)


class ReductionConsistency(Property):
    narrow_dtypes = True
    name = "reduction_consistency"
    description = (
        "'none' keeps the elementwise shape; 'sum' is the sum of 'none'; 'mean' (and 'batchmean')"
        " is that sum over the spec's denominator (weighted count when weights or ignore_index"
        " apply), or each element over its own (ctc_loss's target lengths) before the mean"
    )

    def check(self, ctx: Context, case: Case) -> float:
        spec = ctx.spec
        if "none" not in spec.reductions:
            return 0.0
        if "none" not in ctx.calls:
            raise NotApplicable("the target has no reduction='none' to compare with")
        elementwise = ctx.values(case, "none")
        expected_shape = spec.call_reference(case, "none").shape
        if elementwise.shape != expected_shape:
            raise PropertyFailure(
                f"reduction='none' returned shape {elementwise.shape}, the elementwise shape is"
                f" {expected_shape}",
                reduction="none",
            )
        total = np.sum(elementwise, dtype=np.float64)
        usage = 0.0
        for reduction in ctx.calls:
            if reduction == "none":
                continue
            if reduction == "sum":
                expected = total
            else:
                # Divided by the spec's denominator: one number, or one per element.
                with np.errstate(all="ignore"):
                    expected = reduce(elementwise, "mean", spec.denominator(case, reduction))
            result = ctx.expect(
                ctx.values(case, reduction), np.asarray(expected),
                # Both sides were computed in the tested dtype: allow for each.
                2 * ctx.allowed(case, reduction),
                case=case, reduction=reduction, nan_expected=spec.expects_nan(case, reduction),
                what=f"reduction={reduction!r} is not consistent with the sum of reduction='none'",
            )
            usage = max(usage, result.usage)
        return usage


class OutputDtype(Property):
    narrow_dtypes = True
    name = "output_dtype"
    description = "the output's dtype equals the input's dtype under every reduction"

    def check(self, ctx: Context, case: Case) -> float:
        for reduction in ctx.calls:
            out = ctx.call(case, reduction)
            if out.dtype != ctx.dtype:
                raise PropertyFailure(
                    f"reduction={reduction!r} returned {out.dtype} for {ctx.dtype} inputs",
                    reduction=reduction,
                )
        return 0.0


class NoInputMutation(Property):
    narrow_dtypes = True
    name = "no_input_mutation"
    description = "the target leaves every tensor it is given unchanged"

    def check(self, ctx: Context, case: Case) -> float:
        for reduction in ctx.calls:
            _, args, kwargs = ctx.invoke(case, reduction)
            given = dict(zip(case.inputs, args, strict=True))
            given.update({k: v for k, v in kwargs.items() if isinstance(v, torch.Tensor)})
            original = {**case.inputs, **case.params}
            for name, tensor in given.items():
                before = original[name]
                after = to_numpy(tensor) if tensor.is_floating_point() else tensor.cpu().numpy()
                if not np.array_equal(before, after, equal_nan=before.dtype.kind == "f"):
                    changed = int(np.sum(before != after))
                    raise PropertyFailure(
                        f"the target modified its argument {name!r} in place"
                        f" ({changed} of {before.size} elements changed, reduction={reduction!r})",
                        reduction=reduction,
                    )
        return 0.0


class NonNegative(Property):
    narrow_dtypes = True
    name = "nonnegative"
    description = "the loss is >= 0 (within the dtype's rounding) under every reduction"

    def check(self, ctx: Context, case: Case) -> float:
        usage = 0.0
        declared = ctx.spec.nonnegative_reductions
        reductions = [r for r in (ctx.calls if declared is None else declared) if r in ctx.calls]
        for reduction in reductions:
            nan_ok = ctx.spec.expects_nan(case, reduction)
            if np.all(nan_ok):
                continue  # the value is declared NaN: matches_reference checks that
            values = ctx.values(case, reduction)
            result = ctx.expect(
                -np.where(nan_ok, 0.0, values), np.zeros_like(values),
                ctx.allowed(case, reduction), op="le",
                case=case, reduction=reduction, what="the loss is negative",
            )
            usage = max(usage, result.usage)
        return usage


class AcceptsNonContiguousInput(Property):
    """Strides are not values: a target handed non-contiguous tensors (a slice, a transposed
    batch) owes what it returns for contiguous ones. `.view` on an input, or a kernel that
    reads `data_ptr` as if it were contiguous, fails here and nowhere else."""

    name = "accepts_non_contiguous_input"
    description = (
        "given non-contiguous copies of its tensors, the target returns its contiguous result"
        " under every reduction, within twice the dtype's rule"
    )
    narrow_dtypes = True
    layout = STRIDED

    def prepare(self, spec, case: Case) -> Case | None:
        # One element is contiguous in any layout: such a case cannot show a stride bug.
        arrays = [*case.inputs.values(), *(v for v in case.params.values()
                                           if isinstance(v, np.ndarray))]
        return case if any(a.size > 1 for a in arrays) else None

    def check(self, ctx: Context, case: Case) -> float:
        usage = 0.0
        for reduction in ctx.calls:
            kwargs = {} if reduction is None else {"reduction": reduction}
            expected = ctx.values(case, reduction)
            out, _, _ = ctx.target(case, ctx.dtype, ctx.device, layout=STRIDED, **kwargs)
            result = ctx.expect(
                to_numpy(out), expected, 2 * ctx.allowed(case, reduction),
                case=case, reduction=reduction, nan_expected=np.isnan(expected),
                what="non-contiguous inputs change the result",
            )
            usage = max(usage, result.usage)
        return usage


class AgreesWithCpu(Property):
    """On an accelerator, the same target's values agree with its CPU values.

    Both sides are computed in the tested dtype, so each may carry the dtype's rule; where the
    CPU value is NaN the device's must be NaN too (matches_reference judges the NaN itself).
    """

    name = "agrees_with_cpu"
    description = (
        "on a non-CPU device, every reduction's value equals the same target's value on the CPU"
        " within twice the dtype's rule"
    )
    baseline = "cpu"
    narrow_dtypes = True

    def not_applicable(self, ctx: Context) -> str | None:
        if ctx.device == self.baseline:
            return ("compares a non-CPU device with the CPU: runs when a CUDA device is"
                    " present (devices='auto' or 'cuda')")
        return None

    def check(self, ctx: Context, case: Case) -> float:
        usage = 0.0
        for reduction in ctx.calls:
            kwargs = {} if reduction is None else {"reduction": reduction}
            on_cpu, _, _ = ctx.target(case, ctx.dtype, self.baseline, **kwargs)
            expected = to_numpy(on_cpu)
            result = ctx.expect(
                ctx.values(case, reduction), expected, 2 * ctx.allowed(case, reduction),
                case=case, reduction=reduction, nan_expected=np.isnan(expected),
                what=f"the {ctx.device} value differs from the {self.baseline} value",
            )
            usage = max(usage, result.usage)
        return usage


GENERIC = (
    MATCHES_REFERENCE,
    ReductionConsistency(),
    OutputDtype(),
    NoInputMutation(),
    NonNegative(),
)

ACCEPTS_NON_CONTIGUOUS = AcceptsNonContiguousInput()

AGREES_WITH_CPU = AgreesWithCpu()
