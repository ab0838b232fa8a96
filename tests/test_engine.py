"""The engine itself: misbehaving targets, the tolerance rule, exact printing, determinism."""

from __future__ import annotations

import contextlib
import io
import math
import time

import mutants
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import conformance
from conformance.case import Case, format_case
from conformance.catalog import all_specs
from conformance.properties.registry import properties_of
from conformance.report import ERROR, FAILED
from conformance.tolerance import DEFAULT_RULE, compare

BCE = "binary_cross_entropy"


def _messages(report):
    """Failure messages and error reasons (a skip's reason says why it did not run)."""
    return [r.failure.message for r in report.results if r.failure] + [
        r.reason for r in report.results if r.reason and r.status != "skipped"]


# --------------------------------------------------------------------------- bad targets


def raises(input, target, **kwargs):
    raise RuntimeError("boom")


def returns_python_float(input, target, **kwargs):
    return float(F.binary_cross_entropy(input, target, **kwargs).sum())


def returns_integers(input, target, **kwargs):
    return F.binary_cross_entropy(input, target, **kwargs).round().long()


def sums_for_none(input, target, reduction="mean", **kwargs):
    return F.binary_cross_entropy(input, target, reduction="sum" if reduction == "none"
                                  else reduction, **kwargs)


def hangs(input, target, **kwargs):
    while True:
        pass


def test_a_target_that_raises_is_reported_and_every_property_still_runs():
    report = conformance.check(raises, BCE, dtypes=("float32",))
    assert not report.ok
    assert len(report.results) == len(properties_of(conformance.get_spec(BCE)))
    # Every property that runs here fails (agrees_with_cpu needs a GPU and is skipped;
    # gradient_matches_own_values runs in float64 only).
    assert all(r.status == FAILED for r in report.results
               if r.property not in ("agrees_with_cpu", "gradient_matches_own_values"))
    assert all("the target raised RuntimeError: boom" in m for m in _messages(report))


def test_a_non_tensor_result_is_named():
    report = conformance.check(returns_python_float, BCE, dtypes=("float32",),
                               properties=["matches_reference"])
    assert "returned float, not a torch.Tensor" in report.failures[0].message


def test_an_integer_result_is_named():
    report = conformance.check(returns_integers, BCE, dtypes=("float32",),
                               properties=["matches_reference"])
    assert "torch.int64 tensor" in report.failures[0].message


def test_a_wrong_shape_is_named():
    report = conformance.check(sums_for_none, BCE, dtypes=("float32",),
                               properties=["matches_reference"])
    failure = report.failures[0]
    assert failure.reduction == "none"
    assert "output shape ()" in failure.message


def keeps_a_unit_axis_for_none(input, target, weight=None, reduction="mean"):
    out = F.binary_cross_entropy(input, target, weight=weight, reduction=reduction)
    return out.unsqueeze(-1) if reduction == "none" else out


def test_a_wrong_shape_fails_every_property_that_sees_it_not_the_check():
    # A bound built from the target's own output (nonnegative: 0 <= loss) has the wrong shape
    # too; the reference's shape still names the problem.
    report = conformance.check(keeps_a_unit_axis_for_none, BCE, dtypes=("float64",),
                               properties=["nonnegative", "reduction_consistency"])
    assert [r.status for r in report.results] == [FAILED, FAILED]
    assert all("shape (" in f.message and "none" in f.message
               for f in report.failures)


def test_a_hanging_target_times_out_and_the_rest_is_skipped():
    start = time.perf_counter()
    report = conformance.check(hangs, BCE, dtypes=("float32", "float64"), timeout=0.3)
    assert time.perf_counter() - start < 10
    assert not report.ok
    ran = [r for r in report.results if not r.reason.startswith((
        "compares a non-CPU device", "checked in float64", "checked in float32"))]
    assert all(r.status == ERROR for r in ran)
    assert "did not return within 0.3s" in ran[0].reason
    assert all("hung earlier" in r.reason for r in ran[1:])


def test_an_in_place_edit_names_the_argument():
    report = conformance.check(mutants.edits_first_input(F.binary_cross_entropy), BCE,
                               dtypes=("float32",), properties=["no_input_mutation"])
    assert "modified its argument 'input' in place" in report.failures[0].message


