"""Which declared convention a failing target follows.

Most disagreements between real loss code and a spec are conventions, not bugs: where the
smoothing term goes, how soft targets enter a focal loss. A spec declares those as variants
(conformance.variants). When a property that reads the spec's reference fails, the failing
property is checked again under every combination of the spec's variants, on the failing
input(s) and on a few more drawn cases, and the report names the combinations the target
satisfies on all of them: "matches soft_dice_loss with smoothing='tversky' on every case
tried". A target that follows none of them is told so. The verdict never depends on this.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from conformance.case import Case
from conformance.guard import NotApplicable, OutsideDomain, PropertyFailure, TargetHung
from conformance.properties.base import Context, Property
from conformance.report import Diagnosis

DRAWN = 12  # further drawn cases each combination is tried on, besides the failing inputs
_DRAWN: dict[tuple[str, Any], list[Case]] = {}


def diagnose(ctx: Context, prop: Property, failing: Sequence[Case]) -> Diagnosis | None:
    """The declared convention sets under which `prop` holds of the target on every case
    tried (the failing inputs, then DRAWN more), or None where the spec declares none."""
    spec = ctx.spec
    if not spec.variants or not failing:
        return None
    declared = spec.as_declared()
    key = (spec.name, spec.cases)
    if key not in _DRAWN:  # the same cases for every failing cell of the spec
        _DRAWN[key] = drawn_cases(declared.cases(),
                                  zlib.crc32(f"diagnosis/{spec.name}".encode()), DRAWN)
    drawn = _DRAWN[key]
    now = {v.name: spec.following.get(v.name, v.canonical) for v in spec.variants}
    tried: list[dict[str, Any]] = []
    matched: list[dict[str, Any]] = []
    on_failing_only: list[dict[str, Any]] = []
    examples = 0
    try:
        for conventions in declared.convention_sets():
            if conventions == now:
                continue  # what the target has just failed
            tried.append(conventions)
            variant = Context(declared.following_conventions(conventions), ctx.target,
                              ctx.dtype, ctx.device)
            if not all(_holds(variant, prop, case) is True for case in failing):
                continue
            verdicts = [_holds(variant, prop, case) for case in drawn]
            examples = max(examples, len(failing) + sum(v is not None for v in verdicts))
            (matched if False not in verdicts else on_failing_only).append(conventions)
    except TargetHung:
        return None
    canonical = {v.name: v.canonical for v in spec.variants}
    return Diagnosis(spec=spec.name, cases=examples or len(failing), failing=len(failing),
                     matched=_fewest([_differing(m, canonical) for m in matched]),
                     on_failing_only=_fewest([_differing(m, canonical)
                                              for m in on_failing_only]),
                     tried=tuple(_differing(t, canonical) for t in tried))


def _fewest(sets: list[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    """The sets no smaller one among them is part of: a convention that changes nothing on the
    cases tried (a 0 / 0 score of a class another convention already zeroes) is not named."""
    return tuple(s for s in sets
                 if not any(t != s and t.items() <= s.items() for t in sets))


def attempt(ctx: Context, prop: Property, case: Case
            ) -> tuple[Case, float | PropertyFailure] | None:
    """The property on one drawn case, outside a cell: the rounded case and the worst error
    over the allowed one, or the failure; None where the case is no example (unusable,
    outside the domain, not applicable). TargetHung and the target's own errors propagate."""
    prepared = prop.prepare(ctx.spec, case)
    if prepared is None:
        return None
    rounded = prepared.rounded(ctx.dtype)
    try:
        ctx.admit(rounded)
        if not prop.keeps(ctx.spec, rounded):
            return None
        return rounded, prop.check(ctx, rounded)
    except (OutsideDomain, NotApplicable):
        return None
    except PropertyFailure as failure:
        return rounded, failure


def _holds(ctx: Context, prop: Property, case: Case) -> bool | None:
    """Whether the property holds of the target on `case` (None: no example there)."""
    try:
        found = attempt(ctx, prop, case)
    except TargetHung:
        raise
    except Exception:  # the target raised: the convention does not explain the failure
        return False
    return None if found is None else not isinstance(found[1], PropertyFailure)


def _differing(conventions: dict[str, Any], canonical: dict[str, Any]) -> dict[str, Any]:
    """The values that differ from the spec's own ({} is the spec as declared)."""
    return {k: v for k, v in conventions.items() if canonical[k] != v}


def drawn_cases(cases: st.SearchStrategy[Case], seed: int, n: int) -> list[Case]:
    """n cases drawn from the spec's strategy, the same ones on every run."""
    out: list[Case] = []

    @settings(max_examples=n, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def collect(data: st.DataObject) -> None:
        out.append(data.draw(cases, label="case"))

    hypothesis_seed(seed)(collect)()
    return out[:n]
