"""What a property is, and the context it runs in."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from conformance.case import Case, dtype_name
from conformance.guard import GuardedTarget, PropertyFailure, TargetError, to_numpy
from conformance.spec import LossSpec
from conformance.tolerance import Comparison, compare


@dataclass
class Context:
    """One (target, spec, dtype, device) combination under test."""

    spec: LossSpec
    target: GuardedTarget
    dtype: torch.dtype
    device: str

    def invoke(
        self, case: Case, reduction: str | None
    ) -> tuple[torch.Tensor, list[torch.Tensor], dict[str, Any]]:
        """Call the target; `reduction=None` calls it without a reduction argument."""
        kwargs = {} if reduction is None else {"reduction": reduction}
        return self.target(case, self.dtype, self.device, **kwargs)

    def call(self, case: Case, reduction: str | None) -> torch.Tensor:
        out, _, _ = self.invoke(case, reduction)
        if not out.is_floating_point():
            raise TargetError(
                f"the target returned a {out.dtype} tensor for reduction={reduction!r};"
                " a loss is a floating-point value"
            )
        return out

    def values(self, case: Case, reduction: str | None) -> np.ndarray:
        return to_numpy(self.call(case, reduction))

    def allowed(self, case: Case, reduction: str | None) -> np.ndarray:
        return self.spec.tolerance.allowed(
            self.spec.scale(case, reduction), self.dtype, case.numel()
        )

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
        if np.shape(actual) != np.shape(expected):
            raise PropertyFailure(
                f"{what}: output shape {tuple(np.shape(actual))} for reduction={reduction!r},"
                f" expected {tuple(np.shape(expected))}",
                reduction=reduction,
            )
        result = compare(actual, expected, allowed, nan_expected=nan_expected, op=op)
        if not result.ok:
            raise PropertyFailure(
                f"{what} (reduction={reduction!r}): {result.summary()}",
                reduction=reduction,
                comparison=result,
            )
        return result

    @property
    def dtype_name(self) -> str:
        return dtype_name(self.dtype)


class Property(ABC):
    """A check written once; it runs on every spec that declares it.

    `prepare` may adapt a drawn case to what the property needs (fix a parameter, drop ignored
    targets) or return None when the case cannot serve; `check` raises PropertyFailure on a
    violation and returns the worst error / allowed ratio it saw (its inverse is the headroom).
    """

    name: str
    description: str

    def prepare(self, spec: LossSpec, case: Case) -> Case | None:
        return case

    @abstractmethod
    def check(self, ctx: Context, case: Case) -> float: ...

    def __repr__(self) -> str:
        return f"<property {self.name}>"
