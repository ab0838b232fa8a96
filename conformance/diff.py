"""Three-way diff of a loss and its port: where they disagree, which side the reference takes.

A port (torch to JAX, Keras to torch, a NumPy prototype to a training loss) is gated on two
questions, not one: does it compute what its original computes, and where it does not, who is
right? `diff(original, port, spec)` runs both on the same drawn cases, in every dtype and
reduction, and sorts each case where they differ by more than the rule allows (both computed
in the tested dtype: twice the allowed error):

- "the port broke it": the original agrees with the float64 reference, the port does not;
- "the port fixed it": the port agrees with the reference, the original does not;
- "both differ from the spec, and from each other".

Where the two agree with each other but not with the spec, the port has kept the original's
convention: that is agreement, counted as such ("shared with the original"). Name the
original's convention (`conventions=`) to hold both to it. A port passes (`report.ok`) when
it never breaks what the original got right and never parts from both; a fix is reported,
not failed. Each framework's function is bridged as `check` bridges it (conformance.bridges).
Values only: gradients are `check`'s to compare with the reference.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from conformance import bridges, reproducer
from conformance.case import DTYPES, Case, format_case
from conformance.catalog import get_spec
from conformance.diagnosis import drawn_cases
from conformance.guard import (
    GuardedTarget,
    NotApplicable,
    TargetError,
    TargetHung,
    alarms_armed,
    to_numpy,
)
from conformance.properties.base import in_range
from conformance.spec import LossSpec
from conformance.tolerance import compare

BROKE, FIXED, BOTH = "the port broke it", "the port fixed it", "both differ from the spec"
SHOWN = 3  # disagreements printed per kind


@dataclass
class Disagreement:
    kind: str  # BROKE, FIXED or BOTH
    dtype: str
    reduction: str | None
    case: Case
    original: str  # each side's value (or error), and the reference's, as printed
    port: str
    reference: str
    snippet: str  # Python that runs as printed and shows both sides on the case

    def __str__(self) -> str:
        shown = [f"{self.kind} [{self.dtype}, reduction={self.reduction!r}]",
                 f"  original:  {self.original}", f"  port:      {self.port}",
                 f"  reference: {self.reference}", "  input:"]
        shown += ["    " + line for line in format_case(self.case, DTYPES[self.dtype]).splitlines()]
        shown += ["  reproduce:"] + ["    " + line for line in self.snippet.splitlines()]
        return "\n".join(shown)


@dataclass
class DiffReport:
    original: str
    port: str
    spec: str
    conventions: dict[str, Any] = field(default_factory=dict)
    compared: dict[str, int] = field(default_factory=dict)  # dtype -> (case, reduction) pairs
    agreed: int = 0
    shared: int = 0  # agreed with each other, not with the spec: the original's convention
    disagreements: list[Disagreement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    hung: list[str] = field(default_factory=list)  # 'original' / 'port', once per dtype

    def of(self, kind: str) -> list[Disagreement]:
        return [d for d in self.disagreements if d.kind == kind]

    @property
    def ok(self) -> bool:
        """The port never breaks what the original got right, never parts from both, and
        never hangs."""
        return not self.of(BROKE) and not self.of(BOTH) and "port" not in self.hung

    def to_dict(self) -> dict[str, Any]:
        return {"original": self.original, "port": self.port, "spec": self.spec,
                "conventions": self.conventions, "ok": self.ok, "compared": self.compared,
                "agreed": self.agreed, "shared_with_the_original": self.shared,
                "disagreements": {k: len(self.of(k)) for k in (BROKE, FIXED, BOTH)}}

    def __str__(self) -> str:
        total = sum(self.compared.values())
        following = "".join(f", {k}={v!r}" for k, v in self.conventions.items())
        lines = [f"{self.port} (port) vs {self.original} (original), spec {self.spec!r}"
                 f"{following}: {'PORT HOLDS' if self.ok else 'PORT DIFFERS'}",
                 f"  {total} (case, reduction) pairs in "
                 + ", ".join(f"{d} ({n})" for d, n in self.compared.items())
                 + f": {self.agreed} agree ({self.shared} of them shared with the original"
                 " where both differ from the spec)"]
        for kind in (BROKE, FIXED, BOTH):
            found = self.of(kind)
            lines.append(f"  {kind}: {len(found)}")
        lines += [f"  note: {n}" for n in self.notes]
        for kind in (BROKE, BOTH, FIXED):
            for d in self.of(kind)[:SHOWN]:
                lines.append("\n" + str(d))
        return "\n".join(lines)


def diff(original: Callable[..., Any], port: Callable[..., Any], spec: str | LossSpec, *,
         dtypes: Sequence[str] = ("float64", "float32", "float16", "bfloat16"),
         max_examples: int = 60, seed: int | None = None,
         frameworks: tuple[str | None, str | None] = (None, None),
         conventions: Mapping[str, Any] | None = None, timeout: float | None = 10.0,
         paths: tuple[str | None, str | None] = (None, None)) -> DiffReport:
    """Run `original` and `port` on the same drawn cases (the spec's edge cases first, then
    `max_examples` draws, the same ones on every run for a given seed) in each dtype."""
    sides = [bridges.bridged(fn, fw) for fn, fw in zip((original, port), frameworks,
                                                       strict=True)]
    spec = get_spec(spec).following_conventions(dict(conventions or {}))
    names = [reproducer.target_name(fn, path) for fn, path in zip(sides, paths, strict=True)]
    report = DiffReport(names[0], names[1], spec.name, dict(spec.following))
    chosen = seed if seed is not None else zlib.crc32(f"diff/{spec.name}".encode())
    cases = [*spec.edge_cases, *drawn_cases(spec.cases(), chosen, max_examples)]
    guarded = [GuardedTarget(fn, timeout) for fn in sides]
    with alarms_armed():
        for dtype in dtypes:
            report.compared[dtype] = 0
            try:
                for case in cases:
                    _compare(report, spec, guarded, sides, paths, case.rounded(DTYPES[dtype]),
                             dtype)
            except TargetHung:
                side = 0 if guarded[0].hung_on is not None else 1
                report.hung.append(("original", "port")[side])
                report.notes.append(f"the {('original', 'port')[side]} did not return within"
                                    f" {timeout}s in {dtype}: the rest of {dtype} was not"
                                    " compared")
                for target in guarded:
                    target.hung_on = None
    return report


def _value(target: GuardedTarget, case: Case, dtype: str, reduction: str | None) -> Any:
    """The target's value in float64, or the message of what it raised."""
    kwargs = {} if reduction is None else {"reduction": reduction}
    try:
        out, _, _ = target(case, DTYPES[dtype], "cpu", **kwargs)
    except TargetError as exc:
        return exc.message
    return np.asarray(to_numpy(out), dtype=np.float64)


