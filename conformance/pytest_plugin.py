"""pytest plugin: gate a test suite on a spec.

    # test_my_losses.py
    from conformance.pytest_plugin import conformance_tests
    import mypkg

    test_focal = conformance_tests(mypkg.focal_loss, "sigmoid_focal_loss")   # one test per
                                                                              # property x dtype
    def test_ce(conformance):                       # or all at once, through the fixture
        conformance(mypkg.cross_entropy, "cross_entropy")

`pytest --conformance-profile=ci|default|thorough` picks the Hypothesis profile;
`--conformance-plot DIR` writes a picture of each value or gradient failure there. Options of
`conformance.check` pass through (`conventions={"smoothing": "tversky"}`, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest

from conformance.catalog import all_specs, get_spec
from conformance.profiles import PROFILES
from conformance.properties.registry import properties_of
from conformance.report import NO_EVIDENCE
from conformance.runner import DEFAULT_DTYPES, ConformanceError, check
from conformance.spec import LossSpec


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "loss conformance checks")
    group.addoption(
        "--conformance-profile",
        choices=list(PROFILES),
        default=None,
        help="Hypothesis profile for conformance checks (default: $CONFORMANCE_PROFILE or"
        " 'default')",
    )
    group.addoption(
        "--conformance-plot",
        metavar="DIR",
        default=None,
        help="write a PNG per failed value or gradient check to DIR (needs matplotlib)",
    )


def _profile(config: pytest.Config) -> str | None:
    return config.getoption("conformance_profile", default=None)


def _defaults(config: pytest.Config, options: dict[str, Any]) -> dict[str, Any]:
    """The options with the command line's profile and plot folder where they are not given."""
    options.setdefault("profile", _profile(config))
    options.setdefault("plot", config.getoption("conformance_plot", default=None))
    return options


@pytest.fixture
def conformance(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """`conformance(fn, spec, **options)` asserts that fn conforms (profile from the CLI)."""
    def run(fn: Callable[..., Any], spec: str | LossSpec, **options: Any) -> Any:
        report = check(fn, spec, **_defaults(request.config, options))
        if report.verdict == NO_EVIDENCE:
            pytest.skip(f"no evidence: {report}")
        if not report.ok:
            raise ConformanceError(report)
        return report

    return run


def conformance_tests(
    fn: Callable[..., Any],
    spec: str | LossSpec,
    *,
    dtypes: Iterable[str] = DEFAULT_DTYPES,
    **options: Any,
) -> Callable[..., None]:
    """A test function parametrized over the spec's properties x dtypes; assign it to a
    `test_*` name in a test module. Options are those of `conformance.check`."""
    resolved = get_spec(spec)
    dtypes = tuple(dtypes)
    wanted = options.pop("properties", None)
    names = [p.name for p in properties_of(resolved)]
    if wanted is not None:
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            raise ValueError(f"spec {resolved.name!r} has no property {unknown}")
        names = [n for n in names if n in wanted]
    params = [(name, d) for name in names for d in dtypes]

    @pytest.mark.parametrize(
        ("property_name", "dtype"), params, ids=[f"{resolved.name}-{p}-{d}" for p, d in params]
    )
    def test(property_name: str, dtype: str, request: pytest.FixtureRequest) -> None:
        opts = _defaults(request.config, dict(options))
        report = check(fn, resolved, properties=[property_name], dtypes=[dtype], **opts)
        if report.ok:
            return
        if report.verdict == NO_EVIDENCE:  # skipped, or no case applied: not a pass
            pytest.skip("; ".join(r.reason or "skipped" for r in report.results))
        pytest.fail(str(report), pytrace=False)

    return test


def matrix_tests(
    *,
    libraries: bool = True,
    specs: Iterable[str] | None = None,
    dtypes: Iterable[str] = DEFAULT_DTYPES,
    **options: Any,
) -> Callable[..., None]:
    """The matrix as one test per implementation x spec x property x dtype cell: every
    built-in implementation and (with `libraries`) every third-party adapter, so that
    pytest-xdist (`-n auto`) and CI sharding spread it. A cell an accepted deviation
    (implementations/deviations.toml) explains is an xfail with its reason; a library that is
    not installed is skipped. `conformance/matrix.py` is this, ready to run:

        python -m pytest --pyargs conformance.matrix -n auto
    """
    from conformance import deviations
    from conformance.cli import UsageError, load_target, matrix_targets
    from conformance.report import DEVIATION

    chosen = [get_spec(name) for name in specs] if specs is not None else all_specs()
    pairs, _ = matrix_targets(chosen, libraries)
    dtypes = tuple(dtypes)
    cells = [(path, spec.name, prop.name, dtype) for spec, path in pairs
             for prop in properties_of(spec) for dtype in dtypes]
    accepted = deviations.builtin()

    @pytest.mark.parametrize(("path", "spec_name", "property_name", "dtype"), cells,
                             ids=[f"{p}-{s}-{q}-{d}" for p, s, q, d in cells])
    def test(path: str, spec_name: str, property_name: str, dtype: str,
             request: pytest.FixtureRequest) -> None:
        try:
            fn = load_target(path)
        except UsageError as exc:
            pytest.skip(f"{path}: {exc}")
        opts = dict(options)
        opts.setdefault("profile", _profile(request.config))
        report = check(fn, spec_name, properties=[property_name], dtypes=[dtype],
                       target_path=path, known=accepted, **opts)
        deviations.apply([report], accepted, complete=False)
        (row,) = report.results
        if row.status == DEVIATION:
            pytest.xfail(row.deviation or "an accepted deviation")
        if report.verdict == NO_EVIDENCE:
            pytest.skip(row.reason or "skipped")
        if not report.ok:
            pytest.fail(str(report), pytrace=False)

    return test
