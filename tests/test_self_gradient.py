"""gradient_matches_own_values: a backward checked against the target's own forward."""

from __future__ import annotations

import mutants
import pytest
import torch
import torch.nn.functional as F

from conformance import check, get_spec
from conformance.properties.registry import properties_of
from conformance.report import FAILED, PASSED
from implementations import boxes, focal

OWN = "gradient_matches_own_values"


def _status(fn, spec: str, prop: str) -> str:
    (result,) = check(fn, spec, properties=[prop], dtypes=("float64",), profile="ci").results
    return result.status


def test_every_spec_with_gradients_checks_them_against_its_own_values():
    for name in ("cross_entropy", "complete_box_iou_loss", "lovasz_hinge", "l1_loss"):
        names = [p.name for p in properties_of(get_spec(name))]
        assert names[names.index("gradient_matches_reference") + 1] == OWN


@pytest.mark.parametrize(("spec", "fn"), [
    ("sigmoid_focal_loss", focal.sigmoid_focal_loss),
    ("complete_box_iou_loss", boxes.complete_box_iou_loss),  # alpha frozen, as the spec owes
    ("generalized_box_iou_loss", boxes.generalized_box_iou_loss),
    ("cross_entropy", F.cross_entropy),
])
def test_a_conforming_backward_passes(spec, fn):
    assert _status(fn, spec, OWN) == PASSED


def test_a_detached_factor_fails_here_whatever_the_values():
    # Right values, a gradient as if (1 - p_t)^gamma were a constant weight.
    report = check(mutants.sigmoid_focal_detached_modulation, "sigmoid_focal_loss",
                   properties=["matches_reference", OWN], dtypes=("float64",), profile="ci")
    status = {r.property: r.status for r in report.results}
    assert status == {"matches_reference": PASSED, OWN: FAILED}
    failure = report.failures[0]
    assert "the backward does not" in failure.message and "match the forward" in failure.message


def test_another_convention_with_a_true_backward_passes_here():
    # eps = 1e-3 in the union: the values are another convention's, the gradient is theirs.
    report = check(mutants.giou_loss_other_eps, "generalized_box_iou_loss",
                   properties=["matches_reference", OWN], dtypes=("float64",), profile="ci")
    status = {r.property: r.status for r in report.results}
    assert status == {"matches_reference": FAILED, OWN: PASSED}


def test_the_gradient_a_spec_owes_on_purpose_is_held_to_its_declared_difference():
    # CIoU owes a gradient with alpha frozen: differentiating alpha too matches the target's
    # own values, and still fails, by the spec's declared difference.
    report = check(mutants.ciou_loss_alpha_differentiated, "complete_box_iou_loss",
                   properties=[OWN], dtypes=("float64",), profile="ci")
    failure = report.failures[0]
    assert "declared difference between its gradient" in failure.message


def test_narrow_dtypes_are_not_applicable():
    report = check(focal.sigmoid_focal_loss, "sigmoid_focal_loss", properties=[OWN],
                   dtypes=("float32", "float16"), profile="ci")
    assert all(r.status == "skipped" and "float64" in r.reason for r in report.results)


def test_a_target_that_cannot_move_is_outside_and_not_failed():
    # torch's BCE raises for a probability outside [0, 1]: cases at the edges cannot be
    # differenced and are counted apart, never failed.
    (result,) = check(F.binary_cross_entropy, "binary_cross_entropy", properties=[OWN],
                      dtypes=("float64",), profile="ci").results
    assert result.status == PASSED and result.examples > 0
    assert any(why.startswith("the target cannot be evaluated around this case")
               for why in result.outside)


def test_a_value_that_is_a_difference_of_larger_terms_is_differenced_at_their_scale():
    # A squared Dice loss of 3e-14 (1 - 0.99999999999997) moves in steps of eps(1): finite
    # differences read 0 where the gradient is 2e-14 (a default-profile draw on our own code).
    from conformance import recheck
    from implementations.segmentation import soft_dice_loss

    x = torch.tensor([[[4.5, 1e4, 88.5, 0.30276807840192116],
                       [-5.353362256036625, 1.0, 104.0, -0.006807108761773151],
                       [104.0, -0.015508809251167497, 0.5, -0.010341256664210683],
                       [6.0, 1e4, -104.0, -0.12525939917307247]]], dtype=torch.float64)
    y = torch.tensor([[255, 255, 1, 255]])
    found = recheck(soft_dice_loss, "soft_dice_loss", OWN, {"input": x, "target": y},
                    {"activation": "softmax", "ignore_index": 255, "smooth": 1.0,
                     "form": "squared"}, verbose=False)
    assert found is None