def _compare(report: DiffReport, spec: LossSpec, guarded: list[GuardedTarget],
             sides: list[Callable[..., Any]], paths: tuple[str | None, str | None],
             case: Case, dtype: str) -> None:
    if spec.outside_domain(case, DTYPES[dtype]) is not None:
        return
    for reduction in spec.calls:
        try:
            first, second = (_value(t, case, dtype, reduction) for t in guarded)
        except NotApplicable:
            continue
        report.compared[dtype] += 1
        expected = in_range(spec.call_reference(case, reduction), DTYPES[dtype])
        allowed = spec.tolerance.allowed(spec.scale(case, reduction), DTYPES[dtype],
                                         case.numel())
        nan_ok = spec.expects_nan(case, reduction)
        right = [_agrees(v, expected, allowed, nan_ok) for v in (first, second)]
        if _agrees(second, first, 2 * allowed, _nan_of(first)):
            report.agreed += 1
            report.shared += not right[0]
            continue
        kind = BROKE if right[0] else FIXED if right[1] else BOTH
        snippet = _snippet(sides, paths, case, dtype, reduction)
        report.disagreements.append(Disagreement(
            kind, dtype, reduction, case, _shown(first), _shown(second), _shown(expected),
            snippet))


def _agrees(value: Any, expected: Any, allowed: np.ndarray, nan_ok: Any) -> bool:
    if isinstance(value, str) or isinstance(expected, str):
        return isinstance(value, str) and isinstance(expected, str)  # both raised
    if np.shape(value) != np.shape(expected):
        return False
    return compare(value, expected, allowed, nan_expected=nan_ok).ok


def _nan_of(value: Any) -> Any:
    return False if isinstance(value, str) else np.isnan(value)


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return value
    return np.array2string(np.asarray(value), precision=17, threshold=12)


def _snippet(sides: list[Callable[..., Any]], paths: tuple[str | None, str | None], case: Case,
             dtype: str, reduction: str | None) -> str:
    lines = ["import torch", "import conformance"]
    for name, fn, path in zip(("original", "port"), sides, paths, strict=True):
        lines += reproducer.binding_lines(fn, path, name)
    lines.append(format_case(case, DTYPES[dtype]))
    call = ", ".join(case.inputs) + ", **params" + (
        f", reduction={reduction!r}" if reduction is not None else "")
    lines += [f"print('original', original({call}))", f"print('port', port({call}))"]
    return "\n".join(lines)
