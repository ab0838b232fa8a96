"""handles_empty_input: on a batch of 0, an empty spatial axis or no boxes, the reference's
value (0 for a sum, the spec's convention for a mean), the empty shape, a backward that runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings

from conformance import all_specs, check
from conformance.case import Case
from conformance.empty import no_boxes, no_pixels, no_samples
from conformance.report import FAILED, PASSED
from implementations import boxes

PROP = "handles_empty_input"


def _result(fn, spec: str):
    (result,) = check(fn, spec, properties=[PROP], dtypes=("float32",), profile="ci").results
    return result


def test_each_form_empties_one_axis_and_the_weights_that_broadcast_along_it():
    x = np.zeros((2, 3, 4))
    case = Case({"input": x, "target": x}, {"weight": np.ones((2, 3, 4)),
                                           "pos_weight": np.ones(4), "scale": np.ones(1)})
    batch = no_samples(along=("weight", "pos_weight", "scale")).make(case)
    assert batch.inputs["input"].shape == batch.inputs["target"].shape == (0, 3, 4)
    # weight has the batch axis; pos_weight (one per class, last axis) and a length-1 scale
    # broadcast as they are
    assert batch.params["weight"].shape == (0, 3, 4)
    assert batch.params["pos_weight"].shape == (4,)
    assert batch.params["scale"].shape == (1,)
    space = no_pixels(along=("weight", "pos_weight")).make(case)
    assert space.inputs["input"].shape == (2, 3, 0)
    assert space.params["weight"].shape == (2, 3, 0) and space.params["pos_weight"].shape == (0,)
    # an index target loses the same axes as its (N, C, d) scores
    ce = Case({"input": np.zeros((2, 3, 4)), "target": np.zeros((2, 4), dtype=np.int64)})
    assert no_pixels().make(ce).inputs["target"].shape == (2, 0)
    b = np.zeros((2, 4))
    assert no_boxes("boxes2").make(Case({"boxes1": b, "boxes2": b})).inputs["boxes2"].shape == (
        0, 4)
    # Where the axis is not there the form says so: no batch axis in unbatched (C,) scores.
    assert no_samples(min_ndim=2).make(Case({"input": np.zeros(3), "target": np.array(1)})) \
        is None
    assert no_pixels().make(Case({"input": np.zeros((2, 3)), "target": np.zeros(2)})) is None


def _drawn(spec, n: int = 15) -> list[Case]:
    cases: list[Case] = []

    @settings(max_examples=n, database=None, derandomize=True, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(spec.cases())
    def collect(case):
        cases.append(case)

    collect()
    return cases


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.name)
def test_every_spec_owes_a_value_on_each_of_its_empty_forms(spec):
    assert spec.empty, f"{spec.name} declares no empty form"
    applied = 0
    for form in spec.empty:
        for case in (*spec.edge_cases, *_drawn(spec)):
            empty = form.make(case)
            if empty is None:
                continue
            applied += 1
            for reduction in spec.calls:
                value = spec.call_reference(empty, reduction)
                # NaN is owed only as torch's 0/0 mean over nothing (dice_ce_loss, called
                # without a reduction, holds a cross-entropy mean); a sum of no element is 0
                # (a region loss still has its class entries: 1 each at smooth = 0)
                assert np.all(np.isfinite(value) | ((reduction in ("mean", "batchmean", None))
                                                    & np.isnan(value))), (form.name, reduction)
                if reduction == "sum" and spec.call_reference(empty, "none").size == 0:
                    assert value == 0.0
    assert applied, f"no case of {spec.name} has an axis its empty forms empty"


@pytest.mark.parametrize(("spec", "fn"), [
    ("cross_entropy", F.cross_entropy),  # 'mean' over no target is NaN, 'none' is (0,)
    ("kl_div", F.kl_div),
    ("mse_loss", F.mse_loss),
    ("generalized_box_iou_loss", boxes.generalized_box_iou_loss),  # mean of no box is 0
    ("box_iou", boxes.box_iou),
])
def test_a_target_that_follows_the_conventions_passes(spec, fn):
    assert _result(fn, spec).status == PASSED


def _mean_over_nothing_is_zero(input, target, weight=None, ignore_index=-100, reduction="mean",
                               label_smoothing=0.0):
    """A 'safe' mean, sum / max(count, 1): 0 where torch's convention is NaN."""
    loss = F.cross_entropy(input, target, weight=weight, ignore_index=ignore_index,
                           reduction="none" if reduction == "mean" else reduction,
                           label_smoothing=label_smoothing)
    if reduction != "mean":
        return loss
    if loss.numel():
        return F.cross_entropy(input, target, weight=weight, ignore_index=ignore_index,
                               label_smoothing=label_smoothing)
    return loss.sum() / max(loss.numel(), 1)


def _mean_of_no_box_is_nan(boxes1, boxes2, reduction="none", eps=1e-7):
    """Our box loss before the empty check: loss.mean() of no box, NaN where torchvision
    (whose call the spec is) returns 0."""
    loss = boxes.generalized_box_iou_loss(boxes1, boxes2, reduction="none", eps=eps)
    return loss.mean() if reduction == "mean" else (loss.sum() if reduction == "sum" else loss)


def _detached_zero_for_no_box(boxes1, boxes2, reduction="none", eps=1e-7):
    """Returns a constant 0 for no box: the right value, and a training step on a batch
    without objects crashes in backward."""
    if boxes1.numel() == 0 and reduction != "none":
        return torch.zeros((), dtype=boxes1.dtype)
    return boxes.generalized_box_iou_loss(boxes1, boxes2, reduction=reduction, eps=eps)


def _stacks_per_image(input, target, **kwargs):
    """Per-sample losses gathered by torch.stack of a list: raises on a batch of 0."""
    each = torch.stack([F.mse_loss(x, y, reduction="none") for x, y in zip(input, target,
                                                                           strict=True)])
    return F.mse_loss(input, target, **kwargs) if each.numel() else each


@pytest.mark.parametrize(("spec", "fn", "message"), [
    ("cross_entropy", _mean_over_nothing_is_zero, "the spec expects NaN here: got 0.0"),
    ("generalized_box_iou_loss", _mean_of_no_box_is_nan, "NaN where a finite value"),
    ("generalized_box_iou_loss", _detached_zero_for_no_box, "carries no gradient"),
])
def test_a_target_with_another_empty_value_or_no_backward_fails(spec, fn, message):
    result = _result(fn, spec)
    assert result.status == FAILED
    assert message in result.failure.message, result.failure.message
    assert "no boxes" in result.failure.message or "batch of 0" in result.failure.message


def test_a_target_that_raises_on_an_empty_batch_fails_with_the_error():
    result = _result(_stacks_per_image, "mse_loss")
    assert result.status == FAILED
    assert "stack expects a non-empty TensorList" in result.failure.message


def test_torchvision_box_losses_follow_their_own_empty_convention():
    try:
        from implementations.adapters.torchvision_ops import generalized_box_iou_loss
    except ImportError as exc:
        pytest.skip(f"torchvision is not importable: {exc}")

    assert _result(generalized_box_iou_loss, "generalized_box_iou_loss").status == PASSED


def test_a_float64_only_spec_checks_empty_input_in_float64():
    from implementations.segmentation import jaccard_index

    report = check(jaccard_index, "jaccard_index", properties=[PROP], profile="ci")
    ran = [r for r in report.results if r.examples]
    assert [r.dtype for r in ran] == ["float64"] and ran[0].status == PASSED
