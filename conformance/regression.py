"""Regression across environments (a torch upgrade, a port): `snapshot` and `compare`.

    take_snapshot(pairs, folder)     record every (spec, target) on its spec's corpus
    compare_to(folder)               recompute the same records now and say what changed
    compare_runs(old, new)           two saved `run --json` reports: the verdicts that changed
"""

from __future__ import annotations

import json
import platform
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from conformance import drift, export
from conformance.baseline import Baseline, BaselineError, read
from conformance.baseline import corpus_hash as hash_of
from conformance.case import DTYPES, Case, format_case
from conformance.catalog import UnknownSpec, get_spec
from conformance.report import DEVIATION, PASSED, SKIPPED
from conformance.snapshot import (
    DEFAULT_SEED,
    DEFAULT_SIZE,
    OUTSIDE,
    Record,
    corpus,
    record_target,
)
from conformance.spec import LossSpec


def environment(libraries: dict[str, str] | None = None) -> dict[str, str]:
    """What the numbers may depend on: `run`'s environment (python, torch, numpy), Hypothesis
    (it draws the corpus), the CPU and torch's build, then the libraries' versions."""
    import hypothesis

    env = {**export.environment({}), "hypothesis": hypothesis.__version__,
           "machine": platform.machine(), "processor": platform.processor() or "",
           "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "cuda": torch.version.cuda or "none"}
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
    return {**env, **(libraries or {})}


def take_snapshot(pairs: Sequence[tuple[LossSpec, str]], folder: Path,
                  load: Callable[[str], Callable[..., Any]], *, dtypes: Sequence[str],
                  devices: Sequence[str], size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED,
                  timeout: float | None = 10.0, libraries: dict[str, str] | None = None,
                  progress: Callable[[str], None] | None = None) -> tuple[Baseline, int]:
    """Record every (spec, target path) and write the baseline; it and its bytes on disk."""
    cases = {}
    for spec, _ in pairs:
        if spec.name not in cases:
            cases[spec.name] = corpus(spec, size, seed)
    targets, arrays, skipped = [], [], []
    for spec, path in pairs:
        if progress:
            progress(f"{spec.name}  {path}")
        try:
            fn = load(path)
        except Exception as exc:  # a library missing here: the others are still recorded
            if len(pairs) == 1:
                raise
            skipped.append(f"{path}: {exc}")
            continue
        records = [r for r in record_target(fn, spec, cases[spec.name], dtypes, devices,
                                            timeout) if r.status != OUTSIDE]
        targets.append({"target": path, "spec": spec.name,
                        "records": [r.meta() for r in records]})
        arrays.append({k: v for i, r in enumerate(records) for k, v in r.arrays(i).items()})
    baseline = Baseline(environment(libraries),
                        {"size": size, "seed": seed, "dtypes": list(dtypes),
                         "devices": list(devices), "not_loaded": skipped},
                        cases, {name: hash_of(c) for name, c in cases.items()}, targets, arrays)
    return baseline, baseline.write(folder)


def _shown_array(value: np.ndarray | None) -> str:
    if value is None:
        return "-"
    return np.array2string(np.asarray(value), precision=17, threshold=12,
                           max_line_width=10**6)


def _shown(record: Record) -> str:
    if record.status != "ok":
        return f"{record.status}: {record.message}"
    return f"{_shown_array(record.value)} ({record.out_dtype})"


EXAMPLES = 3  # records beyond noise shown per row


class CorpusChanged(BaselineError):
    """The spec's strategies now draw another corpus than the baseline's."""


@dataclass
class DriftReport:
    baseline_env: dict[str, str]
    env: dict[str, str]
    rows: list[drift.Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def worse(self) -> list[drift.Row]:
        return [r for r in self.rows if r.worse]

    @property
    def ok(self) -> bool:
        return not self.worse

    def _changed_env(self) -> str:
        keys = [k for k in self.env if self.baseline_env.get(k) != self.env[k]]
        return ", ".join(f"{k} {self.baseline_env.get(k, '-')} -> {self.env[k]}" for k in keys)

    def __str__(self) -> str:
        lines = [f"baseline: torch {self.baseline_env.get('torch')}; now: torch"
                 f" {self.env['torch']} ({self._changed_env() or 'the same environment'})"]
        width = max((len(f"{r.target} [{r.spec}]") for r in self.rows), default=10)
        for r in self.rows:
            lines.append(f"  {r.verdict:9} {f'{r.target} [{r.spec}]':{width}} {r.dtype:8}"
                         f" {r.device:4} {r.reduction!s:5} {r.summary()}")
        for r in self.worse:
            for change in r.worse:
                lines.append(f"\nWORSE: {r.target} [{r.spec}] {r.dtype} {r.device}"
                             f" reduction={r.reduction!r}, case {change.record.case}:"
                             f" {change.kind}: {change.why}")
        counts = {v: sum(r.verdict == v for r in self.rows)
                  for v in ("WORSE", "better", "changed", drift.IDENTICAL)}
        lines.append(f"\n{len(self.rows)} rows: {counts['WORSE']} worse, {counts['better']}"
                     f" closer to float64, {counts['changed']} changed within the rule,"
                     f" {counts[drift.IDENTICAL]} bitwise identical ({self.seconds:.1f}s)")
        lines += self.notes
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "baseline_environment": self.baseline_env,
                "environment": self.env, "rows": [r.to_dict() for r in self.rows],
                "notes": self.notes, "seconds": self.seconds}

    def markdown(self, corpus: dict[str, list[Case]] | None = None) -> str:
        """A table of every compared row, then, for each record beyond noise (worse, closer
        to float64, NaN, dtype, shape or error changes, drift of more than a few ULP), its
        values (and moved gradients) before and now and, given the corpus, its input printed
        exactly."""
        lines = ["# Drift against a baseline", "",
                 f"Baseline: {', '.join(f'{k} {v}' for k, v in self.baseline_env.items())}.",
                 f"Now: {', '.join(f'{k} {v}' for k, v in self.env.items())}.", "",
                 "| target | spec | dtype | reduction | verdict | what changed |",
                 "|---|---|---|---|---|---|"]
        for r in self.rows:
            if r.verdict == drift.SKIPPED:
                continue
            lines.append(f"| `{r.target}` | {r.spec} | {r.dtype} | {r.reduction} |"
                         f" {r.verdict} | {r.summary()} |")
        notable = [(r, [c for c in r.changes if c.beyond_noise][:EXAMPLES]) for r in self.rows]
        if any(found for _, found in notable):
            lines += ["", f"## Changes beyond noise (more than {drift.NOISE_ULPS:g} ULP, or a"
                      f" changed kind), at most {EXAMPLES} records per row", ""]
        for r, c in ((r, c) for r, found in notable for c in found):
            verdict = "worse" if c.worse else ("closer to float64" if c.better else c.kind)
            lines += [f"### `{r.target}` [{r.spec}] {r.dtype}, reduction={r.reduction!r},"
                      f" case {c.record.case}: {verdict}", ""]
            if c.why:
                lines += [c.why, ""]
            lines += ["```", f"before: {_shown(c.record)}", f"now:    {_shown(c.now)}",
                      f"float64 reference: {_shown_array(c.now.reference)}"]
            for name, before in c.record.grads.items() if c.grad_elements else ():
                lines += [f"d/d{name} before: {_shown_array(before)}",
                          f"d/d{name} now:    {_shown_array(c.now.grads.get(name))}"]
            if corpus and r.spec in corpus:
                lines += ["", format_case(corpus[r.spec][c.record.case], DTYPES[r.dtype])]
            lines += ["```", ""]
        return "\n".join([*lines, "", *self.notes]) + "\n"

    def junit(self) -> str:
        suite = ET.Element("testsuite", name="conformance.compare", tests=str(len(self.rows)),
                           failures=str(len(self.worse)), time=f"{self.seconds:.3f}")
        for r in self.rows:
            case = ET.SubElement(suite, "testcase", classname=f"{r.target}.{r.spec}",
                                 name=f"{r.dtype}-{r.device}-{r.reduction}")
            if r.worse:
                failure = ET.SubElement(case, "failure", message=r.summary())
                failure.text = "\n".join(f"case {c.record.case}: {c.kind}: {c.why}"
                                         for c in r.worse)
        return ET.tostring(suite, encoding="unicode")


def compare_to(folder: Path, load: Callable[[str], Callable[..., Any]], *,
               specs: Sequence[str] | None = None, stored_corpus: bool = False,
               timeout: float | None = 10.0, libraries: dict[str, str] | None = None,
               progress: Callable[[str], None] | None = None) -> tuple[DriftReport, Baseline]:
    """Recompute the baseline's records in this environment and compare them.

    The corpus is the baseline's own stored inputs. Unless `stored_corpus`, the spec's
    strategies must still draw that corpus (its content hash): otherwise the spec changed
    since the snapshot, and CorpusChanged names it."""
    start = time.perf_counter()
    baseline = read(folder)
    settings = baseline.settings
    report = DriftReport(baseline.environment, environment(libraries))
    for entry, arrays in zip(baseline.targets, baseline.arrays, strict=True):
        name, path = entry["spec"], entry["target"]
        if specs and name not in specs:
            continue
        try:
            spec = get_spec(name)
        except UnknownSpec:
            report.notes.append(f"spec {name!r} is not known here: {path} not compared")
            continue
        cases = baseline.corpus[name]
        if not stored_corpus:
            current = hash_of(corpus(spec, settings["size"], settings["seed"]))
            if current != baseline.corpus_hashes[name]:
                raise CorpusChanged(
                    f"{folder}: spec {name!r} now draws corpus {current}, the baseline holds"
                    f" {baseline.corpus_hashes[name]} (the spec or Hypothesis changed since the"
                    " snapshot). Re-snapshot, or pass --stored-corpus to compare on the"
                    " baseline's stored inputs")
        if progress:
            progress(f"{name}  {path}")
        where = str(folder / "records")
        old = [Record.load(i, meta, arrays, where) for i, meta in enumerate(entry["records"])]
        dtypes = sorted({r.dtype for r in old}, key=settings["dtypes"].index)
        devices = [d for d in settings["devices"] if d == "cpu" or torch.cuda.is_available()]
        try:
            fn = load(path)
        except Exception as exc:  # a target gone from this environment is a finding
            report.notes.append(f"{path}: cannot be loaded here ({exc}); not compared")
            continue
        now = {r.key: r for r in record_target(fn, spec, cases, dtypes, devices, timeout)}
        changes = [drift.compare_record(spec, cases[r.case], r, now[r.key]) if r.key in now
                   else drift.skipped_change(r) for r in old]
        report.rows += drift.rows_of(path, name, changes)
    report.seconds = time.perf_counter() - start
    return report, baseline


# ----------------------------------------------------------------------------- run reports


def _cells(path: Path) -> dict[tuple[str, ...], str]:
    try:
        body = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: not a readable JSON report ({exc})") from None
    reports = body.get("reports") if isinstance(body, dict) else body
    if not isinstance(reports, list):
        raise BaselineError(f"{path}: not a `run --json` or `check --json` report")
    try:
        return {(r["target"], r["spec"], x["property"], x["dtype"], x["device"]): x["status"]
                for r in reports for x in r["results"]}
    except (KeyError, TypeError) as exc:
        raise BaselineError(f"{path}: a report entry lacks {exc}") from None


GOOD = (PASSED, DEVIATION)


def compare_runs(old: Path, new: Path) -> tuple[list[str], bool]:
    """The cells whose status changed between two saved reports; whether none got worse
    (a cell that passed, or failed as an accepted deviation, and now fails or errors)."""
    before, after = _cells(old), _cells(new)
    lines, ok = [], True
    for key in sorted(set(before) | set(after)):
        was, now = before.get(key, "absent"), after.get(key, "absent")
        if was == now:
            continue
        worse = was in GOOD and now not in (*GOOD, "absent", SKIPPED)
        ok &= not worse
        lines.append(f"{'WORSE' if worse else 'changed':8} {key[0]} [{key[1]}] {key[2]}"
                     f" {key[3]} {key[4]}: {was} -> {now}")
    return lines, ok
