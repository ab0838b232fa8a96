"""Runs a spec's properties against a target: `check`, `assert_conforms`, `recheck`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from conformance import bridges, plots, reproducer, variants
from conformance.case import DTYPES, Case, dtype_name
from conformance.catalog import get_spec, spec_path
from conformance.cells import Cell, result_of, run_cells
from conformance.guard import GuardedTarget, OutsideDomain, PropertyFailure
from conformance.loading import missing_requirements
from conformance.profiles import hypothesis_settings, profile_name
from conformance.properties.base import Context, Property
from conformance.properties.registry import properties_of
from conformance.report import ERROR, PASSED, SKIPPED, Failure, PropertyResult, Report
from conformance.spec import LossSpec

if TYPE_CHECKING:
    from conformance.deviations import Deviation

DEFAULT_DTYPES = tuple(DTYPES)


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


def select_properties(spec: LossSpec, properties: Iterable[str] | None) -> list[Property]:
    """The spec's properties named (all when None), in the spec's order."""
    props = properties_of(spec)
    if properties is None:
        return props
    wanted = list(properties)
    missing = sorted(set(wanted) - {p.name for p in props})
    if missing:
        raise OptionError(
            f"spec {spec.name!r} has no property {', '.join(map(repr, missing))};"
            f" it has: {', '.join(p.name for p in props)}"
        )
    return [p for p in props if p.name in wanted]


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
    threads: int | None = 1,
    shrink_budget: float | None = 10.0,
    conventions: Mapping[str, Any] | None = None,
    plot: str | Path | None = None,
    framework: str | None = None,
) -> Report:
    """Check `fn` against `spec`; never raises for anything the target does.

    dtypes: names from float64, float32, float16, bfloat16. devices: 'auto' (cpu, and cuda when
    present), or a list. properties: names to run (default: every property the spec declares).
    profile: 'ci', 'default' or 'thorough' (or $CONFORMANCE_PROFILE). timeout: seconds per call.
    target_path: 'module:attr' the reproducers import the target by (default: fn's own module).
    max_examples: Hypothesis draws per property (0: the spec's named edge cases only).
    shrink: False reports the first failing input found instead of a minimal one (faster).
    shrink_budget: seconds a failed cell may spend shrinking (None: until minimal); past it,
    the smallest failing input reached so far is reported, marked as such.
    known: accepted deviations (conformance.deviations); a cell one of them covers is not
    shrunk, since only its verdict matters (deviations.apply marks it afterwards).
    threads: torch's intra-op threads while checking (restored afterwards). One by default:
    the inputs are tiny, and waking a thread pool costs more than it saves (parallel runs use
    processes: `run -n`). None leaves torch's setting alone.
    conventions: the spec's declared variants the target follows (`show SPEC` lists them),
    added to those the target declares itself (fn.conformance_conventions); every property
    then holds it to that variant, and the report names them.
    plot: a folder for a PNG per failed property that compares with the reference: its error
    over the input's magnitude, a panel per dtype (conformance.plots; needs matplotlib).
    framework: 'torch', 'numpy', 'jax' or 'keras' (conformance.bridges); None tells it from
    fn. A NumPy target has values only: its gradient checks are not applicable.
    """
    try:
        fn = bridges.bridged(fn, framework)
    except bridges.FrameworkError as exc:
        raise OptionError(str(exc)) from exc
    spec = get_spec(spec).following_conventions(
        {**variants.declared_by(fn), **(conventions or {})})
    chosen = profile_name(profile)
    report = Report(reproducer.target_name(fn, target_path), spec.name, chosen,
                    conventions=dict(spec.following))
    plan = _Plan(
        generating=hypothesis_settings(chosen, max_examples or None, False),
        shrinking=hypothesis_settings(chosen, max_examples or None, shrink),
        seed=seed, generate=max_examples != 0,  # 0: the spec's named edge cases only
        shrink=shrink, shrink_budget=shrink_budget, known=tuple(known), fn=fn,
        target_name=report.target, path=target_path)
    start = time.perf_counter()

    unknown_dtypes = [d for d in dtypes if d not in DTYPES]
    if unknown_dtypes:
        raise OptionError(f"unknown dtype(s) {unknown_dtypes}; choose from {', '.join(DTYPES)}")
    props = select_properties(spec, properties)
    usable, report.notes = _devices(devices)

    missing = missing_requirements(fn)
    if missing:  # an adapter whose library is absent: nothing to check, nothing failed
        why = f"not installed: {', '.join(missing)}"
        report.results = [PropertyResult(spec.name, prop.name, dtype, device, SKIPPED, reason=why)
                          for device in usable for dtype in dtypes for prop in props]
        return report
    target = GuardedTarget(fn, timeout)
    with _intra_op_threads(threads):
        for device in usable:
            for dtype in dtypes:
                report.results += _run_dtype(
                    Context(spec, target, DTYPES[dtype], device), props, plan)
        if plot is not None:
            try:
                report.plots = [str(p) for p in plots.plot_failures(
                    report, fn, spec, props, plot, timeout)]
            except plots.PlottingUnavailable as exc:
                report.notes.append(str(exc))
    report.seconds = time.perf_counter() - start
    return report


@dataclass(frozen=True)
class _Plan:
    """The options of one check() that each dtype's cells need."""

    generating: Any  # Hypothesis settings without shrinking
    shrinking: Any  # ... and with it
    seed: int | None
    generate: bool
    shrink: bool
    shrink_budget: float | None
    known: tuple[Deviation, ...]
    fn: Callable[..., Any]
    target_name: str
    path: str | None


def _run_dtype(ctx: Context, props: list[Property], plan: _Plan) -> list[PropertyResult]:
    """The rows of one (device, dtype): skipped cells, and the others checked together."""
    spec, dtype = ctx.spec, ctx.dtype_name
    rows: dict[str, PropertyResult] = {}
    cells: list[Cell] = []
    for prop in props:
        if spec.dtypes is not None and dtype not in spec.dtypes:
            rows[prop.name] = PropertyResult(
                spec.name, prop.name, dtype, ctx.device, SKIPPED,
                reason=f"the spec is defined for {', '.join(spec.dtypes)} only")
        elif ctx.target.hung_on is not None:
            rows[prop.name] = PropertyResult(
                spec.name, prop.name, dtype, ctx.device, ERROR,
                reason="skipped: the target hung earlier in this run")
        elif (why := prop.not_applicable(ctx)) is not None:
            rows[prop.name] = PropertyResult(spec.name, prop.name, dtype, ctx.device, SKIPPED,
                                             reason=why)
        else:
            # A cell an accepted deviation covers is not shrunk: only its verdict matters
            # (deviations.apply marks it afterwards).
            row = PropertyResult(spec.name, prop.name, dtype, ctx.device, PASSED)
            covered = any(d.covers(plan.target_name, row) and not (d.params or d.omitted)
                          for d in plan.known)
            cells.append(Cell(prop, shrink=plan.shrink and not covered))
    run_cells(ctx, cells, generating=plan.generating, shrinking=plan.shrinking, seed=plan.seed,
              generate=plan.generate, shrink_budget=plan.shrink_budget)
    def unexplained(row: PropertyResult) -> bool:
        """Worth a diagnosis: no accepted deviation explains the failure already."""
        return not any(d.explains(plan.target_name, row) for d in plan.known)

    for cell in cells:
        rows[cell.prop.name] = result_of(ctx, cell, plan.fn, plan.path, diagnose=unexplained)
    return [rows[prop.name] for prop in props]


@contextmanager
def _intra_op_threads(threads: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if threads is not None and threads != before:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


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
    conventions: Mapping[str, Any] | None = None,
    framework: str | None = None,
) -> Failure | None:
    """Run one property on exactly these inputs (what a reproducer calls), against the spec
    or the variant of it that `conventions` name; `framework` as `check` takes it."""
    fn = bridges.bridged(fn, framework)
    spec = get_spec(spec).following_conventions(
        {**variants.declared_by(fn), **(conventions or {})})
    params = dict(params or {})
    params.pop("reduction", None)  # properties visit every reduction themselves
    case = replace(Case.from_tensors(inputs, params), label="the input given to recheck")
    float_inputs = [v for v in inputs.values() if isinstance(v, torch.Tensor)
                    and v.is_floating_point()]
    dtype = float_inputs[0].dtype if float_inputs else torch.float64
    props = {p.name: p for p in properties_of(spec)}
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
                reproducer.build(fn, spec_path(spec), prop.name, prepared, dtype, device, reduction,
                                 layout=prop.layout, conventions=spec.following),
                failure.details.get("comparison"), seen=failure.details.get("seen"),
            )
    if verbose:
        print(found if found else f"{spec.name} / {property_name}: outside the spec's domain"
              f" ({outside}): no value is owed here" if outside else
              f"{spec.name} / {property_name}: holds on this input")
    return found
