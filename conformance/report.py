"""What a check found: per-property results, failures with reproducers, readable text."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from conformance.case import Case, describe_params, format_case
from conformance.tolerance import Comparison

PASSED, FAILED, ERROR, SKIPPED = "passed", "failed", "error", "skipped"
DEVIATION = "deviation"  # a failure a deviations file accepts (conformance.deviations)
CONFORMS, NONCONFORMING, NO_EVIDENCE = "CONFORMS", "DOES NOT CONFORM", "NO EVIDENCE"


@dataclass(frozen=True)
class Diagnosis:
    """Which of the spec's declared conventions a failing target follows
    (conformance.diagnosis): each convention set as the values that differ from the spec's
    own ({} is the spec as declared)."""

    spec: str
    cases: int  # cases tried: the failing inputs and the drawn ones that applied
    failing: int  # failing inputs among them
    matched: tuple[dict[str, Any], ...]  # sets that hold on every case tried
    on_failing_only: tuple[dict[str, Any], ...]  # ... on the failing inputs, not the drawn
    tried: tuple[dict[str, Any], ...]

    def __str__(self) -> str:
        if self.matched:
            found = " and with ".join(_named(m) for m in self.matched)
            text = (f"matches {self.spec} with {found} on every case tried ({self.cases} cases,"
                    f" the {self.failing} failing among them)")
            first = self.matched[0]
            if first:
                flags = " ".join(f"--convention {k}={v}" for k, v in first.items())
                text += f"; check it so: conventions={first!r} ({flags})"
            return text
        tried = "; ".join(_named(t) for t in self.tried)
        if self.on_failing_only:
            partly = " and with ".join(_named(m) for m in self.on_failing_only)
            return (f"matches {self.spec} with {partly} on the failing input only, not on every"
                    f" drawn case: no declared convention explains it (tried: {tried})")
        return (f"matches none of {self.spec}'s declared conventions on the failing input"
                f" (tried: {tried})")

    def to_dict(self) -> dict[str, Any]:
        return {"text": str(self), "cases": self.cases, "matched": list(self.matched),
                "on_failing_only": list(self.on_failing_only), "tried": list(self.tried)}


def _named(conventions: dict[str, Any]) -> str:
    if not conventions:
        return "its own conventions (as declared)"
    return ", ".join(f"{k}={v!r}" for k, v in conventions.items())


@dataclass
class Failure:
    spec: str
    property: str
    dtype: str
    device: str
    message: str
    case: Case
    reduction: str | None
    reproducer: str
    comparison: Comparison | None = None
    shrunk: bool = True  # False: the first failing input found (--no-shrink), not a minimal one
    shrink_stopped: float | None = None  # the shrink budget (s), where it ran out first
    # The input the target failed on, where the property derived it from `case` (an emptied
    # or invalid form): a deviation's regime is judged on it.
    seen: Case | None = None
    # The declared conventions the target follows instead, where the spec declares any.
    diagnosis: Diagnosis | None = None

    @property
    def input_label(self) -> str:
        if self.case.label and self.case.label.startswith("the input"):
            return self.case.label
        if self.case.label:
            return f"edge case {self.case.label!r}"
        if self.shrunk and self.shrink_stopped is not None:
            return (f"smallest failing input within the {self.shrink_stopped:g} s shrink budget"
                    " (shrinking stopped there)")
        return "minimal (shrunk) input" if self.shrunk else "first failing input (not shrunk)"

    def __str__(self) -> str:
        where = self.input_label
        lines = [
            f"{self.spec} / {self.property} [{self.dtype}, {self.device}]",
            f"  {self.message}",
            f"  parameters: {describe_params(self.case.params)}"
            + (f", reduction={self.reduction!r}" if self.reduction else ""),
        ]
        if self.comparison is not None:
            c = self.comparison
            lines.append(
                f"  worst error: abs {c.worst_abs:.3g}, rel {c.worst_rel:.3g}"
                f" (allowed {c.allowed:.3g})"
            )
        if self.diagnosis is not None:
            lines.append(f"  diagnosis: {self.diagnosis}")
        lines.append(f"  {where}:")
        lines += ["    " + line for line in format_case(self.case, _dtype(self.dtype)).splitlines()]
        lines.append("  reproduce:")
        lines += ["    " + line for line in self.reproducer.splitlines()]
        return "\n".join(lines)


def _dtype(name: str) -> Any:
    import torch

    return getattr(torch, name)


@dataclass
class PropertyResult:
    spec: str
    property: str
    dtype: str
    device: str
    status: str
    examples: int = 0
    seconds: float = 0.0
    usage: float = 0.0  # worst error / allowed over all examples
    failure: Failure | None = None
    # Failures of other kinds the cell met after the first (conformance.cells), not shrunk.
    more_failures: list[Failure] = field(default_factory=list)
    reason: str | None = None
    beyond_range: int = 0  # drawn cases outside the domain in this dtype: not examples
    outside: dict[str, int] = field(default_factory=dict)  # the same, counted by reason
    drawn: int = 0  # cases offered to the property (edge cases, draws, shrinking)
    deviation: str | None = None  # the accepting entry's kind and reason
    deviation_kind: str | None = None  # its kind alone: "convention" or "defect"
    not_applicable: int = 0  # examples the target's library does not support

    @property
    def headroom(self) -> float:
        return math.inf if self.usage == 0 else 1.0 / self.usage

    def verdict(self) -> str:
        if self.status == PASSED:
            return "pass"
        if self.status == FAILED:
            return "FAIL"
        if self.status == DEVIATION:
            return "known deviation"
        return self.status


@dataclass
class Report:
    target: str
    spec: str
    profile: str
    results: list[PropertyResult] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    # The spec's declared variants the target was held to (conformance.variants).
    conventions: dict[str, Any] = field(default_factory=dict)
    plots: list[str] = field(default_factory=list)  # PNG files of its failures (--plot)

    @property
    def verdict(self) -> str:
        """CONFORMS (nothing failed or errored but accepted deviations, and at least one check
        ran on at least one example), DOES NOT CONFORM (something failed or errored), or
        NO EVIDENCE (nothing failed, but no check ran on any example: every case was outside
        the domain or not applicable to the target). No evidence is not a pass."""
        if any(r.status in (FAILED, ERROR) for r in self.results):
            return NONCONFORMING
        if any(r.status in (PASSED, DEVIATION) for r in self.results):
            return CONFORMS
        return NO_EVIDENCE

    @property
    def ok(self) -> bool:
        """The verdict is CONFORMS."""
        return self.verdict == CONFORMS

    def accepted(self, kind: str) -> list[str]:
        """The distinct accepted deviations of `kind` ("convention" or "defect") behind this
        report's known cells: one entry covering four dtypes is one finding."""
        return sorted({r.deviation or "" for r in self.results
                       if r.status == DEVIATION and r.deviation_kind == kind})

    @property
    def finding(self) -> str:
        """The verdict as what was found: "conforms", "conforms up to N documented
        conventions", "N known defects" (with any conventions), "no evidence", or "does not
        conform". A target whose checks pass only because a deviations file accepts its
        failures is never called conforming without saying so."""
        if self.verdict != CONFORMS:
            return self.verdict.lower()
        # A declared variant is a documented convention as much as an accepted deviation is.
        defects = len(self.accepted("defect"))
        conventions = len(self.accepted("convention")) + len(self.conventions)
        documented = f"{conventions} documented convention{'s' * (conventions != 1)}"
        if defects:
            known = f"{defects} known defect{'s' * (defects != 1)}"
            return known + (f" and {documented}" if conventions else "")
        return f"conforms up to {documented}" if conventions else "conforms"

    @property
    def failures(self) -> list[Failure]:
        return [f for r in self.results if r.failure is not None
                for f in (r.failure, *r.more_failures)]

    @property
    def open_failures(self) -> list[Failure]:
        """Failures no deviation accepts: each failed cell's, the first and those of other
        kinds it met after it."""
        return [f for r in self.results if r.failure is not None and r.status == FAILED
                for f in (r.failure, *r.more_failures)]

    @property
    def errors(self) -> list[PropertyResult]:
        return [r for r in self.results if r.status == ERROR]

    def counts(self) -> dict[str, int]:
        out = {PASSED: 0, FAILED: 0, ERROR: 0, SKIPPED: 0, DEVIATION: 0}
        for r in self.results:
            out[r.status] += 1
        return out

    def table(self) -> str:
        header = ("property", "dtype", "device", "examples", "headroom", "verdict")
        rows = [header]
        for r in self.results:
            headroom = "-" if r.status != PASSED else (
                "exact" if r.usage == 0 else f"{r.headroom:.3g}x"
            )
            examples = str(r.examples) + (f" (+{r.beyond_range} outside the domain)"
                                          if r.beyond_range else "") + (
                f" (+{r.not_applicable} n/a)" if r.not_applicable else "")
            rows.append((r.property, r.dtype, r.device, examples, headroom, r.verdict()))
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        return "\n".join(
            "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows
        )

    def __str__(self) -> str:
        c = self.counts()
        verdict = self.verdict
        lines = [
            f"{self.target} vs spec {self.spec!r}{self.following()}: {verdict}"
            + (f" ({self.finding})" if self.finding != verdict.lower() else ""),
            f"  {c[PASSED]} passed, {c[FAILED]} failed, {c[ERROR]} errors, {c[SKIPPED]} skipped"
            + (f", {c[DEVIATION]} known deviations" if c[DEVIATION] else "")
            + f" in {self.seconds:.1f}s (profile {self.profile!r})",
            self.table(),
        ]
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  plot: {p}" for p in self.plots]
        for r in self.results:
            if r.status in (ERROR, SKIPPED) and r.reason:
                lines.append(f"  {r.property} [{r.dtype}, {r.device}] {r.status}: {r.reason}")
            if r.status == DEVIATION:
                lines.append(f"  {r.property} [{r.dtype}, {r.device}] known deviation"
                             f" ({r.deviation})")
        for i, failure in enumerate(self.open_failures, 1):
            lines.append(f"\nFailure {i}: {failure}")
        return "\n".join(lines)

    def following(self) -> str:
        """' following name=value, ...' for a report held to declared variants, else ''."""
        if not self.conventions:
            return ""
        return " following " + ", ".join(f"{k}={v!r}" for k, v in self.conventions.items())

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "spec": self.spec,
            "conventions": dict(self.conventions),
            "profile": self.profile,
            "ok": self.ok,
            "verdict": self.verdict,
            "finding": self.finding,
            "seconds": self.seconds,
            "plots": list(self.plots),
            "results": [
                {
                    "property": r.property, "dtype": r.dtype, "device": r.device,
                    "status": r.status, "examples": r.examples, "usage": r.usage,
                    "reason": r.reason, "beyond_range": r.beyond_range,
                    "outside": r.outside, "drawn": r.drawn,
                    "deviation": r.deviation, "not_applicable": r.not_applicable,
                    "failure": None if r.failure is None else _failure_dict(r.failure),
                    "more_failures": [_failure_dict(f) for f in r.more_failures],
                }
                for r in self.results
            ],
        }


def _failure_dict(failure: Failure) -> dict[str, Any]:
    return {"message": failure.message, "reduction": failure.reduction,
            "reproducer": failure.reproducer, "input": failure.input_label,
            "diagnosis": None if failure.diagnosis is None else failure.diagnosis.to_dict()}