# --------------------------------------------------------------------------- usage errors


def test_unknown_spec_suggests_a_close_name():
    with pytest.raises(conformance.UnknownSpec, match="Did you mean 'cross_entropy'"):
        conformance.check(F.cross_entropy, "cross_entropyy")


def test_unknown_property_and_dtype_are_rejected_up_front():
    with pytest.raises(ValueError, match="no property 'nope'"):
        conformance.check(F.cross_entropy, "cross_entropy", properties=["nope"])
    with pytest.raises(ValueError, match="unknown dtype"):
        conformance.check(F.cross_entropy, "cross_entropy", dtypes=["float8"])


def test_assert_conforms_raises_with_the_report():
    with pytest.raises(conformance.ConformanceError) as info:
        conformance.assert_conforms(mutants.bce_clamped_probabilities, BCE,
                                    properties=["matches_reference"])
    assert "DOES NOT CONFORM" in str(info.value)
    assert info.value.report.failures


def test_cuda_runs_or_is_skipped_cleanly():
    report = conformance.check(F.binary_cross_entropy, BCE, devices=["cpu", "cuda"],
                               properties=["matches_reference"], dtypes=("float32",))
    assert report.ok
    devices = {r.device for r in report.results}
    if torch.cuda.is_available():
        assert devices == {"cpu", "cuda"}
    else:
        assert devices == {"cpu"}
        assert any("no CUDA device" in note for note in report.notes)


def test_device_agreement_is_skipped_with_its_reason_on_the_cpu():
    report = conformance.check(F.binary_cross_entropy, BCE, devices=["cpu"],
                               properties=["agrees_with_cpu"], dtypes=("float32",))
    (result,) = report.results
    assert result.status == "skipped" and "non-CPU device" in result.reason


def test_device_agreement_fails_when_the_two_devices_disagree():
    # Without a GPU, the property compares the CPU with itself; a target whose second call
    # differs from its first stands in for a device whose kernel differs.
    from conformance.guard import GuardedTarget, PropertyFailure
    from conformance.properties.base import Context
    from conformance.properties.generic import AGREES_WITH_CPU

    calls = []

    def drifting(input, target, weight=None, reduction="mean"):
        calls.append(reduction)
        out = F.binary_cross_entropy(input, target, weight=weight, reduction=reduction)
        return out * (1.0 if len(calls) % 2 else 0.99)

    spec = conformance.get_spec(BCE)
    ctx = Context(spec, GuardedTarget(drifting), torch.float64, "cpu")
    case = Case({"input": np.array([0.25, 0.5]), "target": np.array([1.0, 0.0])})
    assert AGREES_WITH_CPU.not_applicable(ctx) is not None
    with pytest.raises(PropertyFailure, match="cpu value differs from the cpu value"):
        AGREES_WITH_CPU.check(ctx, case)
    assert AGREES_WITH_CPU.check(
        Context(spec, GuardedTarget(F.binary_cross_entropy), torch.float64, "cpu"), case) == 0


# --------------------------------------------------------------------------- tolerance rule


def test_nan_never_passes_unless_declared():
    assert not compare(np.array(math.nan), np.array(1.0), np.array(1e9)).ok
    assert not compare(np.array(math.nan), np.array(math.nan), np.array(1e9)).ok
    assert compare(np.array(math.nan), np.array(math.nan), np.array(0.0), nan_expected=True).ok
    declared = compare(np.array(1.0), np.array(math.nan), np.array(1e9), nan_expected=True)
    assert not declared.ok and declared.problem == "the spec expects NaN here"


def test_infinities_must_match_exactly():
    assert compare(np.array(math.inf), np.array(math.inf), np.array(0.0)).ok
    assert not compare(np.array(math.inf), np.array(1e30), np.array(1e300)).ok
    assert not compare(np.array(-math.inf), np.array(math.inf), np.array(1e300)).ok


def test_upper_bound_comparison():
    assert compare(np.array([0.5, 1.0]), np.array([1.0, 1.0]), np.array(0.0), op="le").ok
    over = compare(np.array([0.5, 1.5]), np.array([1.0, 1.0]), np.array(0.1), op="le")
    assert not over.ok and over.index == (1,)


