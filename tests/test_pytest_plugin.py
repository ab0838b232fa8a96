"""The pytest plugin as a user's suite sees it: an inner pytest run through `pytester`.

The plugin is active in the inner run through the package's pytest11 entry point, exactly as in
an installed project; nothing here registers it by hand.
"""

from __future__ import annotations

import importlib.util
import textwrap

import pytest
import torch

from conformance import get_spec
from conformance.properties.registry import properties_of

BCE = "binary_cross_entropy"
MODULE = "test_user_losses"
# As the project's own addopts: no cache files in pytester's directory, and pytest-benchmark
# (installed here) kept out of an inner run it would only warn about.
PLAIN = ("-p", "no:cacheprovider", "-p", "no:benchmark")

USER_TESTS = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F

    from conformance.pytest_plugin import conformance_tests


    def bce_clamped(input, target, weight=None, reduction="mean"):
        # A common "stability" fix that is not torch's convention: torch clamps each log at
        # -100, so p = 0 with target 1 costs 100, not -log(1e-7) ~ 16.1.
        p = input.clamp(1e-7, 1 - 1e-7)
        loss = -(target * torch.log(p) + (1 - target) * torch.log1p(-p))
        if weight is not None:
            loss = loss * weight
        if reduction == "none":
            return loss
        return loss.sum() if reduction == "sum" else loss.mean()


    test_bce = conformance_tests(F.binary_cross_entropy, "binary_cross_entropy",
                                 dtypes=["float32"])
    test_bce_clamped = conformance_tests(bce_clamped, "binary_cross_entropy", dtypes=["float32"])


    def test_fixture(conformance):
        report = conformance(F.binary_cross_entropy, "binary_cross_entropy", dtypes=["float32"])
        assert report.ok
        assert {r.dtype for r in report.results} == {"float32"}
