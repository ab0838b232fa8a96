"""What changed between a baseline's records and the same corpus recomputed now.

Per record (case, dtype, device, reduction), in order of precedence: a new error or a fixed
one; a changed output dtype or shape; the value newly NaN or infinite (or no longer);
otherwise bitwise identical or drifted, by how many units in the last place of the tested dtype
and in how many elements. The gate is "no worse than before against float64": a record is
worse where some element's error against the float64 reference now exceeds its error before
plus the spec's tolerance rule for that element (so an upgrade that moves numbers towards the
math passes, one that moves them away fails), where the target newly errors, returns another
dtype or shape, or turns NaN or infinite where the reference is finite. Gradients have no
float64 reference here (that is the gradient property's job, and `compare OLD.json NEW.json`
shows its verdicts that changed): their drift is reported, and a gradient is worse only where
it errors, changes shape, or turns NaN or infinite where it was finite. A gate on how far a
gradient moved would fail an upgrade that fixes the value (its gradient moves with it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from conformance.case import DTYPES, Case
from conformance.snapshot import ERROR, OK, OUTSIDE, Record
from conformance.spec import LossSpec

IDENTICAL, DRIFT, NEW_NAN, FIXED_NAN = "identical", "drift", "newly NaN/inf", "no longer NaN/inf"
NEW_ERROR, FIXED_ERROR, CHANGED = "new error", "fixed error", "dtype or shape changed"
UNCHANGED_ERROR, SKIPPED = "error before and now", "skipped"
NOISE_ULPS = 4.0  # drift up to this many ULP is the last bits of a reordered sum, not news


def ulps(a: np.ndarray, b: np.ndarray, dtype: str) -> np.ndarray:
    """|a - b| in units in the last place of `dtype` at the larger magnitude (subnormal
    spacing below the smallest normal); 0 where both are equal or both NaN."""
    info = torch.finfo(DTYPES[dtype])
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with np.errstate(all="ignore"):
        big = np.maximum(np.abs(a), np.abs(b))
        exponent = np.floor(np.log2(np.maximum(big, info.tiny)))
        spacing = np.exp2(exponent) * info.eps
        out = np.abs(a - b) / spacing
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    return np.where(same, 0.0, np.where(np.isfinite(out), out, np.inf))


@dataclass
class Change:
    """One record compared."""

    record: Record  # the baseline's
    now: Record
    kind: str
    worse: bool = False
    better: bool = False  # its error against the reference went down beyond the rule
    max_ulps: float = 0.0  # the value's drift
    elements: int = 0  # the value's elements that differ
    grad_ulps: float = 0.0  # the gradients' drift
    grad_elements: int = 0
    closer: int = 0  # value elements whose error against float64 went down, at all
    further: int = 0  # ... went up

    @property
    def beyond_noise(self) -> bool:
        """Worth a look: anything but identical records and drift of a few ULP."""
        return self.worse or self.better or self.kind not in (
            IDENTICAL, DRIFT, SKIPPED, UNCHANGED_ERROR) or max(
            self.max_ulps, self.grad_ulps) > NOISE_ULPS
    why: str = ""


def _finite_where_reference_is(value: np.ndarray, reference: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(value) | ~np.isfinite(reference)))


def compare_record(spec: LossSpec, case: Case, old: Record, now: Record) -> Change:
    """How `now` differs from `old` (the same case, dtype, device and reduction)."""
    if old.status != OK or now.status != OK:
        if old.status == now.status:
            kind = UNCHANGED_ERROR if old.status == ERROR else SKIPPED
            return Change(old, now, kind, why=now.message if old.status == ERROR else "")
        if now.status == ERROR:
            return Change(old, now, NEW_ERROR, worse=True, why=now.message)
        if old.status == ERROR:
            return Change(old, now, FIXED_ERROR, better=True, why=old.message)
        # outside <-> ok or not applicable: the spec or the adapter changed, not the numbers
        return Change(old, now, SKIPPED, why=f"{old.status} before, {now.status} now")
    if old.out_dtype != now.out_dtype or old.shape != now.shape:
        return Change(old, now, CHANGED, worse=True,
                      why=f"{old.out_dtype} {list(old.shape)} before, {now.out_dtype}"
                          f" {list(now.shape)} now")
    assert old.value is not None and now.value is not None
    reference = now.reference if now.reference is not None else old.reference
    rounded = case.rounded(DTYPES[old.dtype])
    allowed = spec.tolerance.allowed(spec.scale(rounded, old.reduction), DTYPES[old.dtype],
                                     rounded.numel())
    with np.errstate(all="ignore"):
        old_error = np.where(np.isnan(old.value) & np.isnan(reference), 0.0,
                             np.abs(old.value - reference))
        new_error = np.where(np.isnan(now.value) & np.isnan(reference), 0.0,
                             np.abs(now.value - reference))
    old_error = np.where(np.isnan(old_error), np.inf, old_error)
    new_error = np.where(np.isnan(new_error), np.inf, new_error)
    value_ulps = ulps(old.value, now.value, old.dtype)
    change = Change(old, now, IDENTICAL, max_ulps=float(np.max(value_ulps, initial=0.0)),
                    elements=int(np.count_nonzero(value_ulps)))
    old_finite = _finite_where_reference_is(old.value, reference)
    new_finite = _finite_where_reference_is(now.value, reference)
    if old_finite and not new_finite:
        change.kind, change.worse = NEW_NAN, True
        change.why = "the value is NaN or infinite where the float64 reference is finite"
    elif new_finite and not old_finite:
        change.kind, change.better = FIXED_NAN, True
    elif change.elements:
        change.kind = DRIFT
    change.closer = int(np.count_nonzero(new_error < old_error))
    change.further = int(np.count_nonzero(new_error > old_error))
    if np.any(new_error > old_error + allowed):
        change.worse = True
        slack = np.broadcast_to(allowed, new_error.shape)
        worst = int(np.argmax(new_error - old_error - slack))
        change.why = change.why or (
            f"error against float64 {float(new_error.flat[worst]):.3g}, was"
            f" {float(old_error.flat[worst]):.3g} (the rule allows"
            f" {float(slack.flat[worst]):.3g} more)")
    elif np.any(new_error + allowed < old_error):
        change.better = True
    _compare_gradients(change, old, now)
    return change


def _compare_gradients(change: Change, old: Record, now: Record) -> None:
    if old.grad_error != now.grad_error:
        if now.grad_error:
            change.worse, change.kind = True, NEW_ERROR
            change.why = change.why or f"backward: {now.grad_error}"
        return
    for name, before in old.grads.items():
        after = now.grads.get(name)
        if after is None or after.shape != before.shape:
            change.worse, change.kind = True, CHANGED
            change.why = change.why or f"the gradient of {name!r} is missing or reshaped"
            continue
        moved = ulps(before, after, old.dtype)
        if np.count_nonzero(moved):
            change.grad_elements += int(np.count_nonzero(moved))
            change.grad_ulps = max(change.grad_ulps, float(np.max(moved)))
            if change.kind == IDENTICAL:
                change.kind = DRIFT
        if np.all(np.isfinite(before)) and not np.all(np.isfinite(after)):
            change.worse = True
            change.why = change.why or f"the gradient of {name!r} turned NaN or infinite"


@dataclass
class Row:
    """One target x spec x dtype x device x reduction, over the corpus."""

    target: str
    spec: str
    dtype: str
    device: str
    reduction: str | None
    changes: list[Change] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(c.kind == kind for c in self.changes)

    @property
    def worse(self) -> list[Change]:
        return [c for c in self.changes if c.worse]

    @property
    def better(self) -> int:
        return sum(c.better for c in self.changes)

    @property
    def max_ulps(self) -> float:
        return max((c.max_ulps for c in self.changes), default=0.0)

    @property
    def grad_ulps(self) -> float:
        return max((c.grad_ulps for c in self.changes), default=0.0)

    @property
    def compared(self) -> int:
        return sum(c.kind not in (SKIPPED, UNCHANGED_ERROR) for c in self.changes)

    @property
    def verdict(self) -> str:
        if self.worse:
            return "WORSE"
        kinds = {c.kind for c in self.changes} - {SKIPPED, UNCHANGED_ERROR}
        if kinds <= {IDENTICAL}:
            return IDENTICAL if kinds else SKIPPED
        return "better" if self.better else "changed"

    def summary(self) -> str:
        parts = []
        values = [c for c in self.changes if c.kind == DRIFT and c.elements]
        if values:
            elements = sum(c.elements for c in values)
            closer = sum(c.closer for c in values)
            further = sum(c.further for c in values)
            parts.append(f"{len(values)} values drifted (max {self.max_ulps:.3g} ulp,"
                         f" {elements} elements: {closer} closer to float64, {further}"
                         " further)")
        grads = [c for c in self.changes if c.grad_elements]
        if grads:
            elements = sum(c.grad_elements for c in grads)
            parts.append(f"{len(grads)} gradients drifted (max {self.grad_ulps:.3g} ulp,"
                         f" {elements} elements)")
        for kind in (NEW_NAN, FIXED_NAN, NEW_ERROR, FIXED_ERROR, CHANGED):
            if self.count(kind):
                parts.append(f"{self.count(kind)} {kind}")
        if self.better:
            parts.append(f"{self.better} closer to float64")
        if self.worse:
            parts.append(f"{len(self.worse)} worse")
        return ", ".join(parts) or f"{self.count(IDENTICAL)} identical"

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "spec": self.spec, "dtype": self.dtype,
                "device": self.device, "reduction": self.reduction, "verdict": self.verdict,
                "compared": self.compared, "identical": self.count(IDENTICAL),
                "drifted": self.count(DRIFT), "max_ulps": self.max_ulps,
                "elements_changed": sum(c.elements for c in self.changes),
                "elements_closer": sum(c.closer for c in self.changes),
                "elements_further": sum(c.further for c in self.changes),
                "gradient_max_ulps": self.grad_ulps,
                "gradient_elements_changed": sum(c.grad_elements for c in self.changes),
                "newly_nan": self.count(NEW_NAN), "fixed_nan": self.count(FIXED_NAN),
                "new_errors": self.count(NEW_ERROR), "fixed_errors": self.count(FIXED_ERROR),
                "dtype_or_shape_changed": self.count(CHANGED), "closer": self.better,
                "worse": [{"case": c.record.case, "kind": c.kind, "why": c.why}
                          for c in self.worse]}


def rows_of(target: str, spec: str, changes: Sequence[Change]) -> list[Row]:
    rows: dict[tuple[str, str, str | None], Row] = {}
    for change in changes:
        r = change.record
        key = (r.dtype, r.device, r.reduction)
        if key not in rows:
            rows[key] = Row(target, spec, r.dtype, r.device, r.reduction)
        rows[key].changes.append(change)
    return list(rows.values())


def skipped_change(record: Record) -> Change:
    """A record with nothing to compare against (the target or its dtype is gone now)."""
    return Change(record, Record(record.case, record.dtype, record.device, record.reduction,
                                 OUTSIDE, "not recorded now"), SKIPPED)
