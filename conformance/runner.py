"""Runs a spec's properties against a target: `check`, `assert_conforms`, `recheck`."""

from __future__ import annotations

import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import torch
from hypothesis import given
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from conformance import reproducer
from conformance.case import DTYPES, Case, dtype_name
from conformance.guard import (
    GuardedTarget,
    NotApplicable,
    OutsideDomain,
    PropertyFailure,
    TargetHung,
)
from conformance.profiles import hypothesis_settings, profile_name
from conformance.properties.base import Context, Property
from conformance.report import ERROR, FAILED, PASSED, SKIPPED, Failure, PropertyResult, Report
from conformance.spec import LossSpec, get_spec

if TYPE_CHECKING:
    from conformance.deviations import Deviation

DEFAULT_DTYPES = ("float64", "float32", "float16", "bfloat16")


class OptionError(ValueError):
    """An option of check() names something that does not exist (a dtype, a property)."""


class ConformanceError(AssertionError):
    """Raised by assert_conforms; str() is the full report."""

    def __init__(self, report: Report) -> None:
        super().__init__(str(report))
        self.report = report


def _devices(devices: str | Iterable[str]) -> tuple[list[str], list[str]]:
    """Devices to run on, and notes about those that are unavailable."""
    wanted = ["cpu", "cuda"] if devices == "auto" else [devices] if isinstance(
        devices, str) else list(devices)
    usable, notes = [], []
    for device in wanted:
        if device == "cuda" and not torch.cuda.is_available():
            if devices != "auto":
                notes.append("cuda requested but no CUDA device is available: skipped")
            continue
        usable.append(device)
    return usable, notes


@dataclass
class _Progress:
    drawn: int = 0  # cases offered to the property: edge cases and Hypothesis' draws
    examples: int = 0
    outside: Counter[str] = field(default_factory=Counter)  # why: no value is owed there
    unused: int = 0  # cases the property's own preparation cannot use
    not_applicable: int = 0  # cases the target's library does not support
    why_not: str = ""
    usage: float = 0.0
    current: Case | None = None


def _no_evidence(progress: _Progress) -> str:
    """Why no example applied: how many cases were drawn, and what became of them."""
    parts = []
    if progress.not_applicable:
        parts.append(f"{progress.not_applicable} not applicable to the target"
                     f" ({progress.why_not})")
    parts += [f"{n} {why}" for why, n in progress.outside.most_common()]
    if progress.unused:
        parts.append(f"{progress.unused} unusable by this property")
    return f"no evidence: 0 of {progress.drawn} drawn cases applied" + (
        f" ({'; '.join(parts)})" if parts else "")


def _run_property(
    ctx: Context, prop: Property, fn: Callable[..., Any], settings: Any, seed: int | None,
    path: str | None = None, generate: bool = True, shrink: bool = True,
) -> PropertyResult:
    spec = ctx.spec
    progress = _Progress()
    result = PropertyResult(spec.name, prop.name, ctx.dtype_name, ctx.device, PASSED)
    start = time.perf_counter()
    reason = prop.not_applicable(ctx)
    if reason is not None:
        result.status, result.reason = SKIPPED, reason
        return result

    def run_case(case: Case) -> bool:
        """Check one case; False where it is no example (outside the domain, unusable, n/a)."""
        progress.drawn += 1
        prepared = prop.prepare(spec, case)
        if prepared is None:
            progress.unused += 1
            return False
        rounded = prepared.rounded(ctx.dtype)
        progress.current = rounded
        try:
            ctx.admit(rounded)
            if not prop.keeps(spec, rounded):
                raise OutsideDomain(f"outside {prop.name}'s domain once rounded")
            usage = prop.check(ctx, rounded)
        except OutsideDomain as exc:
            progress.outside[exc.reason] += 1
            return False
        except NotApplicable as exc:
            progress.not_applicable += 1
            progress.why_not = str(exc)
            return False
        progress.examples += 1
        progress.usage = max(progress.usage, usage)
        return True

    cases = spec.cases()  # built once: Hypothesis validates a new strategy on every draw

    @settings
    @given(data=st.data())
    def generated(data: st.DataObject) -> None:
        # A case that is no example returns like a passing one: Hypothesis only shrinks toward
        # failing cases, so it never walks onto one outside the domain.
        run_case(data.draw(cases, label="case"))

    if seed is not None:
        generated = hypothesis_seed(seed)(generated)

    try:
        for case in spec.edge_cases:  # named edge cases first, in every profile
            run_case(case)
        if generate:
            generated()
    except PropertyFailure as failure:
        case = progress.current
        assert case is not None
        progress.examples += 1  # the failing example was checked too
        reduction = failure.details.get("reduction")
        result.status = FAILED
        result.failure = Failure(
            spec=spec.name, property=prop.name, dtype=ctx.dtype_name, device=ctx.device,
            message=failure.message, case=case, reduction=reduction,
            comparison=failure.details.get("comparison"),
            reproducer=reproducer.build(fn, spec.name, prop.name, case, ctx.dtype, ctx.device,
                                        reduction, path, layout=prop.layout),
            shrunk=shrink and case.label is None,
        )
    except TargetHung:
        result.status = ERROR
        result.reason = (
            f"the target did not return within {ctx.target.timeout}s; its remaining checks"
            " are skipped"
        )
    except Exception as exc:  # an engine or Hypothesis error must not end the whole run
        result.status = ERROR
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        result.reason = f"the check itself failed: {last}"
    if result.status == PASSED and progress.examples == 0:
        result.status = SKIPPED
        result.reason = _no_evidence(progress)

    result.examples = progress.examples
    result.drawn = progress.drawn
    result.outside = dict(progress.outside)
    result.beyond_range = sum(progress.outside.values())
    result.not_applicable = progress.not_applicable
    result.usage = progress.usage
    result.seconds = time.perf_counter() - start
    return result


