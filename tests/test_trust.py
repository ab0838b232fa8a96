"""No false alarms on correct code: the regressions of issue 11, one test each.

Each test fails on the engine as it was before the fix: a reference undefined on a drawn case,
a relation's transformed case outside the domain, rounding that leaves the domain, shrinking
onto an undefined reference, a gradient oracle tighter than its own error, memory layout
leaking into values, "no evidence" reported as nonconformance, and reproducers that do not run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import conformance
from conformance import NotApplicable, check, get_spec, recheck
from conformance.case import Case
from conformance.cli import EXIT_NO_EVIDENCE, load_target
from conformance.properties.registry import properties_of
from conformance.report import FAILED, NO_EVIDENCE, SKIPPED
from conformance.spec import UNDEFINED_REFERENCE
from implementations import boxes, segmentation

ENV = {**os.environ, "CONFORMANCE_PROFILE": "ci", "OMP_NUM_THREADS": "1"}


def _edge_cases_only(spec_name: str, *cases: Case):
    """The spec with exactly these named cases, run with max_examples=0 (no draws)."""
    return dataclasses.replace(get_spec(spec_name), edge_cases=cases)


def _not_failed(report) -> list[str]:
    return [f"{r.property} [{r.dtype}]: {r.failure.message if r.failure else r.reason}"
            for r in report.results if r.status not in ("passed", "skipped", "deviation")]


# 1. At eps = 0 two zero-area boxes have IoU = 0 / 0: outside the domain, never a failure.
@pytest.mark.parametrize("name", ["iou_loss", "generalized_box_iou_loss",
                                  "distance_box_iou_loss"])
def test_zero_area_pair_at_eps_zero_is_outside_the_domain(name):
    point = np.array([[0.0, -0.5, 0.0, 0.5]])
    case = Case({"boxes1": point, "boxes2": point.copy()}, {"eps": 0.0}, label="0/0 at eps=0")
    spec = _edge_cases_only(name, case)
    assert spec.outside_domain(case, torch.float64) == (
        "at eps = 0, a pair of zero-area boxes has IoU = 0 / 0")
    report = check(getattr(boxes, name), spec, max_examples=0, dtypes=("float64",))
    assert not _not_failed(report)
    # Properties that take the case as it is find it outside (those that widen the boxes first,
    # the invariances, do not).
    as_drawn = [r for r in report.results if r.property in (
        "matches_reference", "reduction_consistency", "symmetric_in_the_two_boxes")]
    assert len(as_drawn) == 3 and all(r.drawn == 1 and r.outside and not r.examples
                                      for r in as_drawn)


# 2. CIoU at eps = 0, float32: nearly identical thin boxes make alpha 0 / 0 in the dtype.
def test_ciou_invariances_skip_nearly_identical_boxes_at_eps_zero():
    a = np.array([[-0.5, -0.05, 0.5, 0.05]])
    b = np.array([[-0.5, -0.0499999933, 0.5, 0.0500000045]])
    spec = _edge_cases_only("complete_box_iou_loss",
                            Case({"boxes1": a, "boxes2": b}, label="nearly identical"))
    report = check(boxes.complete_box_iou_loss, spec, max_examples=0, dtypes=("float32",),
                   properties=["scale_invariant", "translation_invariant"])
    assert not _not_failed(report)
    assert all("nearly identical" in why for r in report.results for why in r.outside)


# 3. bfloat16 rounds a small box to a point: the domain is judged after rounding.
def test_a_box_that_rounding_makes_degenerate_is_outside_the_domain():
    def ciou_without_nan(*args, **kwargs):  # right wherever the spec owes a value
        return torch.nan_to_num(boxes.complete_box_iou_loss(*args, **kwargs))

    case = Case({"boxes1": np.array([[130.0, 130.0, 130.3, 130.3], [0.0, 0.0, 1.0, 1.0]]),
                 "boxes2": np.array([[120.0, 120.0, 140.0, 140.0], [0.0, 0.0, 2.0, 1.0]])},
                label="a box that bfloat16 rounds to a point")
    spec = _edge_cases_only("complete_box_iou_loss", case)
    # Zeroing every NaN also zeroes the NaN owed for an inverted box: that property aside.
    kept = [p.name for p in properties_of(spec) if p.name != "rejects_invalid_input"]
    report = check(ciou_without_nan, spec, max_examples=0, dtypes=("bfloat16", "float32"),
                   properties=kept)
    assert not _not_failed(report)
    narrow = [r for r in report.results if r.dtype == "bfloat16" and r.drawn]
    assert narrow and all(r.examples == 0 and r.outside for r in narrow)
    assert any(r.examples for r in report.results if r.dtype == "float32")


# 4. Shrinking never walks from a real failure onto an undefined reference, and what it
# reports is a real failure: the conforming implementation holds on the reported input.
def giou_eps_in_numerator(boxes1, boxes2, reduction="none", eps=1e-7):
    """A wrong eps placement: (inter + eps) / (union + eps)."""
    inter = (torch.min(boxes1[..., 2:], boxes2[..., 2:]) - torch.max(
        boxes1[..., :2], boxes2[..., :2])).clamp(min=0).prod(-1)
    area = (boxes1[..., 2:] - boxes1[..., :2]).prod(-1) + (
        boxes2[..., 2:] - boxes2[..., :2]).prod(-1)
    iou = (inter + eps) / (area - inter + eps)
    hull = (torch.max(boxes1[..., 2:], boxes2[..., 2:]) - torch.min(
        boxes1[..., :2], boxes2[..., :2])).prod(-1)
    loss = 1 - iou + (hull - (area - inter)) / (hull + eps)
    return loss if reduction == "none" else loss.mean() if reduction == "mean" else loss.sum()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shrinking_stays_on_a_real_failure(seed):
    report = check(giou_eps_in_numerator, "generalized_box_iou_loss", dtypes=("float64",),
                   properties=["matches_reference"], profile="default", seed=seed)
    failure = report.failures[0]
    assert "the reference is NaN" not in failure.message
    assert get_spec("generalized_box_iou_loss").outside_domain(
        failure.case, torch.float64) is None
    args, params = failure.case.to_torch(torch.float64)
    assert recheck(boxes.generalized_box_iou_loss, "generalized_box_iou_loss",
                   "matches_reference", dict(zip(failure.case.inputs, args, strict=True)),
                   params, verbose=False) is None


def test_an_undefined_reference_is_counted_as_a_gap_of_the_spec():
    # A spec without its domain declaration: the engine still never blames the target.
    spec = dataclasses.replace(get_spec("generalized_box_iou_loss"), domain=None)
    point = np.array([[0.0, -0.5, 0.0, 0.5]])
    spec = dataclasses.replace(spec, edge_cases=(
        Case({"boxes1": point, "boxes2": point.copy()}, {"eps": 0.0}, label="0/0"),))
    report = check(boxes.generalized_box_iou_loss, spec, max_examples=0, dtypes=("float64",))
    assert not _not_failed(report)
    assert any(UNDEFINED_REFERENCE in r.outside for r in report.results)


# 5. The float64 gradient oracle's own error: KL near its minimum is a difference of O(1) terms.
def test_kl_div_gradient_near_its_minimum_is_within_the_oracle_error():
    found = recheck(F.kl_div, "kl_div", "gradient_matches_reference",
                    {"input": torch.tensor([[-1.0986122886681096] * 3], dtype=torch.float64),
                     "target": torch.tensor([[1 / 3] * 3], dtype=torch.float64)},
                    verbose=False)
    assert found is None


def test_a_kink_of_a_box_far_narrower_than_its_coordinate_is_read_below_its_width():
    # Touching boxes at x = 3219, the left one 1e-3 wide: the one-sided derivative at the kink
    # was read at steps of |x| * 1e-6 = 3e-3, past the narrow box's other edge (a false alarm
    # on our own iou_loss, found when box drawing moved to conformance.elements).
    found = recheck(boxes.iou_loss, "iou_loss", "gradient_matches_reference",
                    {"boxes1": torch.tensor([[3219.6815504087776, -0.05, 3219.682550408778, 0.05]],
                                            dtype=torch.float64),
                     "boxes2": torch.tensor([[3219.682550408778, -0.05, 3222.914972587332, 0.05]],
                                            dtype=torch.float64)},
                    verbose=False)
    assert found is None


def test_a_kink_read_at_a_tiny_step_is_not_drowned_in_rounding():
    # The other side of the test above: touching boxes of ordinary size, where the shortest
    # steps' rounding (8 eps |f| / h, 2e-7 at h = 1e-8) exceeds a kink's old fixed error
    # allowance. The kink is read where its one-sided derivatives are steadiest.
    unit = [-0.05, -0.05, 0.05, 0.05]
    found = recheck(boxes.complete_box_iou_loss, "complete_box_iou_loss",
                    "gradient_matches_reference",
                    {"boxes1": torch.tensor([unit], dtype=torch.float64),
                     "boxes2": torch.tensor([[0.05, -0.05, 0.15000000000000002, 333.7124849217484]],
                                            dtype=torch.float64)},
                    verbose=False)
    assert found is None


def test_a_kink_too_small_to_tell_from_smooth_allows_either_side():
    # Touching boxes where the union nearly equals the enclosing box: GIoU's one-sided
    # derivatives along the touching edge differ by 3e-6 relative, inside the smooth test's
    # tolerance, so the point was read as smooth with an error of 3e-12 and our own
    # generalized_box_iou_loss (the left derivative) failed (a default-profile draw).
    found = recheck(boxes.generalized_box_iou_loss, "generalized_box_iou_loss",
                    "gradient_matches_reference",
                    {"boxes1": torch.tensor([[-3257.0591823503314, -4.658896295501105,
                                              3257.0591823503314, 4.658896295501105]],
                                            dtype=torch.float64),
                     "boxes2": torch.tensor([[3257.0591823503314, -4.658896295501105,
                                              3260.3162418903808, 4.606338486865349]],
                                            dtype=torch.float64)},
                    verbose=False)
    assert found is None


@pytest.mark.parametrize(("fn", "name", "inputs", "params"), [
    # 1 - (1 - (-8.2e-7)) is -8.2e-7 in float64 and 0 in bfloat16: torch sits on the kink
    # the reference is 8e-7 away from (a soak draw).
    (F.margin_ranking_loss, "margin_ranking_loss",
     {"input1": torch.tensor([1.0], dtype=torch.bfloat16),
      "input2": torch.tensor([-8.23e-07], dtype=torch.bfloat16),
      "target": torch.tensor([1.0], dtype=torch.bfloat16)}, {"margin": 1.0}),
    # A distance drawn equal to the margin: float32(0.3) is 1.2e-8 from 0.3, torch's
    # margin - x is 0.
    (F.hinge_embedding_loss, "hinge_embedding_loss",
     {"input": torch.tensor([0.3, 2.0]), "target": torch.tensor([-1.0, 1.0])}, {"margin": 0.3}),
    # A dissimilar pair whose cosine is 2e-3 above the margin in float64; bfloat16 puts it
    # below, where the hinge is flat.
    (F.cosine_embedding_loss, "cosine_embedding_loss",
     {"input1": torch.tensor([[0.56640625, 1.875, 1.1953125, 0.9921875]], dtype=torch.bfloat16),
      "input2": torch.tensor([[0.51953125, -0.490234375, 3.515625, -0.81640625]],
                             dtype=torch.bfloat16),
      "target": torch.tensor([-1.0], dtype=torch.bfloat16)}, {"margin": 0.3}),
    # Identical anchor, positive and negative under swap: eps puts the kinks of |a - p + eps|
    # and |p - n + eps| 1e-6 on either side of the min's tie, inside the long steps, which read
    # an interval that excludes the tie's own (a ci profile draw).
    (F.triplet_margin_loss, "triplet_margin_loss",
     {"anchor": torch.tensor([10.013504028320312]),
      "positive": torch.tensor([10.013504028320312]),
      "negative": torch.tensor([10.013504028320312])}, {"swap": True}),
])
def test_a_hinge_closer_to_its_kink_than_the_dtype_resolves_is_not_judged_there(
        fn, name, inputs, params):
    bare = dataclasses.replace(get_spec(name), gradient_domain=None)
    assert recheck(fn, bare, "gradient_matches_reference", inputs, params, verbose=False)
    assert recheck(fn, name, "gradient_matches_reference", inputs, params, verbose=False) is None


# 6. Memory layout: values properties hand contiguous tensors; layout is its own property.
def test_transformed_cases_reach_the_target_contiguous():
    transposed = np.arange(6.0).reshape(2, 3).T
    args, _ = Case({"input": transposed}).to_torch(torch.float32)
    assert args[0].is_contiguous()


def dice_through_view(input, target, **kwargs):
    """Our soft Dice after a `.view`: right on contiguous tensors, raises on strided ones."""
    return segmentation.soft_dice_loss(input.view(-1).view(input.shape), target, **kwargs)


def test_a_view_based_loss_fails_only_the_layout_property():
    report = check(dice_through_view, "soft_dice_loss", dtypes=("float64",))
    failed = {r.property for r in report.results if r.status == FAILED}
    assert failed == {"accepts_non_contiguous_input"}, _not_failed(report)
    failure = report.failures[0]
    assert "conformance.layout.strided(" in failure.reproducer
    proc = subprocess.run([sys.executable, "-c", failure.reproducer],
                          cwd=Path(__file__).parent, env=ENV, capture_output=True, text=True,
                          timeout=300, check=False)
    # The print line calls the target on the same strided tensors: it raises as it did.
    assert "view size is not compatible" in proc.stderr, proc.stdout + proc.stderr


# 7. No evidence is not a verdict of nonconformance.
def never_applies(input, target, **kwargs):
    raise NotApplicable("this target takes 5-D inputs only")


def test_no_evidence_is_its_own_verdict():
    report = check(never_applies, "mse_loss", dtypes=("float32",))
    assert report.verdict == NO_EVIDENCE and not report.ok and not report.failures
    text = str(report)
    assert text.splitlines()[0].endswith("NO EVIDENCE")
    assert "drawn cases applied" in text and "this target takes 5-D inputs only" in text
    assert all(r.status == SKIPPED for r in report.results)
    with pytest.raises(conformance.ConformanceError):
        conformance.assert_conforms(never_applies, "mse_loss", dtypes=("float32",))


def test_no_evidence_exit_code(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "conformance", "check", "test_trust:never_applies", "--spec",
         "mse_loss", "--dtype", "float32"],
        cwd=Path(__file__).parent, env=ENV, capture_output=True, text=True, timeout=300,
        check=False)
    assert proc.returncode == EXIT_NO_EVIDENCE, proc.stdout + proc.stderr
    assert "NO EVIDENCE" in proc.stdout


# 8. Reproducers run as printed, for a file target too; an unshrunk input says so.
BUGGY_FILE = '''
import torch.nn.functional as F


def mse(input, target, reduction="mean"):
    out = F.mse_loss(input, target, reduction="sum" if reduction == "mean" else reduction)
    return out
'''


def test_a_file_target_reproducer_runs_as_printed(tmp_path):
    path = tmp_path / "my_losses.py"
    path.write_text(BUGGY_FILE)
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "conformance", "check", f"{path}:mse", "--spec", "mse_loss",
         "--property", "matches_reference", "--dtype", "float64", "--no-shrink",
         "--json", str(out)],
        cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [report] = json.loads(out.read_text())
    failure = next(r["failure"] for r in report["results"] if r["failure"])
    assert f"{failure['input']}:" in proc.stdout
    assert "from /" not in failure["reproducer"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = subprocess.run([sys.executable, "-c", failure["reproducer"]], cwd=elsewhere, env=ENV,
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    assert failure["message"] in run.stdout


def test_an_input_that_was_not_shrunk_says_so():
    def mean_is_sum(input, target, reduction="mean"):
        return F.mse_loss(input, target, reduction="sum" if reduction == "mean" else reduction)

    no_edge_cases = _edge_cases_only("mse_loss")
    unshrunk = check(mean_is_sum, no_edge_cases, properties=["matches_reference"],
                     dtypes=("float64",), shrink=False).failures[0]
    assert unshrunk.input_label == "first failing input (not shrunk)"
    assert "first failing input (not shrunk):" in str(unshrunk)
    shrunk = check(mean_is_sum, no_edge_cases, properties=["matches_reference"],
                   dtypes=("float64",)).failures[0]
    assert "minimal (shrunk) input:" in str(shrunk)


def test_the_cli_loads_the_same_file_target(tmp_path):
    path = tmp_path / "my_losses.py"
    path.write_text(BUGGY_FILE)
    assert callable(load_target(f"{path}:mse"))


def test_a_focal_backward_that_overflows_float16_is_outside_its_domain_not_a_failure():
    # Soak seed 500: logit 1e4, target 0, gamma 5 in float16. The loss (1e4) fits; autograd of
    # BCE (1 - p_t)^gamma multiplies the cotangent by BCE and gamma (1 - p_t)^(gamma - 1),
    # which overflows to inf, and inf times the sigmoid's vanished slope is NaN, in
    # torchvision's formula and ours alike. Such a case is outside float16's domain.
    from implementations.focal import sigmoid_focal_loss

    x = torch.tensor([10000.0, 0.5], dtype=torch.float16, requires_grad=True)
    t = torch.tensor([0.0, 1.0], dtype=torch.float16)
    out = sigmoid_focal_loss(x, t, alpha=-1.0, gamma=5.0, reduction="none")
    (out * torch.tensor([1.5, 1.0], dtype=torch.float16)).sum().backward()
    assert torch.isfinite(out).all() and torch.isnan(x.grad[0])
    case = Case({"inputs": np.array([10000.0, 0.5]), "targets": np.array([0.0, 1.0])},
                {"alpha": -1.0, "gamma": 5.0})
    spec = get_spec("sigmoid_focal_loss")
    assert "range" in spec.outside_domain(case, torch.float16)
    assert spec.outside_domain(case, torch.float32) is None
    assert recheck(sigmoid_focal_loss, spec, "gradient_matches_reference",
                   {"inputs": x.detach().float(), "targets": t.float()},
                   {"alpha": -1.0, "gamma": 5.0}, verbose=False) is None


def test_a_softmax_focal_backward_that_overflows_float16_is_outside_its_domain():
    # A default-profile run (2026-12-02): logits 1e4 apart, gamma 5, in float16. The loss
    # (about 1e4) fits; autograd of CE (1 - p_t)^gamma multiplies the cotangent by CE and by
    # gamma (1 - p_t)^(gamma - 1), which overflows to inf, and inf times the vanished slope of
    # p_t is NaN. Such a case is outside float16's domain, as for the sigmoid focal loss.
    from implementations.focal import softmax_focal_loss

    logits = [[10000.0, -1.0], [0.5, -0.5]]
    x = torch.tensor(logits, dtype=torch.float16, requires_grad=True)
    y = torch.tensor([1, 0])
    out = softmax_focal_loss(x, y, gamma=5.0, reduction="none")
    (out * torch.tensor([1.5, 1.0], dtype=torch.float16)).sum().backward()
    assert torch.isfinite(out).all() and torch.isnan(x.grad[0]).any()
    case = Case({"input": np.array(logits), "target": np.array([1, 0])}, {"gamma": 5.0})
    spec = get_spec("softmax_focal_loss")
    assert "range" in spec.outside_domain(case, torch.float16)
    assert spec.outside_domain(case, torch.float32) is None
    assert recheck(softmax_focal_loss, spec, "gradient_matches_reference",
                   {"input": x.detach().float(), "target": y}, {"gamma": 5.0},
                   verbose=False) is None


def test_a_multilabel_class_term_that_overflows_float16_is_outside_its_domain():
    # Soak, seed 2 (2026-12-02): a weight of 6.6 on a logit of -1e4 against label 1 makes a
    # class term of 6.6e4, past float16's range, before the class mean (2.2e4) that fits.
    import torch.nn.functional as F

    x = torch.tensor([0.0, 0.0, -10000.0], dtype=torch.float16)
    y = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float16)
    w = torch.tensor([1.0, 1.0, 6.61328125], dtype=torch.float16)
    assert torch.isinf(F.multilabel_soft_margin_loss(x, y, weight=w, reduction="none"))
    case = Case({"input": x.double().numpy(), "target": y.double().numpy()},
                {"weight": w.double().numpy()})
    spec = get_spec("multilabel_soft_margin_loss")
    assert "range" in spec.outside_domain(case, torch.float16)
    assert spec.outside_domain(case, torch.float32) is None
    assert recheck(F.multilabel_soft_margin_loss, spec, "matches_reference",
                   {"input": x.float(), "target": y.float()}, {"weight": w.float()},
                   verbose=False) is None


def test_boxes_too_small_for_their_coordinates_are_not_judged_for_their_pull():
    # A default-profile run (2026-12-02): boxes one float32 ulp wide at x = 8260, moved apart
    # by half a side in float64, touch once rounded, and their centres round together:
    # torchvision's DIoU gradient along the offset is exactly 0 there, as any float32
    # computation's may be. Such pairs are outside the property; the others are judged.
    from conformance.specs.boxes import RESOLUTION, _resolved_apart

    b1 = np.array([[8260.0634765625, 8260.0634765625, 8260.064453125, 8260.064453125],
                   [-0.05, -0.05, 0.05, 0.05]])
    b2 = np.array([[8260.064453125, 8260.064453125, 8260.0654296875, 8260.0654296875],
                   [0.1, 0.1, 0.2, 0.2]])
    offset = (b2[:, :2] + b2[:, 2:] - b1[:, :2] - b1[:, 2:]) / 2
    assert _resolved_apart(b1, b2, offset, torch.float32).tolist() == [False, True]
    assert not _resolved_apart(b1[:1], b2[:1], offset[:1], torch.float32).any()
    assert "64 of its ulps" in RESOLUTION
    from implementations.boxes import distance_box_iou_loss

    x1 = torch.tensor(b1, dtype=torch.float32)
    x2 = torch.tensor(b2, dtype=torch.float32)
    assert recheck(distance_box_iou_loss, "distance_box_iou_loss",
                   "disjoint_gradient_pulls_boxes_together", {"boxes1": x1, "boxes2": x2},
                   {"eps": 1e-7}, verbose=False) is None


# CTC's 'mean' divides each sample's loss by its own target length (clamped to 1) before the
# mean: no one number divides the sum of 'none' into it. A spec may declare one divisor per
# element, and reduce, reduction_consistency and the gradient's weights all apply it.
def test_a_mean_with_a_divisor_per_element_is_judged_as_such():
    from mutants import ctc_in_torch

    from conformance.properties.gradient import reduction_weights
    from reference.reduction import reduce

    values, divisors = np.array([3.0, 8.0, 5.0]), np.array([3.0, 1.0, 2.0])
    assert float(reduce(values, "mean", divisors)) == pytest.approx((1.0 + 8.0 + 2.5) / 3)
    assert np.isnan(reduce(np.zeros(0), "mean", np.zeros(0)))  # a mean over nothing
    spec = get_spec("ctc_loss")
    case = next(c for c in spec.edge_cases if "empty target" in (c.label or ""))
    lengths = case.inputs["target_lengths"]
    assert list(spec.denominator(case, "mean")) == list(np.maximum(lengths, 1))
    weights = reduction_weights(spec, case, "mean", np.array(1.0), (3,))
    assert list(weights) == pytest.approx(list(1.0 / (3 * np.maximum(lengths, 1))))
    report = check(ctc_in_torch, _edge_cases_only("ctc_loss", case), max_examples=0,
                   dtypes=("float64",), properties=["reduction_consistency",
                                                    "gradient_matches_reference"])
    assert report.ok, _not_failed(report)


# The gradient of a CTC loss exponentiates differences of path sums, exp(alpha + beta - log p):
# whatever keeps them in float16 has their ulps in the exponent (8 at a path sum of 1e4), a
# relative error of the gradient that the loss's size does not make small. Judged against the
# value's conditioning alone, a correct float16 recursion failed (the ci profile's draws).
def test_a_ctc_gradient_in_float16_is_judged_by_its_path_sums():
    from mutants import ctc_in_torch

    spec = get_spec("ctc_loss")
    log_probs = torch.tensor([[[0.0, -7000.0]], [[-3000.0, 0.0]], [[-0.2298583984375,
                              -1.5830078125]], [[0.0, -10000.0]]], dtype=torch.float16)
    given = {"log_probs": log_probs, "targets": torch.tensor([[1, 1]]),
             "input_lengths": torch.tensor([4]), "target_lengths": torch.tensor([2])}
    assert recheck(ctc_in_torch, spec, "gradient_matches_reference", given,
                   verbose=False) is None
    value_only = dataclasses.replace(spec, gradient_condition=None)
    assert recheck(ctc_in_torch, value_only, "gradient_matches_reference", given,
                   verbose=False) is not None
    # In float64 the same backward is held to its derivative as tightly as ever.
    wide = {**given, "log_probs": log_probs.double()}
    assert recheck(ctc_in_torch, spec, "gradient_matches_reference", wide,
                   verbose=False) is None
