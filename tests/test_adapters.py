"""Third-party adapters: each installed library's targets conform or their deviations are on
file; combinations a library lacks are not applicable; a missing library is skipped."""

from __future__ import annotations

import importlib.util
import inspect
import sys

import pytest
import torch
import torch.nn.functional as F

from conformance import NotApplicable, all_specs, check, deviations, get_spec, reproducer
from conformance.cli import UsageError, load_target
from conformance.report import DEVIATION, PASSED, SKIPPED
from implementations.adapters import LIBRARY_DEFAULT, adapts, registered
from implementations.sources import LibraryMissing, Sources, import_sources

TARGETS = [(a.library, a.spec, a.path) for a in registered()]
ACCEPTED = deviations.builtin()
COMPILING = {"optax", "keras"}
each_adapter = pytest.mark.parametrize(("library", "spec", "path"), TARGETS,
                                       ids=[f"{lib}-{spec}" for lib, spec, _ in TARGETS])


def installed_target(library: str, path: str):
    if importlib.util.find_spec(library) is None:
        pytest.skip(f"{library} is not installed")
    return load_target(path)


@each_adapter
def test_adapter_conforms_or_its_deviations_are_on_file(library, spec, path):
    fn = installed_target(library, path)
    # JAX compiles each new shape and parameter value (about a second each): the JAX rows get
    # a third of the draws here, its edge cases included; the matrix runs it in full.
    draws = {"max_examples": 8} if library in COMPILING else {}
    # The verdict is what is asserted, never the minimal input: no shrinking.
    report = check(fn, spec, target_path=path, dtypes=("float64", "float32"), known=ACCEPTED,
                   shrink=False, **draws)
    outcome = deviations.apply([report], ACCEPTED, complete=False)
    assert report.ok, str(report)
    assert not outcome.unexpected_passes, outcome.lines()


def test_a_missing_library_is_reported_as_missing_not_as_a_failure():
    with pytest.raises(LibraryMissing, match="not installed"):
        import_sources("no_such_loss_library", ("losses",))
    with pytest.raises(UsageError):
        load_target("implementations.adapters.no_such_adapter:loss")


_ABSENT = Sources("no_such_loss_library.losses", ("mse",))


@adapts("mse_loss", library="no_such_loss_library")
def _absent_mse_loss(input, target, reduction="mean"):
    return _ABSENT["mse"].mse_loss(input, target, reduction=reduction)


def test_an_adapter_of_an_absent_library_imports_and_is_skipped_as_not_installed():
    # Its module imported (the library is looked up on the first call only) ...
    with pytest.raises(LibraryMissing, match="no_such_loss_library is not installed"):
        _absent_mse_loss(torch.zeros(1), torch.zeros(1))
    # ... and check() reports it as not installed: no evidence, nothing failed.
    report = check(_absent_mse_loss, "mse_loss", dtypes=("float64",))
    assert report.verdict == "NO EVIDENCE" and not report.ok
    assert report.results and all(r.status == SKIPPED for r in report.results)
    assert "not installed: no_such_loss_library" in str(report)
    # Loaded by path, it is a usage error that names the library.
    with pytest.raises(UsageError, match="needs no_such_loss_library, which is not installed"):
        load_target(f"{__name__}:_absent_mse_loss")


def test_every_registered_adapter_is_found_at_its_path_and_names_a_spec():
    specs = {s.name for s in all_specs()}
    adapters = registered()
    assert len({a.path for a in adapters}) == len(adapters) > 40
    for adapter in adapters:
        assert adapter.spec in specs, adapter
        if importlib.util.find_spec(adapter.library) is None:
            continue  # re-exported functions are the library's: nothing to look at without it
        fn = load_target(adapter.path)
        if hasattr(fn, "conformance_requires"):  # written here (not a re-export): its own path
            assert adapter.library in fn.conformance_requires
            assert reproducer.import_path(fn) == adapter.path


@each_adapter
def test_adapters_take_the_canonical_parameters_in_order(library, spec, path):
    taken = inspect.signature(installed_target(library, path)).parameters
    declared = get_spec(spec)
    variants = {v.name for v in declared.variants}
    wanted = [p for p in inspect.signature(declared.reference).parameters.values()
              if p.name not in variants]
    # A library's own function may keep legacy parameters between the canonical ones.
    assert [n for n in taken if n in {p.name for p in wanted}] == [p.name for p in wanted]
    for p in wanted:
        assert taken[p.name].default in (p.default, LIBRARY_DEFAULT), (
            f"{path}: {p.name}={taken[p.name].default!r}, the spec {p.default!r}")