def test_rule_scales_with_dtype_eps_and_scale():
    scale = np.array([1.0, 10.0])
    f32 = DEFAULT_RULE.allowed(scale, torch.float32, 1)
    f64 = DEFAULT_RULE.allowed(scale, torch.float64, 1)
    eps32, eps64 = torch.finfo(torch.float32).eps, torch.finfo(torch.float64).eps
    assert f32[1] / f32[0] == pytest.approx(10.0)
    assert f32[0] / f64[0] == pytest.approx(eps32 / eps64)
    # Accumulating 1024 terms allows (1 + log2 1024) = 11 times more.
    assert DEFAULT_RULE.allowed(scale, torch.float32, 1024)[0] / f32[0] == pytest.approx(11.0,
                                                                                      rel=1e-6)


# --------------------------------------------------------------------------- exact printing


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_printed_case_rebuilds_the_exact_tensors(dtype):
    raw = np.array([1 / 3, -2.5e-8, 1e4, 0.1, -0.0, 65504.0 if dtype == torch.float16 else 1e30])
    case = Case({"input": raw, "target": np.array([0, 1, 2])},
                {"weight": np.array([0.7, 1 / 7])}).rounded(dtype)
    namespace: dict = {"torch": torch}
    exec(format_case(case, dtype), namespace)
    assert namespace["input"].dtype == dtype
    assert torch.equal(namespace["input"], torch.tensor(case.inputs["input"]).to(dtype))
    assert torch.equal(namespace["params"]["weight"],
                       torch.tensor(case.params["weight"]).to(dtype))
    assert namespace["target"].dtype == torch.int64


def test_reproducer_reproduces_the_failure():
    report = conformance.check(mutants.bce_clamped_probabilities, BCE,
                               properties=["matches_reference"], dtypes=("float32",))
    failure = report.failures[0]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(failure.reproducer, {})
    printed = out.getvalue()
    assert "binary_cross_entropy / matches_reference [float32, cpu]" in printed
    assert "does not hold" in printed


def test_recheck_on_a_conforming_input_says_it_holds(capsys):
    found = conformance.recheck(F.binary_cross_entropy, BCE, "matches_reference",
                                {"input": torch.tensor([0.25, 1.0]),
                                 "target": torch.tensor([1.0, 1.0])})
    assert found is None
    assert "holds on this input" in capsys.readouterr().out


def test_report_text_names_everything_a_user_needs():
    report = conformance.check(mutants.focal_alpha_on_wrong_class, "sigmoid_focal_loss",
                               properties=["matches_reference"], dtypes=("float32",))
    text = str(report)
    failure = report.failures[0]
    for needle in ("DOES NOT CONFORM", "sigmoid_focal_loss / matches_reference [float32, cpu]",
                   "parameters:", "worst error: abs", "inputs =", "reproduce:",
                   "conformance.recheck("):
        assert needle in text, needle
    assert failure.comparison is not None and failure.comparison.worst_abs > 0


# --------------------------------------------------------------------------- determinism


def test_ci_profile_verdicts_repeat_exactly():
    def run():
        report = conformance.check(mutants.ce_smoothing_over_other_classes, "cross_entropy",
                                   properties=["matches_reference"], profile="ci")
        return [(r.status, r.examples, str(r.failure) if r.failure else None)
                for r in report.results]

    assert run() == run()


def test_every_profile_runs_the_named_edge_cases():
    # Named edge cases run before any generated example: one example is enough to find
    # seed 004's focal bug, which needs a per-class alpha.
    spec = conformance.get_spec("softmax_focal_loss")
    labels = [c.label for c in spec.edge_cases]
    assert "per-class alpha with gamma=2" in labels
    report = conformance.check(mutants.softmax_focal_seed004, spec,
                               properties=["matches_reference"], dtypes=("float64",),
                               max_examples=1)
    assert report.failures[0].case.label in labels


# --------------------------------------------------------------------------- autograd misuse

