"""Relations: a property stated as `lhs op rhs`, each side the target or a reference on a case.

Every family invariant is one of these: a special case that equals another loss (focal at
gamma=0 is BCE), an invariance of the target (CE under a shift of the logits), a bound (focal
<= BCE).  `matches_reference` is the relation target == the spec's own reference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from conformance.case import Case
from conformance.guard import NotApplicable
from conformance.properties.base import Context, Property
from conformance.spec import LossSpec

CaseMap = Callable[[Case], Case]


def _identity(case: Case) -> Case:
    return case


@dataclass(frozen=True)
class Side:
    """One side of a relation: the target, or a float64 reference, on a transformed case."""

    on_target: bool
    transform: CaseMap = _identity
    reference: Callable[..., np.ndarray] | None = None  # None: the spec's own reference
    label: str = ""
    # A rearrangement of the output's elements (a transpose): it applies to their allowed
    # errors too, so it must not change a value.
    output: Callable[[np.ndarray], np.ndarray] = np.asarray
    plus: float = 0.0  # a constant the side's values are owed to differ by (not its error)

    @property
    def is_the_spec(self) -> bool:
        """The spec's own function (target or reference), which carries its declared NaNs."""
        return self.on_target or self.reference is None

    def at(self, ctx: Context, case: Case) -> Case:
        """The case this side is evaluated on: transformed, and once transformed, rounded
        for the target and admitted (once for every reduction)."""
        mapped = self.transform(case)
        if mapped is not case:
            # A transform can leave the dtype's grid (x + c): the target sees the rounded
            # values, and the spec must owe a value on them too (the case itself was admitted).
            if self.on_target:
                mapped = mapped.rounded(ctx.dtype)
            if self.is_the_spec:
                ctx.admit(mapped)
        return mapped

    def evaluate(
        self, ctx: Context, mapped: Case, reduction: str | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The side's values on its case (`at`) and their allowed error."""
        if self.on_target:
            values, allowed = ctx.values(mapped, reduction), ctx.allowed(mapped, reduction)
            return self.output(values) + self.plus, self.output(allowed)
        values = self.output(ctx.spec.call_reference(mapped, reduction, self.reference)
                             ) + self.plus
        return values, np.zeros_like(values)


def target(
    transform: CaseMap = _identity,
    label: str = "target",
    output: Callable[[np.ndarray], np.ndarray] = np.asarray,
    plus: float = 0.0,
) -> Side:
    return Side(True, transform, None, label, output, plus)


def reference(
    fn: Callable[..., np.ndarray] | None = None, transform: CaseMap = _identity, label: str = ""
) -> Side:
    return Side(False, transform, fn, label or (fn.__name__ if fn else "reference"))


@dataclass(frozen=True, eq=False)
class Relation(Property):
    name: str
    description: str
    lhs: Side
    rhs: Side
    op: str = "eq"  # 'eq' or 'le'
    # Reductions to check: all of the spec's by default, or a subset (fixed or per case).
    reductions: tuple[str, ...] | Callable[[Case], tuple[str, ...]] | None = None
    adapt: Callable[[Case], Case | None] | None = None
    narrow_dtypes: bool = False  # see Property
    # Whether the relation holds of the target only as far as it holds of the spec: the two
    # sides may differ by as much as the spec's reference differs between the same two cases
    # (an absolute eps makes a box loss depend on the unit; the spec says how much).
    up_to_the_spec: bool = False
    # Declared variants (conformance.variants) the relation holds under, by value: a side
    # that is another loss's reference states the spec's own convention, so a target held to
    # another value is not judged by it. Variants not named here keep it whatever they are.
    holds_for: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    def not_applicable(self, ctx: Context) -> str | None:
        for name, values in self.holds_for.items():
            chosen = ctx.spec.following.get(name)
            if chosen is not None and chosen not in values:
                return (f"holds for {name} in {', '.join(map(repr, values))} only; the target"
                        f" follows {name}={chosen!r}")
        return super().not_applicable(ctx)

    @property
    def reads_reference(self) -> bool:  # type: ignore[override]
        return any(not side.on_target and side.reference is None
                   for side in (self.lhs, self.rhs))

    def prepare(self, spec: LossSpec, case: Case) -> Case | None:
        return self.adapt(case) if self.adapt else case

    def check(self, ctx: Context, case: Case) -> float:
        usage = 0.0
        wanted = self.reductions(case) if callable(self.reductions) else self.reductions
        # A restriction names reductions the spec may not have (a loss without a reduction
        # argument): then the relation applies to the spec's one call, never to nothing.
        usable = [r for r in (wanted or ()) if r in ctx.calls] or list(ctx.calls)
        if wanted and not set(wanted) & set(ctx.calls) and set(wanted) & set(ctx.spec.calls):
            raise NotApplicable(f"the target has no reduction {', '.join(map(repr, wanted))}")
        lhs_case, rhs_case = self.lhs.at(ctx, case), self.rhs.at(ctx, case)
        for reduction in usable:
            lhs, lhs_tol = self.lhs.evaluate(ctx, lhs_case, reduction)
            rhs, rhs_tol = self.rhs.evaluate(ctx, rhs_case, reduction)
            # The spec's own error scale for this case bounds what either side may lose.
            allowed = lhs_tol + rhs_tol if self.lhs.on_target and self.rhs.on_target else (
                ctx.allowed(case, reduction)
            )
            if self.up_to_the_spec:
                allowed = allowed + _specs_own_gap(ctx, lhs_case, rhs_case, reduction)
            nan_ok = ctx.spec.expects_nan(case, reduction)
            if np.any(nan_ok) and not (self.lhs.is_the_spec and self.rhs.is_the_spec):
                # Another function has no declared NaN to compare with: where the spec's value
                # is NaN by declaration, a bound or an identity with it says nothing.
                lhs = np.where(nan_ok, 0.0, lhs)
                rhs = np.where(nan_ok, 0.0, rhs)
                nan_ok = False
            symbol = "==" if self.op == "eq" else "<="
            result = ctx.expect(
                lhs, rhs, allowed, case=case, reduction=reduction, op=self.op,
                nan_expected=nan_ok,
                what=f"{self.lhs.label} {symbol} {self.rhs.label} does not hold",
            )
            usage = max(usage, result.usage)
        return usage


def _specs_own_gap(ctx: Context, lhs_case: Case, rhs_case: Case,
                   reduction: str | None) -> np.ndarray:
    """|spec(lhs case) - spec(rhs case)|: how far the relation fails of the spec itself."""
    with np.errstate(invalid="ignore"):
        gap = np.abs(ctx.spec.call_reference(lhs_case, reduction)
                     - ctx.spec.call_reference(rhs_case, reduction))
    return np.nan_to_num(gap, nan=0.0)
