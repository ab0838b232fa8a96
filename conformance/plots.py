"""Pictures of a failure: the target's error against the reference over the input's magnitude.

For each property that failed and compares the target with the reference (values, gradients,
relations with the spec's reference), one PNG: a panel per dtype checked, each drawn case a
point at (largest |input| of the case, error / the rule's allowed error), the allowed band
(ratio <= 1) shaded, failing cases marked, the failing inputs among them. A float32-internal
library sits at 1e8 in the float64 panel, an overflow climbs to the top past some magnitude, an
eps convention drifts with the scale. matplotlib is an optional extra (`pip install -e
".[plot]"`); without it the report says so and nothing else changes.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from conformance.case import DTYPES, Case
from conformance.diagnosis import attempt, drawn_cases
from conformance.guard import GuardedTarget, PropertyFailure, TargetHung, alarms_armed
from conformance.properties.base import Context, Property
from conformance.report import FAILED, Report
from conformance.spec import LossSpec

CASES = 80  # drawn cases per picture, besides the failing inputs
CEILING = 1e12  # where an infinite ratio (NaN, inf, a wrong sign) is drawn


class PlottingUnavailable(RuntimeError):
    """matplotlib is not installed."""


def plot_failures(report: Report, fn: Callable[..., Any], spec: LossSpec,
                  props: Sequence[Property], directory: str | Path,
                  timeout: float | None = 10.0) -> list[Path]:
    """One PNG per failed property of `report` that compares with the reference."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PlottingUnavailable("plots need matplotlib: pip install -e \".[plot]\"") from exc
    by_name = {p.name: p for p in props}
    failed: dict[str, list[Case]] = {}
    for r in report.results:
        if r.status == FAILED and r.failure is not None and r.property in by_name and by_name[
                r.property].reads_reference:
            failed.setdefault(r.property, []).append(r.failure.case)
    if not failed:
        return []
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    dtypes = list(dict.fromkeys(r.dtype for r in report.results))
    device = report.results[0].device
    drawn = drawn_cases(spec.cases(), zlib.crc32(f"plot/{spec.name}".encode()), CASES)
    written = []
    target = GuardedTarget(fn, timeout)
    for name, failing in failed.items():
        prop = by_name[name]
        fig, axes = plt.subplots(1, len(dtypes), figsize=(4.2 * len(dtypes), 3.6),
                                 squeeze=False, sharey=True)
        for ax, dtype in zip(axes[0], dtypes, strict=True):
            ctx = Context(spec, target, DTYPES[dtype], device)
            points = _points(ctx, prop, [*failing, *drawn], len(failing))
            _panel(ax, dtype, points, prop.name)
        fig.suptitle(f"{report.target} vs {spec.name}{report.following()}: {name}",
                     fontsize=9)
        fig.tight_layout()
        path = out_dir / f"{_slug(report.target)}-{spec.name}-{name}-{'-'.join(dtypes)}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def _points(ctx: Context, prop: Property, cases: Sequence[Case],
            failing: int) -> list[tuple[float, float, bool, bool, str]]:
    """(magnitude, error / allowed, failed, a failing input, input name) per usable case."""
    out = []
    with alarms_armed():
        for i, case in enumerate(cases):
            try:
                found = attempt(ctx, prop, case)
            except TargetHung:
                break
            except Exception:  # a case the target cannot take has no point to draw
                continue
            if found is None:
                continue
            rounded, outcome = found
            failed = isinstance(outcome, PropertyFailure)
            ratio = _ratio(outcome) if failed else outcome
            name, magnitude = _magnitude(rounded)
            out.append((magnitude, ratio, failed, i < failing, name))
    return out


def _ratio(failure: PropertyFailure) -> float:
    comparison = failure.details.get("comparison")
    if comparison is not None:
        return float(comparison.usage)
    return float(failure.details.get("ratio", np.inf))


def _magnitude(case: Case) -> tuple[str, float]:
    """The first floating input's name and largest |value| (the logits, the boxes)."""
    for name, value in case.inputs.items():
        if np.asarray(value).dtype.kind == "f" and np.size(value):
            return name, float(np.max(np.abs(value)))
    return "input", 0.0


def _panel(ax: Any, dtype: str, points: list[tuple[float, float, bool, bool, str]],
           prop: str) -> None:
    ax.set_title(dtype, fontsize=9)
    ax.set_xscale("symlog", linthresh=1e-3)
    ax.set_yscale("log")
    ax.axhspan(1e-18, 1.0, color="tab:green", alpha=0.12, label="allowed (ratio <= 1)")
    ax.axhline(1.0, color="tab:green", lw=0.8)
    if not points:
        ax.text(0.5, 0.5, "no usable case", transform=ax.transAxes, ha="center")
        return
    mag = np.array([p[0] for p in points])
    ratio = np.array([p[1] for p in points])
    ratio = np.where(np.isfinite(ratio), ratio, CEILING)
    ratio = np.clip(ratio, 1e-17, CEILING)  # an exact match (0) sits at the floor
    failed = np.array([p[2] for p in points])
    first = np.array([p[3] for p in points])
    ax.scatter(mag[~failed], ratio[~failed], s=10, color="tab:blue", label="holds")
    ax.scatter(mag[failed], ratio[failed], s=14, color="tab:red", marker="x", label="fails")
    if first.any():
        ax.scatter(mag[first], ratio[first], s=60, facecolors="none", edgecolors="black",
                   label="reported input")
    ax.set_xlabel(f"max |{points[0][4]}|", fontsize=8)
    ax.set_ylabel(f"{prop}: error / allowed", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, loc="best")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[-80:]
