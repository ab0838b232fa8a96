"""Third-party adapters: each installed library's targets conform or their deviations are on
file; combinations a library lacks are not applicable; a missing library is skipped."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch.nn.functional as F

from conformance import NotApplicable, check, deviations
from conformance.cli import UsageError, load_target
from conformance.report import DEVIATION, PASSED, SKIPPED
from implementations.adapters import ADAPTERS
from implementations.sources import LibraryMissing, import_sources

TARGETS = [(lib, spec, path) for lib, pairs in ADAPTERS.items() for spec, path in pairs]
ACCEPTED = deviations.builtin()
COMPILING = {"optax"}


@pytest.mark.parametrize(("library", "spec", "path"), TARGETS,
                         ids=[f"{lib}-{spec}" for lib, spec, _ in TARGETS])
def test_adapter_conforms_or_its_deviations_are_on_file(library, spec, path):
    if importlib.util.find_spec(library) is None:
        pytest.skip(f"{library} is not installed")
    fn = load_target(path)
    # JAX compiles each new shape and parameter value (about a second each): optax's row gets
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
