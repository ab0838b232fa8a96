"""torch.nn.functional's losses and our implementations conform to their specs."""

from __future__ import annotations

import pytest

from conformance import all_specs, check, deviations, get_spec
from conformance.cli import UsageError, load_target
from conformance.report import DEVIATION, SKIPPED

TARGETS = [(spec.name, path) for spec in all_specs() for path in spec.implementations]
ACCEPTED = deviations.builtin()


@pytest.mark.parametrize(("spec", "path"), TARGETS, ids=[f"{s}-{p}" for s, p in TARGETS])
@pytest.mark.parametrize("dtypes", [("float64", "float32"), ("float16", "bfloat16")],
                         ids=["wide", "narrow"])
def test_builtin_implementation_conforms(spec, path, dtypes):
    try:
        fn = load_target(path)
    except UsageError as exc:  # an optional library (torchvision) that is not installed
        pytest.skip(str(exc))
    declared = get_spec(spec).dtypes
    if declared is not None and not set(declared) & set(dtypes):
        pytest.skip(f"{spec} is defined for {', '.join(declared)} only")
    # Known deviations still run (an unexpected pass must show), without shrinking.
    report = check(fn, spec, dtypes=dtypes, target_path=path, known=ACCEPTED)
    outcome = deviations.apply([report], ACCEPTED, complete=False)
    assert report.ok, str(report)
    assert not outcome.unexpected_passes, outcome.lines()
    # A property that never saw an example proves nothing.
    idle = [(r.property, r.dtype) for r in report.results
            if r.examples == 0 and r.status not in (SKIPPED, DEVIATION)]
    assert not idle, f"properties that ran no example: {idle}"


def test_every_spec_has_a_conforming_implementation():
    assert all(spec.implementations for spec in all_specs())


def test_every_deviation_on_file_names_a_target_the_project_checks():
    import fnmatch

    from implementations.adapters import registered

    paths = {path for _, path in TARGETS} | {adapter.path for adapter in registered()}
    for dev in ACCEPTED:
        pattern = dev.implementation.replace(":", ".")
        assert any(fnmatch.fnmatchcase(p.replace(":", "."), pattern) for p in paths), dev.scope()
