"""What a property is, and the context it runs in."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from conformance.case import Case, dtype_name
from conformance.guard import (
    GuardedTarget,
    OutsideDomain,
    PropertyFailure,
    TargetError,
    to_numpy,
)
from conformance.layout import CONTIGUOUS
from conformance.spec import LossSpec
from conformance.tolerance import Comparison, compare

NARROW = (torch.float16, torch.bfloat16)
# Shared calls kept per context: an example's rounded case and a relation's transformed ones.
_CALLS_KEPT = 32


def _frozen(array: Any) -> np.ndarray:
    array = np.array(array, dtype=np.float64)  # a copy: the caller's array stays writeable
    array.flags.writeable = False
    return array


def in_range(expected: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    """The expectation as the dtype can hold it: a value past the dtype's largest finite
    number (plus half an ulp) rounds to an infinity, so a target returning that infinity is
    right. A value within range that comes back infinite is still an overflow."""
    expected = np.asarray(expected, dtype=np.float64)
    if dtype == torch.float64:
        return expected
    with np.errstate(all="ignore"):
        if np.all(np.abs(expected) <= torch.finfo(dtype).max):  # nothing to round away
            return expected
        rounded = torch.from_numpy(np.array(expected)).to(dtype).double().numpy()
    return np.where(np.isinf(rounded) & np.isfinite(expected), rounded, expected)


@dataclass
class Context:
    """One (target, spec, dtype, device) combination under test.

    Every property of one example asks for the target's value on the same rounded case under
    the same reductions (matches_reference, reduction_consistency, output_dtype, ...): the
    plain calls are shared, one per (case, reduction), as the reference's values are
    (LossSpec.call_reference). A target's output is a function of its inputs, and each
    property still judges that output its own way; a call that raised is never remembered,
    so each property sees the error itself. Calls with gradients, strides, other devices or
    warnings kept go to the target every time."""

    spec: LossSpec
    target: GuardedTarget
    dtype: torch.dtype
    device: str
    # (id(case), reduction, what) -> (case, value); the case is held so its id stays its own.
    _memo: dict[tuple[int, str | None, str], tuple[Case, Any]] = field(
        default_factory=dict, repr=False, compare=False)

    def _remembered(self, case: Case, reduction: str | None, what: str,
                    compute: Any) -> Any:
        key = (id(case), reduction, what)
        hit = self._memo.get(key)
        if hit is not None and hit[0] is case:
            return hit[1]
        value = compute()
        if len(self._memo) >= _CALLS_KEPT:
            del self._memo[next(iter(self._memo))]
        self._memo[key] = (case, value)
        return value

    def invoke(
        self, case: Case, reduction: str | None
    ) -> tuple[torch.Tensor, list[torch.Tensor], dict[str, Any]]:
        """Call the target; `reduction=None` calls it without a reduction argument."""
        kwargs = {} if reduction is None else {"reduction": reduction}
        return self._remembered(case, reduction, "call",
                                lambda: self.target(case, self.dtype, self.device, **kwargs))

    def admit(self, case: Case) -> None:
        """Raise OutsideDomain unless a value is owed on this rounded case in this dtype."""
        why = self.spec.outside_domain(case, self.dtype)
        if why is not None:
            raise OutsideDomain(why)

    def call(self, case: Case, reduction: str | None) -> torch.Tensor:
        out, _, _ = self.invoke(case, reduction)
        if not out.is_floating_point():
            raise TargetError(
                f"the target returned a {out.dtype} tensor for reduction={reduction!r};"
                " a loss is a floating-point value"
            )
        return out

    def values(self, case: Case, reduction: str | None) -> np.ndarray:
        """The target's value in float64 (read-only: properties share it)."""
        return self._remembered(case, reduction, "values",
                                lambda: _frozen(to_numpy(self.call(case, reduction))))

    def allowed(self, case: Case, reduction: str | None) -> np.ndarray:
        """The rule's allowed error for each output element (read-only: shared)."""
        return self._remembered(case, reduction, "allowed", lambda: _frozen(
            self.spec.tolerance.allowed(self.spec.scale(case, reduction), self.dtype,
                                        case.numel())))

    def expect(
        self,
        actual: np.ndarray,
        expected: np.ndarray,
        allowed: np.ndarray,
        *,
        case: Case,
        reduction: str | None,
        what: str,
        op: str = "eq",
        nan_expected: bool | np.ndarray = False,
    ) -> Comparison:
        """Compare and raise a PropertyFailure (with everything the report shows) on violation."""
        # A bound built from the target's own output (0 <= loss) has its shape, so the shape of
        # the allowed error, which is the reference's, is what exposes a wrong output shape.
        wanted = _wanted_shape(np.shape(actual), np.shape(expected), np.shape(allowed))
        if wanted is not None:
            raise PropertyFailure(
                f"{what}: output shape {tuple(np.shape(actual))} for reduction={reduction!r},"
                f" expected {tuple(wanted)}",
                reduction=reduction,
            )
        result = compare(actual, in_range(expected, self.dtype), allowed,
                         nan_expected=nan_expected, op=op)
        if not result.ok:
            raise PropertyFailure(
                f"{what} (reduction={reduction!r}): {result.summary()}",
                reduction=reduction,
                comparison=result,
            )
        return result

    @property
    def calls(self) -> tuple[str | None, ...]:
        """The spec's reductions that the target supports (an adapter may declare fewer)."""
        supported = self.target.reductions
        if supported is None:
            return self.spec.calls
        return tuple(r for r in self.spec.calls if r is None or r in supported)

    @property
    def dtype_name(self) -> str:
        return dtype_name(self.dtype)


