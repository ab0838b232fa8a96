"""Every finding in docs/findings.md, re-run: the suite must still see it."""

from __future__ import annotations

import pytest
import torch

import conformance

CIOU = "complete_box_iou_loss"
# docs/findings.md, finding 1: the minimal input.
BOXES1 = torch.tensor([[0.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
BOXES2 = torch.tensor([[0.5, 0.0, 1.5, 1.0]], dtype=torch.float64)


@pytest.fixture(scope="module")
def torchvision_ciou():
    try:
        from implementations.torchvision_ops import complete_box_iou_loss
    except ImportError as exc:
        pytest.skip(f"torchvision is not importable: {exc}")
    return complete_box_iou_loss


def test_torchvision_ciou_ignores_eps_in_its_diou_part(torchvision_ciou):
    # The loss of these boxes does not move with eps in torchvision ...
    values = {eps: torchvision_ciou(BOXES1, BOXES2, eps=eps).item() for eps in (1e-7, 0.1)}
    assert values[1e-7] == values[0.1]
    # ... while the spec's value does (the IoU and the enclosing diagonal both carry eps).
    failure = conformance.recheck(torchvision_ciou, CIOU, "matches_reference",
                                  {"boxes1": BOXES1, "boxes2": BOXES2}, {"eps": 0.1},
                                  verbose=False)
    assert failure is not None and "does not hold" in failure.message


def test_torchvision_ciou_conforms_at_its_default_eps(torchvision_ciou):
    found = conformance.recheck(torchvision_ciou, CIOU, "matches_reference",
                                {"boxes1": BOXES1, "boxes2": BOXES2}, {}, verbose=False)
    assert found is None


def test_the_check_finds_it_without_being_told_where(torchvision_ciou):
    report = conformance.check(torchvision_ciou, CIOU, properties=["matches_reference"],
                               dtypes=("float64",))
    assert not report.ok
    assert report.failures[0].case.params.get("eps", 1e-7) != 1e-7


def test_torchvision_focal_nan_gradient_for_gamma_below_one():
    try:
        from implementations.torchvision_ops import sigmoid_focal_loss
    except ImportError as exc:
        pytest.skip(f"torchvision is not importable: {exc}")
    from implementations.focal import sigmoid_focal_loss as ours

    def grad(fn, gamma):
        x = torch.tensor([17.0], requires_grad=True)
        fn(x, torch.tensor([1.0]), gamma=gamma, reduction="sum").backward()
        return x.grad.item()

    assert torch.isnan(torch.tensor(grad(sigmoid_focal_loss, 0.5)))
    assert grad(sigmoid_focal_loss, 2.0) == 0.0
    assert abs(grad(ours, 0.5)) < 1e-10  # finite, and as tiny as the true derivative
    report = conformance.check(sigmoid_focal_loss, "sigmoid_focal_loss", dtypes=("float32",),
                               properties=["gradient_matches_reference"])
    assert not report.ok and "nan" in report.failures[0].message
