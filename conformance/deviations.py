"""Known, accepted deviations: failures a team has looked at and decided to live with.

A deviations file (TOML) lists entries, each scoped as narrowly as its author can:

    [[deviation]]
    implementation = "implementations.adapters.torchvision_ops:box_iou"  # fnmatch patterns
    spec = "box_iou"                        # spec and property: one pattern or a list (all three)
    property = "output_dtype"
    dtypes = ["float16", "bfloat16"]        # optional: every dtype when left out
    devices = ["cpu"]                       # optional
    params = { label_smoothing = 0.1 }      # optional: the failing case must have these
    omitted = ["smooth"]                    # optional: ... and leave these out of the call,
                                            # so the library's own defaults apply
    when = "every_target_ignored"           # optional: a regime the spec declares
                                            # (LossSpec.regimes) the failing case is in
    kind = "convention"                     # "convention" (a documented choice) or "defect"
    reason = "torchvision upcasts half inputs to float32 and returns float32"

A failure an entry covers is reported as a known deviation, not as nonconformance. A cell
reports up to three failures of different kinds (conformance.cells): it is a known deviation
only when entries explain every one of them; the failures no entry explains stay open, so an
entry scoped to a regime (`params`, `omitted`, `when`) no longer hides another defect in its
cell. An exact entry (no pattern, no parameters) whose cell ran and passed is an unexpected
pass (the deviation is gone: drop the entry); an entry whose scope never ran matched nothing.
Both are reported, so the file cannot rot silently.
"""

from __future__ import annotations

import fnmatch
import inspect
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.report import DEVIATION, FAILED, PASSED, Failure, PropertyResult, Report

KINDS = ("convention", "defect")
_KEYS = {"implementation", "spec", "property", "dtypes", "devices", "params", "omitted", "when",
         "kind", "reason"}


class DeviationFileError(ValueError):
    """The deviations file is malformed; the message names the entry and the problem."""


@dataclass(frozen=True)
class Deviation:
    implementation: str
    specs: tuple[str, ...]  # the file's `spec`: one pattern or a list of them
    properties: tuple[str, ...]  # the file's `property`: likewise
    kind: str
    reason: str
    dtypes: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    # Parameters the failing case leaves out of the call: the target's default applies there.
    omitted: tuple[str, ...] = ()
    when: str | None = None  # a regime of the spec (LossSpec.regimes)

    def scope(self) -> str:
        parts = [self.implementation, ", ".join(self.specs), ", ".join(self.properties)]
        if self.dtypes:
            parts.append("/".join(self.dtypes))
        if self.devices:
            parts.append("/".join(self.devices))
        if self.params:
            parts.append(", ".join(f"{k}={v!r}" for k, v in self.params.items()))
        if self.omitted:
            parts.append(f"{', '.join(self.omitted)} omitted")
        if self.when:
            parts.append(f"when {self.when}")
        return " | ".join(parts)

    def exact(self) -> bool:
        """Names one cell per dtype: no pattern, no parameters. Only such an entry that passes
        is an unexpected pass; a pattern covers cells of which some pass by design."""
        names = (self.implementation, *self.specs, *self.properties)
        return (not self.params and not self.omitted and len(self.specs) == 1
                and len(self.properties) == 1
                and not any(c in n for n in names for c in "*?["))

    def covers(self, target: str, result: PropertyResult) -> bool:
        """Whether the entry's scope includes this result (whatever its verdict)."""
        return (
            # Reports name targets "module.attr"; files may write "module:attr".
            fnmatch.fnmatchcase(target.replace(":", "."), self.implementation.replace(":", "."))
            and any(fnmatch.fnmatchcase(result.spec, p) for p in self.specs)
            and any(fnmatch.fnmatchcase(result.property, p) for p in self.properties)
            and (not self.dtypes or result.dtype in self.dtypes)
            and (not self.devices or result.device in self.devices)
        )

    def explains(self, target: str, result: PropertyResult,
                 failure: Failure | None = None) -> bool:
        """Whether the entry accounts for this failure of the result (its first by default),
        parameters and regime included."""
        if result.status != FAILED or not self.covers(target, result):
            return False
        failure = failure or result.failure
        if failure is None:
            return not (self.params or self.omitted or self.when)
        drawn = failure.case.params
        if not all(k in drawn and _same(drawn[k], v) for k, v in self.params.items()):
            return False
        if any(k in drawn for k in self.omitted):
            return False
        return self.when is None or _in_regime(result.spec, self.when, failure)


def _in_regime(spec_name: str, regime: str, failure: Failure) -> bool:
    from conformance.catalog import get_spec

    judge = get_spec(spec_name).regimes[regime]
    case = failure.seen or failure.case
    if len(inspect.signature(judge).parameters) > 1:  # a regime of the dtype too
        return bool(judge(case, failure.dtype))
    return bool(judge(case))


def _same(drawn: Any, wanted: Any) -> bool:
    try:
        return math.isclose(float(drawn), float(wanted), rel_tol=1e-12, abs_tol=0.0)
    except (TypeError, ValueError):
        return drawn == wanted