GIOU = "generalized_box_iou_loss"
PULL = "disjoint_gradient_pulls_boxes_together"


def giou_without_graph(boxes1, boxes2, reduction="none", eps=1e-7):
    from implementations.boxes import generalized_box_iou_loss

    return generalized_box_iou_loss(boxes1, boxes2, reduction, eps).detach()


class _BrokenBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError("backward exploded")


def giou_broken_backward(boxes1, boxes2, reduction="none", eps=1e-7):
    from implementations.boxes import generalized_box_iou_loss

    return generalized_box_iou_loss(_BrokenBackward.apply(boxes1), boxes2, reduction, eps)


@pytest.mark.parametrize(("fn", "needle"), [
    (giou_without_graph, "no grad_fn"),
    (giou_broken_backward, "backward raised RuntimeError: backward exploded"),
])
def test_autograd_misuse_is_reported(fn, needle):
    report = conformance.check(fn, GIOU, properties=[PULL], dtypes=("float64",))
    assert not report.ok
    assert needle in report.failures[0].message


def _wrong_above_five(input, target, reduction="mean"):
    """MSE, 1.5 times too large where 5 < |input| < 100: a failure only draws reach."""
    out = F.mse_loss(input, target, reduction="none")
    out = torch.where((input.abs() > 5) & (input.abs() < 100), out * 1.5, out)
    return out if reduction == "none" else (out.mean() if reduction == "mean" else out.sum())


def test_a_failure_found_on_shared_draws_is_shrunk_for_its_own_property():
    report = conformance.check(_wrong_above_five, "mse_loss", dtypes=("float64",),
                               properties=["matches_reference", "nonnegative"])
    failure = report.failures[0]
    assert failure.property == "matches_reference" and failure.shrunk
    assert failure.input_label == "minimal (shrunk) input"
    x = failure.case.inputs["input"]
    assert x.size == 1 and 5 < abs(float(x)) < 6  # the smallest input past the threshold


def test_a_spent_shrink_budget_reports_the_input_found_and_says_so():
    report = conformance.check(_wrong_above_five, "mse_loss", dtypes=("float64",),
                               properties=["matches_reference"], shrink_budget=0.0)
    failure = report.failures[0]
    assert failure.input_label in ("first failing input (not shrunk)",
                                   "smallest failing input within the 0 s shrink budget"
                                   " (shrinking stopped there)")
    assert conformance.recheck(_wrong_above_five, "mse_loss", "matches_reference",
                               dict(zip(failure.case.inputs, failure.case.to_torch(
                                   torch.float64)[0], strict=True)), verbose=False)


def test_check_runs_one_intra_op_thread_and_restores_the_setting():
    seen = []

    def mse(input, target, reduction="mean"):
        seen.append(torch.get_num_threads())
        return F.mse_loss(input, target, reduction=reduction)

    before = torch.get_num_threads()
    torch.set_num_threads(2)  # this suite runs one thread per worker (conftest.py)
    try:
        conformance.check(mse, "mse_loss", dtypes=("float64",), max_examples=0)
        assert set(seen) == {1} and torch.get_num_threads() == 2
        seen.clear()
        conformance.check(mse, "mse_loss", dtypes=("float64",), max_examples=0, threads=None)
        assert set(seen) == {2}
    finally:
        torch.set_num_threads(before)


def test_the_gradient_property_names_an_output_with_too_few_elements():
    def drops_the_last(input, target, weight=None, reduction="mean"):
        out = F.binary_cross_entropy(input, target, weight=weight, reduction=reduction)
        return out.reshape(-1)[:-1] if reduction == "none" else out

    report = conformance.check(drops_the_last, BCE, dtypes=("float64",),
                               properties=["gradient_matches_reference"])
    failure = report.failures[0]
    assert "output shape" in failure.message and "'none'" in failure.message


@pytest.mark.parametrize("spec", [s for s in all_specs() if s.reductions],
                         ids=lambda s: s.name)
def test_the_default_reduction_is_the_one_the_signature_states(spec):
    # default_reduction_is_the_specs holds targets to the reference's default: the canonical
    # signature users read must say the same.
    assert f"reduction={spec.default_reduction!r}" in spec.signature