def test_a_region_adapter_reads_positional_arguments_in_the_specs_order():
    if importlib.util.find_spec("segmentation_models_pytorch") is None:
        pytest.skip("segmentation_models_pytorch is not installed")
    tversky = load_target("implementations.adapters.smp_losses:tversky_loss")
    x = torch.randn(2, 3, 5, dtype=torch.float64)
    y = torch.randint(0, 3, (2, 5))
    assert torch.equal(tversky(x, y, 0.2, 0.8), tversky(x, y, alpha=0.2, beta=0.8))
    assert not torch.equal(tversky(x, y, 0.2, 0.8), tversky(x, y, alpha=0.8, beta=0.2))


def _bce_without_weights(input, target, weight=None, reduction="mean"):
    if weight is not None:
        raise NotApplicable("this library has no per-element weights")
    return F.binary_cross_entropy(input, target, reduction=reduction)


def _bce_mean_only(input, target, weight=None, reduction="mean"):
    if reduction != "mean":
        raise NotApplicable("mean only")
    return F.binary_cross_entropy(input, target, weight=weight, reduction=reduction)


_bce_mean_only.conformance_reductions = ("mean",)


def test_unsupported_parameters_are_counted_not_applicable_never_pass_or_fail():
    report = check(_bce_without_weights, "binary_cross_entropy", dtypes=("float64",),
                   properties=["matches_reference"])
    (result,) = report.results
    assert result.status == PASSED and result.examples > 0
    assert result.not_applicable > 0  # the drawn cases with weights
    assert f"(+{result.not_applicable} n/a)" in str(report)


def test_a_reduction_the_library_lacks_is_not_applicable():
    report = check(_bce_mean_only, "binary_cross_entropy", dtypes=("float64",),
                   properties=["matches_reference", "reduction_consistency"])
    by_name = {r.property: r for r in report.results}
    assert by_name["matches_reference"].status == PASSED
    consistency = by_name["reduction_consistency"]
    assert consistency.status == SKIPPED and "not applicable" in consistency.reason
    assert report.ok  # what could run conforms; what could not is counted, not passed


def test_timm_cross_entropy_covers_what_it_supports():
    if importlib.util.find_spec("timm") is None:
        pytest.skip("timm is not installed")
    fn = load_target("implementations.adapters.timm_loss:cross_entropy")
    report = check(fn, "cross_entropy", dtypes=("float64",), known=ACCEPTED,
                   properties=["matches_reference", "reduction_consistency"])
    deviations.apply([report], ACCEPTED, complete=False)  # its default smoothing of 0.1
    by_name = {r.property: r for r in report.results}
    assert by_name["matches_reference"].status in (PASSED, DEVIATION)
    assert by_name["matches_reference"].not_applicable > 0  # weights, ignore_index, K-dim
    assert by_name["reduction_consistency"].status == SKIPPED


def test_loss_modules_load_where_the_package_init_cannot(tmp_path, monkeypatch):
    # A library whose __init__ files fail (as pytorch_toolbelt's imports OpenCV) and whose loss
    # module imports a name its helper package re-exports.
    root = tmp_path / "brokenlib"
    (root / "losses").mkdir(parents=True)
    (root / "utils").mkdir()
    (root / "__init__.py").write_text("raise ImportError('no cv2 here')\n")
    (root / "utils" / "__init__.py").write_text("raise ImportError('no cv2 here')\n")
    (root / "utils" / "support.py").write_text("__all__ = ['twice']\ndef twice(x):\n"
                                               "    return 2 * x\n")
    (root / "losses" / "__init__.py").write_text("raise ImportError('not this either')\n")
    (root / "losses" / "double.py").write_text("from brokenlib.utils import twice\n"
                                               "def loss(x):\n    return twice(x)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        modules = import_sources("brokenlib.losses", ("double",),
                                 helpers={"brokenlib.utils": ("support",)})
        assert modules["double"].loss(3) == 6
        assert modules["double"].__file__ == str(root / "losses" / "double.py")
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] == "brokenlib"]:
            del sys.modules[name]