def _patterns(value: Any) -> tuple[str, ...]:
    return tuple(map(str, value)) if isinstance(value, list) else (str(value),)


def _entry(raw: Mapping[str, Any], where: str) -> Deviation:
    unknown = set(raw) - _KEYS
    if unknown:
        raise DeviationFileError(f"{where}: unknown key(s) {sorted(unknown)}")
    missing = [k for k in ("implementation", "spec", "property", "kind", "reason")
               if not raw.get(k)]
    if missing:
        raise DeviationFileError(f"{where}: missing {', '.join(missing)}")
    if raw["kind"] not in KINDS:
        raise DeviationFileError(f"{where}: kind must be one of {KINDS}, not {raw['kind']!r}")
    return Deviation(
        implementation=str(raw["implementation"]), specs=_patterns(raw["spec"]),
        properties=_patterns(raw["property"]), kind=str(raw["kind"]), reason=str(raw["reason"]),
        dtypes=tuple(raw.get("dtypes", ())), devices=tuple(raw.get("devices", ())),
        params=dict(raw.get("params", {})), omitted=tuple(map(str, raw.get("omitted", ()))),
        when=_regime(raw.get("when"), raw["spec"], where),
    )


def _regime(when: Any, specs: Any, where: str) -> str | None:
    """`when`, checked: every spec the entry names declares that regime."""
    if when is None:
        return None
    from conformance.catalog import all_specs

    named = [s for s in all_specs() if any(fnmatch.fnmatchcase(s.name, p)
                                           for p in _patterns(specs))]
    lacking = [s.name for s in named if str(when) not in s.regimes]
    if not named or lacking:
        raise DeviationFileError(f"{where}: when = {when!r} is not a regime of"
                                 f" {', '.join(lacking) or 'any spec it names'}")
    return str(when)


def load(path: str | Path) -> list[Deviation]:
    """Read a deviations file; a malformed one raises DeviationFileError naming the entry."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise DeviationFileError(f"cannot read deviations file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise DeviationFileError(f"{path} is not valid TOML: {exc}") from exc
    entries = data.get("deviation", [])
    return [_entry(raw, f"{path}: deviation #{i + 1}") for i, raw in enumerate(entries)]


BUILTIN_FILE = Path(__file__).resolve().parent.parent / "implementations" / "deviations.toml"


def builtin() -> list[Deviation]:
    """The deviations of the implementations this project ships or adapts."""
    return load(BUILTIN_FILE) if BUILTIN_FILE.exists() else []


@dataclass
class Outcome:
    """What applying a deviations file to a run found."""

    known: list[tuple[Deviation, PropertyResult, str]] = field(default_factory=list)  # a cell each
    # Every entry that explained a failure of an accepted cell (a cell may need several: one
    # for its first failure, one for another kind).
    explaining: list[Deviation] = field(default_factory=list)
    unexpected_passes: list[tuple[Deviation, PropertyResult, str]] = field(default_factory=list)
    unmatched: list[Deviation] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        for dev, res, target in self.unexpected_passes:
            out.append(f"unexpected pass: {target} {res.spec}/{res.property} [{res.dtype},"
                       f" {res.device}] conforms, but the deviations file expects a failure"
                       f" ({dev.reason}); drop or narrow the entry")
        for dev in self.unmatched:
            out.append(f"deviation entry matched nothing in this run: {dev.scope()}")
        return out


def _explain(target: str, result: PropertyResult, entries: list[Deviation], outcome: Outcome,
             used: set[int]) -> None:
    """Accept the failed cell where entries explain each of its failures; else leave open the
    failures none explains (the first of them leading)."""
    explained: list[tuple[int, Deviation]] = []
    open_: list[Failure] = []
    for failure in (result.failure, *result.more_failures):
        found = next(((i, d) for i, d in enumerate(entries)
                      if d.explains(target, result, failure)), None)
        if found is None:
            open_.append(failure)
        else:
            explained.append(found)
    if not explained:
        return
    used.update(i for i, _ in explained)
    if open_:
        result.failure, result.more_failures = open_[0], open_[1:]
        return
    dev = explained[0][1]
    result.status = DEVIATION
    result.deviation = f"{dev.kind}: {dev.reason}"
    result.deviation_kind = dev.kind
    outcome.known.append((dev, result, target))
    outcome.explaining.extend(d for _, d in explained)


def apply(reports: Iterable[Report], entries: list[Deviation],
          complete: bool = True) -> Outcome:
    """Mark failures the entries explain as known deviations (in place) and collect the rest.

    complete: the run covered every spec and dtype the entries could name, so an entry that
    matched nothing is worth reporting (a partial run, `--spec x`, leaves others unmatched).
    """
    outcome = Outcome()
    used: set[int] = set()
    for report in reports:
        for result in report.results:
            if result.status == FAILED and result.failure is not None:
                _explain(report.target, result, entries, outcome, used)
            for i, dev in enumerate(entries):
                if dev.covers(report.target, result):
                    used.add(i)
                    if result.status == PASSED and dev.exact():
                        outcome.unexpected_passes.append((dev, result, report.target))
    if complete:
        outcome.unmatched = [d for i, d in enumerate(entries) if i not in used]
    return outcome
