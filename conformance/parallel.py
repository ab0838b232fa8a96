"""Checks spread over worker processes (`python -m conformance run -n auto`, `check -n 2`).

A check splits into cells (device x dtype x property) that share nothing, so a unit of work is
one target on one spec in one dtype (`run`) or one property in one dtype (`check`). Each worker
imports the target by its path, runs `check` on its unit, and sends the report back; the units'
reports are merged in the order a sequential run would have produced, so the verdicts, the
tables and the JSON are the same as with one process. Processes, not threads: the engine is
Python, and each worker keeps torch at one intra-op thread.

Beyond one machine, run the matrix as a pytest session instead (one test per cell,
`pytest --conformance-matrix`): pytest-xdist and CI sharding spread that.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from conformance.loading import LoadError, load_attribute
from conformance.report import Report


@dataclass(frozen=True)
class Unit:
    """One piece of a run: `check(target, spec, dtypes=[dtype], properties=..., **options)`."""

    order: int  # where its results go in the merged report
    target: str  # import path, loaded in the worker
    spec: str
    dtype: str
    properties: tuple[str, ...] | None
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def workers(text: str) -> int:
    """'auto' (the CPUs this process may use) or a positive count."""
    if text == "auto":
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return max(1, os.cpu_count() or 1)
    count = int(text)
    if count < 1:
        raise ValueError(f"workers must be 'auto' or at least 1, got {text!r}")
    return count


def _run_unit(unit: Unit) -> tuple[Unit, Report | str]:
    """In a worker: the unit's report, or why its target could not be loaded."""
    from conformance.runner import check

    try:
        fn = load_attribute(unit.target)
    except LoadError as exc:
        return unit, str(exc)
    return unit, check(fn, unit.spec, dtypes=[unit.dtype], properties=unit.properties,
                       target_path=unit.target, **unit.options)


def run_units(units: Sequence[Unit], count: int,
              done: Callable[[Unit], None] | None = None) -> Iterator[tuple[Unit, Report | str]]:
    """Each unit's report (or load error), in completion order, from `count` processes.

    Units are handed out in the order given: put the slowest first (the caller knows which
    families are slow), so that no long unit starts last."""
    context = multiprocessing.get_context("spawn")  # no forked torch state in the workers
    with context.Pool(min(count, max(len(units), 1))) as pool:
        for unit, outcome in pool.imap_unordered(_run_unit, units, chunksize=1):
            if done is not None:
                done(unit)
            yield unit, outcome


def merge(parts: Sequence[tuple[Unit, Report]]) -> Report:
    """The units' reports of one (target, spec) as one report, in sequential order."""
    ordered = [report for _, report in sorted(parts, key=lambda p: p[0].order)]
    first = ordered[0]
    merged = Report(first.target, first.spec, first.profile, notes=list(first.notes),
                    conventions=dict(first.conventions))
    for report in ordered:
        merged.results.extend(report.results)
        merged.plots.extend(report.plots)
        merged.seconds += report.seconds
    return merged
