"""rejects_invalid_input: an invalid input gets an error (or a declared NaN), never a value."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conformance import check, get_spec
from conformance.case import Case
from conformance.invalid import batch_of_one, inverted_box, label_out_of_range, weight_too_long
from conformance.properties.registry import properties_of
from conformance.report import FAILED, PASSED, SKIPPED
from implementations import boxes
from implementations.reduction import reduce_loss

PROP = "rejects_invalid_input"


def _result(fn, spec: str):
    (result,) = check(fn, spec, properties=[PROP], dtypes=("float32",), profile="ci").results
    return result


def test_each_invalid_form_changes_exactly_what_it_names():
    b = np.array([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 2.0, 1.0]])
    inverted = inverted_box("boxes1").make(Case({"boxes1": b, "boxes2": b}))
    assert inverted.inputs["boxes1"].tolist() == [[0.0, 0.0, 0.0, 1.0], [2.0, 0.0, 0.0, 1.0]]
    ce = Case({"input": np.zeros((2, 3)), "target": np.array([-100, 1])},
              {"ignore_index": -100, "weight": np.ones(3)})
    assert label_out_of_range().make(ce).inputs["target"].tolist() == [-100, 3]
    assert weight_too_long().make(ce).params["weight"].shape == (4,)
    assert batch_of_one().make(ce).inputs["target"].tolist() == [-100]
    # Where a form cannot apply it says so, and the case is not used.
    assert batch_of_one().make(Case({"input": np.zeros(1), "target": np.zeros(1)})) is None
    assert label_out_of_range().make(ce.with_inputs(target=np.zeros((2, 3)))) is None


@pytest.mark.parametrize(("spec", "fn"), [
    ("cross_entropy", F.cross_entropy),  # raises for a label of C, a weight of C + 1, a batch
    ("nll_loss", F.nll_loss),
    ("binary_cross_entropy", F.binary_cross_entropy),
    ("generalized_box_iou_loss", boxes.generalized_box_iou_loss),  # NaN for an inverted box
    ("box_iou", boxes.box_iou),
])
def test_a_target_that_refuses_passes(spec, fn):
    assert _result(fn, spec).status == PASSED


def _scores_inverted_boxes(boxes1, boxes2, reduction="none", eps=1e-7):
    """IoU loss from signed widths: an inverted box is scored as a box."""
    w = (torch.minimum(boxes1[:, 2], boxes2[:, 2]) - torch.maximum(boxes1[:, 0], boxes2[:, 0]))
    h = (torch.minimum(boxes1[:, 3], boxes2[:, 3]) - torch.maximum(boxes1[:, 1], boxes2[:, 1]))
    inter = w.clamp(min=0) * h.clamp(min=0)
    area = ((boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
            + (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1]))
    return reduce_loss(1 - inter / (area - inter + eps), reduction)


def _clamps_labels(input, target, weight=None, ignore_index=-100, reduction="mean",
                   label_smoothing=0.0):
    """Cross-entropy that clamps class indices into range instead of refusing them."""
    if not target.is_floating_point():
        classes = input.shape[0 if input.dim() == 1 else 1]
        target = torch.where(target == ignore_index, target, target.clamp(max=classes - 1))
    return F.cross_entropy(input, target, weight=weight, ignore_index=ignore_index,
                           reduction=reduction, label_smoothing=label_smoothing)


def test_an_inverted_box_scored_as_a_box_fails():
    result = _result(_scores_inverted_boxes, "iou_loss")
    assert result.status == FAILED
    message = result.failure.message
    assert message.startswith("on an inverted box in boxes1 (x2 < x1) (boxes1=[[")
    assert "an error or NaN is owed" in message and "without a warning" in message


def test_a_label_clamped_into_range_fails():
    result = _result(_clamps_labels, "cross_entropy")
    assert result.status == FAILED
    assert "a class index in target equal to the number of classes" in result.failure.message


def test_a_silent_broadcast_of_the_target_batch_fails_and_a_warned_one_says_so():
    silent = _result(F.kl_div, "kl_div")
    assert silent.status == FAILED and "without a warning" in silent.failure.message
    warned = _result(F.mse_loss, "mse_loss")
    assert warned.status == FAILED
    assert "warning 'Using a target size" in warned.failure.message


def test_only_float32_runs_it():
    report = check(F.cross_entropy, "cross_entropy", properties=[PROP],
                   dtypes=("float64", "float16"), profile="ci")
    assert {r.status for r in report.results} == {SKIPPED}


def test_the_specs_that_declare_invalid_forms_have_the_property():
    for name in ("iou_loss", "box_iou", "cross_entropy", "kl_div", "l1_loss"):
        assert PROP in [p.name for p in properties_of(get_spec(name))]
    assert PROP not in [p.name for p in properties_of(get_spec("lovasz_hinge"))]


def test_show_lists_the_invalid_forms_and_regimes(capsys):
    from conformance.cli import main

    assert main(["show", "cross_entropy"]) == 0
    out = capsys.readouterr().out
    assert "a class index in target equal to the number of classes (raise or NaN)" in out
    assert "regimes (a deviation's `when`): every_target_ignored" in out