""")


def _node(test: str, prop: str) -> str:
    return f"{MODULE}.py::{test}[{BCE}-{prop}-float32]"


def _verbose_outcomes(lines: list[str]) -> dict[str, str]:
    """node id -> PASSED/FAILED/... from `-v` progress lines ("<id> PASSED [ 9%]")."""
    found = {}
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(f"{MODULE}.py::") and parts[1].isupper():
            found[parts[0]] = parts[1]
    return found


@pytest.fixture(scope="module")
def properties() -> list[str]:
    return [p.name for p in properties_of(get_spec(BCE))]


def test_conformance_tests_and_fixture_outcomes(pytester, properties):
    pytester.makepyfile(**{MODULE: USER_TESTS})
    result = pytester.runpytest_inprocess("--conformance-profile=ci", *PLAIN, "-v")

    # One test per property (one dtype) for each declaration, plus the fixture's test; of all
    # of them only the clamped BCE's value check, and its silent broadcast of a target batch
    # of 1, may fail. agrees_with_cpu compares CUDA with the CPU: skipped on a machine without
    # a GPU; gradient_matches_own_values runs in float64 only.
    gpu = torch.cuda.is_available()
    skipped = 2 if gpu else 4
    clamped_fails = {"matches_reference", "rejects_invalid_input"}
    result.assert_outcomes(passed=2 * len(properties) - skipped - 1, failed=2, skipped=skipped)

    def outcome(p: str, failing: bool) -> str:
        if (p == "agrees_with_cpu" and not gpu) or p == "gradient_matches_own_values":
            return "SKIPPED"
        return "FAILED" if failing else "PASSED"

    expected = {_node("test_bce", p): outcome(p, False) for p in properties}
    expected |= {_node("test_bce_clamped", p): outcome(p, p in clamped_fails)
                 for p in properties}
    expected[f"{MODULE}.py::test_fixture"] = "PASSED"
    assert _verbose_outcomes(result.outlines) == expected

    # The failure text is the report itself: the shrunk input and a reproducer that imports
    # the mutant back from the user's module.
    text = result.stdout.str()
    failure = text[text.index("_ test_bce_clamped["):]
    assert "matches_reference" in failure
    assert "input = torch.tensor(" in failure
    assert f"from {MODULE} import bce_clamped as fn" in failure
    assert "conformance.recheck(fn, 'binary_cross_entropy', 'matches_reference'" in failure
    assert "(profile 'ci')" in failure


def test_profile_option_reaches_the_checks(pytester):
    # thorough's 2000 examples would take minutes; max_examples overrides the count only, so
    # the profile name recorded in the report still shows which profile the option selected.
    # The outer suite's CONFORMANCE_PROFILE=ci would win if the option were ignored.
    pytester.makepyfile(textwrap.dedent("""\
        import torch.nn.functional as F


        def test_profile(conformance):
            report = conformance(F.binary_cross_entropy, "binary_cross_entropy",
                                 dtypes=["float32"], properties=["output_dtype"],
                                 max_examples=3)
            assert report.profile == "thorough"
    """))
    result = pytester.runpytest_inprocess("--conformance-profile=thorough", *PLAIN)
    result.assert_outcomes(passed=1)


def test_the_plot_option_reaches_the_checks(pytester, tmp_path):
    pytest.importorskip("matplotlib")
    pytester.makepyfile(textwrap.dedent("""\
        import torch.nn.functional as F
        from conformance.pytest_plugin import conformance_tests


        def l1_in_float32(input, target, reduction="mean"):
            out = F.l1_loss(input.float(), target.float(), reduction=reduction)
            return out.to(input.dtype)


        test_l1 = conformance_tests(l1_in_float32, "l1_loss", dtypes=["float64"],
                                    properties=["matches_reference"], max_examples=10)
    """))
    result = pytester.runpytest_inprocess(f"--conformance-plot={tmp_path}", *PLAIN)
    result.assert_outcomes(failed=1)
    assert [p.suffix for p in tmp_path.iterdir()] == [".png"]
    assert f"plot: {tmp_path}" in result.stdout.str()


def test_unknown_profile_is_a_usage_error(pytester):
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_inprocess("--conformance-profile=nope", *PLAIN)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--conformance-profile*invalid choice*'nope'*"])
    assert "collected" not in result.stdout.str()  # rejected before collection


def test_properties_option_narrows_the_parametrization():
    from conformance.pytest_plugin import conformance_tests

    test = conformance_tests(lambda *a, **k: None, BCE, dtypes=["float32"],
                             properties=["matches_reference", "nonnegative"])
    [mark] = [m for m in test.pytestmark if m.name == "parametrize"]
    assert [tuple(p) for p in mark.args[1]] == [("matches_reference", "float32"),
                                                ("nonnegative", "float32")]
    with pytest.raises(ValueError, match="no property"):
        conformance_tests(lambda *a, **k: None, BCE, properties=["nope"])


def test_the_matrix_is_one_test_per_cell_with_deviations_as_xfails(pytester):
    # Two of the matrix's implementations of cross_entropy in float64: torch's conforms,
    # toolbelt's has accepted deviations on file (skipped if toolbelt is not installed).
    # (Specs load before the inner run: pytester drops the modules an inner run imports.)
    cells = len(properties_of(get_spec("cross_entropy")))
    pytester.makepyfile(test_matrix=textwrap.dedent("""\
        from conformance.pytest_plugin import matrix_tests

        test_cell = matrix_tests(specs=["cross_entropy"], dtypes=["float64"])
    """))
    result = pytester.runpytest_inprocess("--conformance-profile=ci", *PLAIN, "-q",
                                          "-k", "functional or toolbelt")
    outcomes = result.parseoutcomes()
    assert sum(outcomes.get(k, 0) for k in ("passed", "skipped", "xfailed")) == 2 * cells
    assert "failed" not in outcomes
    if importlib.util.find_spec("pytorch_toolbelt") is not None:
        assert outcomes.get("xfailed", 0) > 0
