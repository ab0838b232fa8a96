"""The property cells of one (target, spec, device, dtype), checked on shared draws.

Each property is a cell with its own verdict, examples and failure. Drawing a case and
Hypothesis' own work per example cost more than checking most properties on it, so the cells of
one dtype share their draws: one Hypothesis run, without shrinking, offers each drawn case to
every cell still passing, and a cell that fails stops there, keeping its failing case. Then each
failed cell gets a Hypothesis run of its own with the same seed, checking only its property: it
meets the same cases in the same order, fails on the same one and shrinks it, toward a minimal
input that fails that property (never onto another property's failure). Should it not meet the
failure again, the failing input is reported as found, marked "not shrunk". The verdict never
depends on the second run.
"""

from __future__ import annotations

import contextlib
import random
import re
import time
import traceback
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from conformance import diagnosis, reproducer
from conformance.case import Case
from conformance.catalog import spec_path
from conformance.guard import (
    NotApplicable,
    OutsideDomain,
    PropertyFailure,
    TargetHung,
    alarms_armed,
)
from conformance.properties.base import Context, Property
from conformance.report import ERROR, FAILED, PASSED, SKIPPED, Failure, PropertyResult


@dataclass
class Cell:
    """One property in one dtype: what it has seen so far."""

    prop: Property
    shrink: bool  # whether a failure found by generation gets its own shrinking run
    drawn: int = 0  # cases offered: edge cases and Hypothesis' draws
    examples: int = 0
    outside: Counter[str] = field(default_factory=Counter)  # why: no value is owed there
    unused: int = 0  # cases the property's own preparation cannot use
    not_applicable: int = 0  # cases the target's library does not support
    why_not: str = ""
    usage: float = 0.0
    seconds: float = 0.0
    current: Case | None = None  # the rounded case being checked
    failure: PropertyFailure | None = None
    failing: Case | None = None
    # Failures of other kinds met after the first (a different message or reduction): one
    # counterexample per cell would hide every other defect in it.
    more: list[tuple[PropertyFailure, Case]] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)
    since_failure: int = 0  # cases offered after the first failure
    shrunk: bool = False
    shrink_stopped: float | None = None  # the budget, where it ran out before the shrinker
    error: str | None = None

    @property
    def done(self) -> bool:
        """Errored, or failed and done looking for failures of other kinds."""
        if self.error is not None:
            return True
        return self.failure is not None and (
            len(self.kinds) >= MAX_KINDS or self.since_failure >= FURTHER_CASES)

    def offer(self, ctx: Context, case: Case) -> None:
        """Check one case; raises PropertyFailure. A case that is no example (outside the
        domain, unusable, not applicable) returns like a passing one."""
        start = time.perf_counter()
        try:
            self._check(ctx, case)
        finally:
            self.seconds += time.perf_counter() - start

    def _check(self, ctx: Context, case: Case) -> None:
        spec = ctx.spec
        self.drawn += 1
        prepared = self.prop.prepare(spec, case)
        if prepared is None:
            self.unused += 1
            return
        rounded = prepared.rounded(ctx.dtype)
        self.current = rounded
        try:
            ctx.admit(rounded)
            if not self.prop.keeps(spec, rounded):
                raise OutsideDomain(f"outside {self.prop.name}'s domain once rounded")
            usage = self.prop.check(ctx, rounded)
        except OutsideDomain as exc:
            self.outside[exc.reason] += 1
            return
        except NotApplicable as exc:
            self.not_applicable += 1
            self.why_not = str(exc)
            return
        self.examples += 1
        self.usage = max(self.usage, usage)

    def settle(self, ctx: Context, case: Case) -> None:
        """Offer a case and record how the cell ends on it (TargetHung propagates)."""
        if self.failure is not None:
            self.since_failure += 1
        try:
            self.offer(ctx, case)
        except PropertyFailure as failure:
            self.examples += 1  # the failing example was checked too
            kind = failure_kind(failure)
            if self.failure is None:
                self.failure, self.failing = failure, self.current
            elif kind not in self.kinds and self.current is not None:
                self.more.append((failure, self.current))
            self.kinds.add(kind)
        except TargetHung:
            self.error = (f"the target did not return within {ctx.target.timeout}s; its"
                          " remaining checks are skipped")
            raise
        except Exception as exc:  # an engine error must not end the other cells
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            self.error = f"the check itself failed: {last}"

    def no_evidence(self) -> str:
        """Why no example applied: how many cases were drawn, and what became of them."""
        parts = []
        if self.not_applicable:
            parts.append(f"{self.not_applicable} not applicable to the target ({self.why_not})")
        parts += [f"{n} {why}" for why, n in self.outside.most_common()]
        if self.unused:
            parts.append(f"{self.unused} unusable by this property")
        return f"no evidence: 0 of {self.drawn} drawn cases applied" + (
            f" ({'; '.join(parts)})" if parts else "")


MAX_KINDS = 3  # failures of distinct kinds a cell reports
FURTHER_CASES = 50  # cases a failed cell still checks, looking for another kind