def _wanted_shape(actual: tuple[int, ...], expected: tuple[int, ...],
                  allowed: tuple[int, ...]) -> tuple[int, ...] | None:
    """None when `actual` is the output's shape, else the shape it should have."""
    if actual != expected:
        return expected
    try:
        return None if np.broadcast_shapes(allowed, actual) == actual else allowed
    except ValueError:
        return allowed


class Property(ABC):
    """A check written once; it runs on every spec that declares it.

    `prepare` may adapt a drawn case to what the property needs (fix a parameter, drop ignored
    targets) or return None when the case cannot serve; `check` raises PropertyFailure on a
    violation and returns the worst error / allowed ratio it saw (its inverse is the headroom).
    """

    name: str
    description: str
    # Whether the property runs in float16 and bfloat16. Family invariants compare the target
    # on transformed inputs (scaled, shifted, swapped), which a narrow dtype rounds again, so
    # the invariant no longer holds of the rounded case; those run in float32 and float64,
    # where matches_reference has already pinned the values they relate.
    narrow_dtypes: bool = False
    # The memory layout of the tensors the target is handed (conformance.layout); the
    # reproducer builds the same one.
    layout: str = CONTIGUOUS
    # The one dtype a property runs in where the others would add nothing (None: every dtype
    # above), and why.
    only_in: torch.dtype | None = None
    only_in_because: str = ""
    # Whether the property compares the target with the spec's own reference, so that a
    # declared convention (a variant of that reference) can explain its failure.
    reads_reference: bool = False

    def prepare(self, spec: LossSpec, case: Case) -> Case | None:
        return case

    def keeps(self, spec: LossSpec, rounded: Case) -> bool:
        """Whether a prepared case, once rounded to the tested dtype, is still in this
        property's domain (a widened box may round back to zero width in float16)."""
        return True

    def not_applicable(self, ctx: Context) -> str | None:
        """Why this property cannot run in `ctx` (reported as skipped), or None."""
        if not ctx.calls:
            return "the target supports none of the spec's reductions"
        home = self.home_dtype(ctx.spec)
        if home is not None and ctx.dtype_name != home:
            return f"checked in {home}: {self.only_in_because}"
        if ctx.dtype in NARROW and not self.narrow_dtypes:
            return ("a family invariant: checked in float32 and float64 (float16 and bfloat16"
                    " run values, reductions, dtype, mutation, sign, gradients, devices)")
        return None

    def home_dtype(self, spec: LossSpec) -> str | None:
        """The one dtype this property runs in for `spec`: `only_in`, or the spec's first
        where the spec is not defined in that one (a float64-only metric)."""
        if self.only_in is None:
            return None
        name = dtype_name(self.only_in)
        return name if spec.dtypes is None or name in spec.dtypes else spec.dtypes[0]

    @abstractmethod
    def check(self, ctx: Context, case: Case) -> float: ...

    def __repr__(self) -> str:
        return f"<property {self.name}>"
