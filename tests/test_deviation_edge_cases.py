"""Every accepted deviation is triggered by a named edge case, not by the luck of the draw.

The matrix runs on the specs' edge cases alone (max_examples=0): each entry of
implementations/deviations.toml must explain at least one of those failures, and an exact entry
(one implementation, spec and property) must fail in every dtype it names. So an entry can never
flip to "unexpected pass" or "matched nothing" because Hypothesis drew other examples.
"""

from __future__ import annotations

import pytest

from conformance import deviations
from conformance.catalog import all_specs
from conformance.cli import UsageError, load_target, matrix_targets
from conformance.report import FAILED, SKIPPED
from conformance.runner import check


@pytest.fixture(scope="module")
def edge_case_matrix():
    entries = deviations.builtin()
    pairs, _ = matrix_targets(all_specs(), libraries=True)
    reports, missing = [], []
    for spec, path in pairs:
        try:
            fn = load_target(path)
        except UsageError:
            missing.append(path)
            continue
        reports.append(check(fn, spec, max_examples=0, target_path=path, devices="cpu"))
    outcome = deviations.apply(reports, entries, complete=False)
    return entries, reports, outcome, missing


def _loaded(entry, reports) -> bool:
    return any(entry.covers(r.target, res) for r in reports for res in r.results)


def test_every_deviation_is_triggered_by_an_edge_case(edge_case_matrix):
    entries, reports, outcome, _ = edge_case_matrix
    explained = {id(dev) for dev in outcome.explaining}
    silent = [dev.scope() for dev in entries
              if _loaded(dev, reports) and id(dev) not in explained]
    assert not silent, "entries no edge case triggers:\n" + "\n".join(silent)


def test_exact_entries_fail_in_every_dtype_they_name(edge_case_matrix):
    entries, reports, outcome, _ = edge_case_matrix
    assert not outcome.unexpected_passes, outcome.lines()
    gaps = []
    for dev in entries:
        if not dev.exact():
            continue
        for dtype in dev.dtypes or ("float64", "float32", "float16", "bfloat16"):
            cells = [res for r in reports for res in r.results  # skipped: not run in that dtype
                     if dev.covers(r.target, res) and res.dtype == dtype
                     and res.status != SKIPPED]
            if cells and not any(c.status != FAILED and c.deviation for c in cells):
                gaps.append(f"{dev.scope()} [{dtype}]: {[c.status for c in cells]}")
    assert not gaps, "\n".join(gaps)
