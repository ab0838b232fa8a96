"""A run's reports as Markdown (for a README or a pull-request comment) and JUnit XML (for CI)."""

from __future__ import annotations

import platform
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence

from conformance.report import (
    CONFORMS,
    DEVIATION,
    ERROR,
    FAILED,
    NO_EVIDENCE,
    PASSED,
    SKIPPED,
    Report,
)

_MARK = {PASSED: "pass", FAILED: "**FAIL**", ERROR: "**error**", SKIPPED: "n/a",
         DEVIATION: "known"}


def environment(libraries: Mapping[str, str]) -> dict[str, str]:
    import numpy
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, **libraries}


def markdown(reports: Sequence[Report], env: Mapping[str, str], summary: str,
             command: str = "") -> str:
    lines = ["# Loss conformance matrix", "",
             ", ".join(f"{k} {v}" for k, v in env.items()), "", summary, ""]
    if command:
        lines += [f"Made by `{command}`.", ""]
    lines += [
        "A cell is one (implementation, spec, property, dtype, device). *known*: a failure that"
        " `implementations/deviations.toml` accepts, labelled *convention* (a documented choice"
        " that differs from the spec) or *defect*; *skipped / n/a*: a combination the library"
        " does not support, a family invariant in float16/bfloat16, or a CUDA comparison without"
        " a GPU. Minimal inputs and their stories: `docs/findings.md`.", "",
        "| implementation | spec | passed | failed | known | skipped / n/a | verdict |",
        "|---|---|---|---|---|---|---|"]
    for r in reports:
        c = r.counts()
        verdict = {CONFORMS: r.finding, NO_EVIDENCE: "*no evidence*"}.get(
            r.verdict, "**does not conform**")
        lines.append(f"| `{r.target}` | {r.spec}{r.following()} | {c[PASSED]} |"
                     f" {c[FAILED] + c[ERROR]} |"
                     f" {c[DEVIATION]} | {c[SKIPPED]} | {verdict} |")
    details = [r for r in reports if any(x.status in (FAILED, ERROR, DEVIATION)
                                         for x in r.results)]
    if details:
        lines += ["", "## Cells that do not pass", ""]
    for r in details:
        for x in r.results:
            if x.status not in (FAILED, ERROR, DEVIATION):
                continue
            what = x.deviation if x.status == DEVIATION else (
                x.failure.message if x.failure else x.reason)
            lines.append(f"- `{r.target}` {r.spec} / {x.property} [{x.dtype}, {x.device}]:"
                         f" {_MARK[x.status]}: {what}")
            if x.failure is not None and x.status == FAILED:
                for i, failure in enumerate((x.failure, *x.more_failures)):
                    if i:
                        lines.append(f"  - also, of another kind: {failure.message}")
                    if failure.diagnosis is not None:
                        lines.append(f"  - diagnosis: {failure.diagnosis}")
                    lines += ["", "  ```python"]
                    lines += ["  " + line for line in failure.reproducer.splitlines()]
                    lines += ["  ```", ""]
    return "\n".join(lines) + "\n"


def junit(reports: Sequence[Report], seconds: float) -> str:
    suites = ET.Element("testsuites", name="loss-conformance", time=f"{seconds:.3f}")
    for r in reports:
        c = r.counts()
        suite = ET.SubElement(
            suites, "testsuite", name=f"{r.target} vs {r.spec}{r.following()}",
            tests=str(len(r.results)), failures=str(c[FAILED]), errors=str(c[ERROR]),
            skipped=str(c[SKIPPED] + c[DEVIATION]), time=f"{r.seconds:.3f}")
        for x in r.results:
            case = ET.SubElement(suite, "testcase", classname=f"{r.target}.{r.spec}",
                                 name=f"{x.property}[{x.dtype},{x.device}]",
                                 time=f"{x.seconds:.3f}")
            if x.status == FAILED and x.failure is not None:
                node = ET.SubElement(case, "failure", message=x.failure.message[:500])
                node.text = "\n\n".join(str(f) for f in (x.failure, *x.more_failures))
            elif x.status == ERROR:
                ET.SubElement(case, "error", message=x.reason or "error")
            elif x.status == SKIPPED:
                ET.SubElement(case, "skipped", message=x.reason or "not applicable")
            elif x.status == DEVIATION:
                ET.SubElement(case, "skipped", message=f"known deviation: {x.deviation}")
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