def failure_kind(failure: PropertyFailure) -> str:
    """What a failure is, without its numbers: the message with every number (and the input
    printed in it) replaced, and the reduction."""
    text = re.sub(r"\[[^\]]*\]", "[]", failure.message)
    text = re.sub(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|nan|inf", "#", text)
    return f"{failure.details.get('reduction')!r}: {text[:120]}"


class _AllDone(Exception):
    """Every cell has failed or errored: nothing left for generation to check."""


def group_seed(ctx: Context, settings: Any, seed: int | None) -> int:
    """The seed both runs share: the caller's; under a derandomized profile one fixed by the
    spec, dtype and device (the same on every run); else a fresh random one."""
    if seed is not None:
        return seed
    if settings.derandomize:
        return zlib.crc32(f"{ctx.spec.name}/{ctx.dtype_name}/{ctx.device}".encode())
    return random.SystemRandom().getrandbits(64)


def run_cells(ctx: Context, cells: Sequence[Cell], *, generating: Any, shrinking: Any,
              seed: int | None, generate: bool = True, shrink_budget: float | None = None) -> None:
    """Edge cases, then shared generation, then a shrinking run per failed cell.

    generating: Hypothesis settings without the shrink phase; shrinking: with it.
    shrink_budget: seconds each failed cell may spend shrinking (None: no limit)."""
    spec = ctx.spec
    cases = spec.cases()  # built once: Hypothesis validates a new strategy on every draw
    chosen = group_seed(ctx, generating, seed)

    def live() -> list[Cell]:
        return [c for c in cells if not c.done]

    @given(data=st.data())
    def generated(data: st.DataObject) -> None:
        case = data.draw(cases, label="case")
        for cell in live():
            cell.settle(ctx, case)
        if not live():
            raise _AllDone

    # One signal handler for every call of the run: each call only sets its timer.
    with alarms_armed():
        try:
            for case in spec.edge_cases:  # named edge cases first, in every profile
                for cell in live():
                    cell.settle(ctx, case)
            if generate and live():
                with contextlib.suppress(_AllDone):
                    hypothesis_seed(chosen)(generating(generated))()
            for cell in cells:
                if cell.failure is not None and cell.failing is not None and (
                        cell.failing.label is None and cell.shrink):
                    _shrink(ctx, cell, cases, shrinking, chosen, shrink_budget)
        except TargetHung:
            for cell in live():
                cell.error = "skipped: the target hung earlier in this run"
        except Exception as exc:  # a Hypothesis error must not end the whole run
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            for cell in live():
                cell.error = f"the check itself failed: {last}"


def _shrink(ctx: Context, cell: Cell, cases: st.SearchStrategy[Case], shrinking: Any,
            chosen: int, budget: float | None) -> None:
    """Replay generation for this cell alone and let Hypothesis shrink its failure, for at
    most `budget` seconds: then every further candidate passes, so the shrinker stops, and the
    smallest failing input it reached stands (Hypothesis only ever accepts a smaller one)."""
    alone = Cell(cell.prop, shrink=True)
    start = time.perf_counter()
    deadline = start + budget if budget is not None else float("inf")
    smallest: list[tuple[PropertyFailure, Case]] = []
    stopped: list[float] = []

    @given(data=st.data())
    def replay(data: st.DataObject) -> None:
        case = data.draw(cases, label="case")
        if time.perf_counter() > deadline:
            stopped[:] = [budget or 0.0]
            return
        try:
            alone.offer(ctx, case)
        except PropertyFailure as failure:
            if alone.current is not None:
                smallest[:] = [(failure, alone.current)]
            raise

    with contextlib.suppress(Exception):  # the failure found stands: it is a verdict already
        hypothesis_seed(chosen)(shrinking(replay))()
    if smallest:
        (cell.failure, cell.failing), cell.shrunk = smallest[0], True
        cell.shrink_stopped = stopped[0] if stopped else None
    cell.seconds += time.perf_counter() - start


def result_of(ctx: Context, cell: Cell, fn: Callable[..., Any], path: str | None,
              diagnose: Callable[[PropertyResult], bool] | None = None) -> PropertyResult:
    """The cell as a report row, with a reproducer for its failure, and the declared
    conventions the target follows instead (conformance.diagnosis) where `diagnose` says the
    failed row is worth it (not one an accepted deviation explains)."""
    spec = ctx.spec
    result = PropertyResult(spec.name, cell.prop.name, ctx.dtype_name, ctx.device, PASSED,
                            examples=cell.examples, seconds=cell.seconds, usage=cell.usage,
                            beyond_range=sum(cell.outside.values()), outside=dict(cell.outside),
                            drawn=cell.drawn)
    result.not_applicable = cell.not_applicable
    def reported(failure: PropertyFailure, case: Case, shrunk: bool) -> Failure:
        reduction = failure.details.get("reduction")
        return Failure(
            spec=spec.name, property=cell.prop.name, dtype=ctx.dtype_name, device=ctx.device,
            message=failure.message, case=case, reduction=reduction,
            comparison=failure.details.get("comparison"),
            reproducer=reproducer.build(fn, spec_path(spec), cell.prop.name, case, ctx.dtype,
                                        ctx.device, reduction, path, layout=cell.prop.layout,
                                        conventions=spec.following),
            shrunk=shrunk,
            shrink_stopped=cell.shrink_stopped if shrunk else None,
            seen=failure.details.get("seen"),
        )

    if cell.failure is not None and cell.failing is not None:
        result.status = FAILED
        result.failure = reported(cell.failure, cell.failing, cell.shrunk)
        if cell.prop.reads_reference and diagnose is not None and diagnose(result):
            failing = [cell.failing, *(case for _, case in cell.more)]
            result.failure.diagnosis = diagnosis.diagnose(ctx, cell.prop, failing)
        # Met after the first and reported as found: shrinking each would cost a run apiece.
        result.more_failures = [reported(f, c, c.label is not None) for f, c in cell.more]
    elif cell.error is not None:
        result.status, result.reason = ERROR, cell.error
    elif cell.examples == 0:
        result.status, result.reason = SKIPPED, cell.no_evidence()
    return result
