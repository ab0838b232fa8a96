"""torch.nn.functional's losses and our implementations conform to their specs."""

from __future__ import annotations

import pytest

from conformance import all_specs, check
from conformance.cli import UsageError, load_target
from conformance.report import SKIPPED

TARGETS = [(spec.name, path) for spec in all_specs() for path in spec.implementations]


@pytest.mark.parametrize(("spec", "path"), TARGETS, ids=[f"{s}-{p}" for s, p in TARGETS])
def test_builtin_implementation_conforms(spec, path):
    try:
        fn = load_target(path)
    except UsageError as exc:  # an optional library (torchvision) that is not installed
        pytest.skip(str(exc))
    report = check(fn, spec)
    assert report.ok, str(report)
    # A property that never saw an example proves nothing.
    idle = [(r.property, r.dtype) for r in report.results
            if r.examples == 0 and r.status != SKIPPED]
    assert not idle, f"properties that ran no example: {idle}"


def test_every_spec_has_a_conforming_implementation():
    assert all(spec.implementations for spec in all_specs())