def check(
    fn: Callable[..., Any],
    spec: str | LossSpec,
    *,
    dtypes: Iterable[str] = DEFAULT_DTYPES,
    devices: str | Iterable[str] = "auto",
    properties: Iterable[str] | None = None,
    profile: str | None = None,
    max_examples: int | None = None,
    seed: int | None = None,
    timeout: float | None = 10.0,
    target_path: str | None = None,
    shrink: bool = True,
    known: Sequence[Deviation] = (),
) -> Report:
    """Check `fn` against `spec`; never raises for anything the target does.

    dtypes: names from float64, float32, float16, bfloat16. devices: 'auto' (cpu, and cuda when
    present), or a list. properties: names to run (default: every property the spec declares).
    profile: 'ci', 'default' or 'thorough' (or $CONFORMANCE_PROFILE). timeout: seconds per call.
    target_path: 'module:attr' the reproducers import the target by (default: fn's own module).
    max_examples: Hypothesis draws per property (0: the spec's named edge cases only).
    shrink: False reports the first failing input found instead of a minimal one (faster).
    known: accepted deviations (conformance.deviations); a cell one of them covers is not
    shrunk, since only its verdict matters (deviations.apply marks it afterwards).
    """
    spec = get_spec(spec)
    chosen = profile_name(profile)
    # max_examples=0: the spec's named edge cases only, no Hypothesis draws.
    generate = max_examples != 0
    settings = hypothesis_settings(chosen, max_examples or None, shrink)
    quick = hypothesis_settings(chosen, max_examples or None, False)
    report = Report(reproducer.target_name(fn, target_path), spec.name, chosen)
    start = time.perf_counter()

    unknown_dtypes = [d for d in dtypes if d not in DTYPES]
    if unknown_dtypes:
        raise OptionError(f"unknown dtype(s) {unknown_dtypes}; choose from {', '.join(DTYPES)}")
    props = spec.property_list()
    if properties is not None:
        wanted = list(properties)
        missing = sorted(set(wanted) - {p.name for p in props})
        if missing:
            raise OptionError(
                f"spec {spec.name!r} has no property {', '.join(map(repr, missing))};"
                f" it has: {', '.join(p.name for p in props)}"
            )
        props = [p for p in props if p.name in wanted]
    usable, report.notes = _devices(devices)

    target = GuardedTarget(fn, timeout)
    for device in usable:
        for dtype in dtypes:
            ctx = Context(spec, target, DTYPES[dtype], device)
            for prop in props:
                if spec.dtypes is not None and dtype not in spec.dtypes:
                    report.results.append(PropertyResult(
                        spec.name, prop.name, dtype, device, SKIPPED,
                        reason=f"the spec is defined for {', '.join(spec.dtypes)} only"))
                    continue
                if target.hung_on is not None:
                    report.results.append(PropertyResult(
                        spec.name, prop.name, dtype, device, ERROR,
                        reason="skipped: the target hung earlier in this run"))
                    continue
                cell = PropertyResult(spec.name, prop.name, dtype, device, PASSED)
                covered = any(d.covers(report.target, cell) and not d.params for d in known)
                report.results.append(_run_property(
                    ctx, prop, fn, quick if covered else settings, seed, target_path,
                    generate=generate, shrink=shrink and not covered))
    report.seconds = time.perf_counter() - start
    return report


def assert_conforms(fn: Callable[..., Any], spec: str | LossSpec, **options: Any) -> Report:
    """Like `check`, but raises ConformanceError (an AssertionError) unless the target conforms."""
    report = check(fn, spec, **options)
    if not report.ok:
        raise ConformanceError(report)
    return report


def recheck(
    fn: Callable[..., Any],
    spec: str | LossSpec,
    property_name: str,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    *,
    device: str = "cpu",
    verbose: bool = True,
) -> Failure | None:
    """Run one property on exactly these inputs (what a reproducer calls)."""
    spec = get_spec(spec)
    params = dict(params or {})
    params.pop("reduction", None)  # properties visit every reduction themselves
    case = replace(Case.from_tensors(inputs, params), label="the input given to recheck")
    float_inputs = [v for v in inputs.values() if isinstance(v, torch.Tensor)
                    and v.is_floating_point()]
    dtype = float_inputs[0].dtype if float_inputs else torch.float64
    props = {p.name: p for p in spec.property_list()}
    if property_name not in props:
        raise OptionError(f"spec {spec.name!r} has no property {property_name!r}")
    prop = props[property_name]
    ctx = Context(spec, GuardedTarget(fn), dtype, device)
    prepared = prop.prepare(spec, case)
    found: Failure | None = None
    outside: str | None = None
    if prepared is not None:
        try:
            ctx.admit(prepared)
            prop.check(ctx, prepared)
        except OutsideDomain as exc:
            outside = exc.reason
        except PropertyFailure as failure:
            reduction = failure.details.get("reduction")
            found = Failure(
                spec.name, prop.name, dtype_name(dtype), device, failure.message, prepared,
                reduction,
                reproducer.build(fn, spec.name, prop.name, prepared, dtype, device, reduction,
                                 layout=prop.layout),
                failure.details.get("comparison"),
            )
    if verbose:
        print(found if found else f"{spec.name} / {property_name}: outside the spec's domain"
              f" ({outside}): no value is owed here" if outside else
              f"{spec.name} / {property_name}: holds on this input")
    return found
