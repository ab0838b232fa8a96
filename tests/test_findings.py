"""Every finding in docs/findings.md, re-run: the suite must still see it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import conformance
from reference import ranking as ref_ranking
from reference import segmentation as ref_seg

CIOU = "complete_box_iou_loss"
# docs/findings.md, finding 1: the minimal input.
BOXES1 = torch.tensor([[0.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
BOXES2 = torch.tensor([[0.5, 0.0, 1.5, 1.0]], dtype=torch.float64)


@pytest.fixture(scope="module")
def torchvision_ciou():
    try:
        from implementations.adapters.torchvision_ops import complete_box_iou_loss
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
        from implementations.adapters.torchvision_ops import sigmoid_focal_loss
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


# --------------------------------------------------------------------------- dtypes (torch)

HALF = torch.float16


def test_torch_cross_entropy_mean_overflows_float16():
    logits = torch.zeros(8, 2, dtype=HALF)
    logits[:, 1] = 1e4
    target = torch.zeros(8, dtype=torch.long)
    assert torch.nn.functional.cross_entropy(logits, target).isinf()  # the mean is 1e4
    failure = conformance.recheck(torch.nn.functional.cross_entropy, "cross_entropy",
                                  "matches_reference", {"input": logits, "target": target},
                                  verbose=False)
    assert failure is not None and "inf where the value is finite" in failure.message


def test_torch_cross_entropy_label_smoothing_overflows_float16():
    logits = torch.zeros(1, 8, dtype=HALF)
    logits[0, 0] = 1e4
    target = torch.tensor([0])
    got = torch.nn.functional.cross_entropy(logits, target, label_smoothing=0.1,
                                            reduction="none")
    assert got.isinf().all()
    failure = conformance.recheck(torch.nn.functional.cross_entropy, "cross_entropy",
                                  "matches_reference", {"input": logits, "target": target},
                                  {"label_smoothing": 0.1}, verbose=False)
    assert failure is not None and "875" in failure.message


def test_torch_nll_loss_mean_overflows_float16():
    logp = torch.full((8, 2), -1e4, dtype=HALF)
    target = torch.zeros(8, dtype=torch.long)
    assert torch.nn.functional.nll_loss(logp, target).isinf()
    failure = conformance.recheck(torch.nn.functional.nll_loss, "nll_loss", "matches_reference",
                                  {"input": logp, "target": target}, verbose=False)
    assert failure is not None


def test_torch_bce_gradient_is_nan_in_float16_at_a_perfect_prediction():
    p = torch.tensor([0.0, 1.0], dtype=HALF)
    y = torch.tensor([0.0, 1.0], dtype=HALF)
    failure = conformance.recheck(torch.nn.functional.binary_cross_entropy,
                                  "binary_cross_entropy", "gradient_matches_reference",
                                  {"input": p, "target": y}, verbose=False)
    assert failure is not None and "nan" in failure.message.lower()
    # float32 is fine: the finding is float16's 1e-12 clamp that rounds to 0.
    assert conformance.recheck(torch.nn.functional.binary_cross_entropy,
                               "binary_cross_entropy", "gradient_matches_reference",
                               {"input": p.float(), "target": y.float()}, verbose=False) is None


# --------------------------------------------------------------------------- adapters


def _adapter(path: str):
    from conformance.cli import UsageError, load_target

    try:
        return load_target(path)
    except UsageError as exc:
        pytest.skip(str(exc))

def _the_specs_own(fn, spec: str) -> dict:
    """Conventions that hold fn to the spec as declared, overriding those fn declares: the
    finding is how the library differs from the spec; the declared variant explains it."""
    variants = {v.name: v.canonical for v in conformance.get_spec(spec).variants}
    return {name: variants[name] for name in getattr(fn, "conformance_conventions", {})}



def test_fvcore_focal_computes_float64_in_float32():
    fn = _adapter("implementations.adapters.fvcore_nn:sigmoid_focal_loss")
    x = torch.tensor([0.0], dtype=torch.float64)
    t = torch.tensor([0.5], dtype=torch.float64)
    out = fn(x, t, alpha=0.25)
    # float32's rounding of the float64 value 0.0866433975...: right to 8 digits, not 16.
    assert out.dtype == torch.float32 and out.item() == pytest.approx(0.0866433975, rel=1e-7)
    failure = conformance.recheck(fn, "sigmoid_focal_loss", "matches_reference",
                                  {"inputs": x, "targets": t}, {"alpha": 0.25}, verbose=False)
    assert failure is not None


def test_kornia_focal_weights_fractional_targets_per_term():
    fn = _adapter("implementations.adapters.kornia_losses:sigmoid_focal_loss")
    x = torch.tensor([-0.07012038774347855], dtype=torch.float64)
    t = torch.tensor([0.2105321538009602], dtype=torch.float64)
    assert fn(x, t, gamma=0.0).item() == pytest.approx(0.42837783158969794, rel=1e-12)
    failure = conformance.recheck(fn, "sigmoid_focal_loss", "matches_reference",
                                  {"inputs": x, "targets": t}, {"gamma": 0.0}, verbose=False,
                                  conventions=_the_specs_own(fn, "sigmoid_focal_loss"))
    assert failure is not None and "0.434205" in failure.message
    # The declared convention explains it.
    assert conformance.recheck(fn, "sigmoid_focal_loss", "matches_reference",
                               {"inputs": x, "targets": t}, {"gamma": 0.0},
                               verbose=False) is None
    # On {0, 1} targets kornia and the spec agree.
    hard = torch.tensor([1.0], dtype=torch.float64)
    assert conformance.recheck(fn, "sigmoid_focal_loss", "matches_reference",
                               {"inputs": x, "targets": hard}, {"gamma": 0.0},
                               verbose=False) is None


def test_monai_dice_is_nan_for_an_empty_class_at_smooth_zero():
    fn = _adapter("implementations.adapters.monai_losses:soft_dice_loss")
    x = torch.tensor([[[1e4], [-1e4]]], dtype=torch.float64)
    mask = torch.tensor([[[1.0], [0.0]]], dtype=torch.float64)
    spec_defaults = {"activation": "softmax", "smooth": 0.0, "per_image": False}
    got = fn(x, mask, **spec_defaults, reduction="none")
    assert got[0].item() == 0.0 and got[1].isnan()
    failure = conformance.recheck(fn, "soft_dice_loss", "matches_reference",
                                  {"input": x, "target": mask}, spec_defaults, verbose=False,
                                  conventions=_the_specs_own(fn, "soft_dice_loss"))
    assert failure is not None and "NaN where a finite value is expected" in failure.message
    # The declared convention explains it.
    assert conformance.recheck(fn, "soft_dice_loss", "matches_reference",
                               {"input": x, "target": mask}, spec_defaults,
                               verbose=False) is None
    # Smoothing removes the difference.
    assert conformance.recheck(fn, "soft_dice_loss", "matches_reference",
                               {"input": x, "target": mask}, {**spec_defaults, "smooth": 1.0},
                               verbose=False) is None


# segmentation_models_pytorch 0.6: each expected value is derived from the formulas here.


def _smp(name: str):
    return _adapter(f"implementations.adapters.smp_losses:{name}")


def test_smp_region_losses_zero_an_absent_class_and_still_divide_by_all():
    fn = _smp("soft_dice_loss")
    x = torch.tensor([[[2.0], [-1.0], [0.5]]], dtype=torch.float64)
    labels = torch.tensor([[1]])
    p = torch.softmax(x, dim=1)[0, :, 0].tolist()
    class_1 = 1 - 2 * p[1] / (p[1] + 1)
    # smp: class 1's loss over 3 classes; the spec: classes 0 and 2 (absent, predicted) cost
    # 1 - 0 / p_c = 1 each at smooth 0.
    assert fn(x, labels).item() == pytest.approx(class_1 / 3, rel=1e-12)
    failure = conformance.recheck(fn, "soft_dice_loss", "matches_reference",
                                  {"input": x, "target": labels}, verbose=False,
                                  conventions=_the_specs_own(fn, "soft_dice_loss"))
    assert failure is not None
    # The declared convention explains it.
    assert conformance.recheck(fn, "soft_dice_loss", "matches_reference",
                               {"input": x, "target": labels}, verbose=False) is None
    assert failure.comparison.expected == pytest.approx((class_1 + 2) / 3, rel=1e-12)


def test_smp_soft_targets_use_the_l1_intersection():
    fn = _smp("soft_dice_loss")
    x = torch.zeros((1, 1, 1), dtype=torch.float64)  # p = 1/2
    t = torch.full((1, 1, 1), 0.25, dtype=torch.float64)
    # sum min(p, t) = 1/4, so Dice = 2 (1/4) / (3/4); sum p t = 1/8 gives the spec's 1/3.
    assert fn(x, t, activation="sigmoid").item() == pytest.approx(1 - 2 / 3, rel=1e-12)
    failure = conformance.recheck(fn, "soft_dice_loss", "matches_reference",
                                  {"input": x, "target": t}, {"activation": "sigmoid"},
                                  verbose=False, conventions=_the_specs_own(fn, "soft_dice_loss"))
    assert failure is not None
    # The declared convention explains it.
    assert conformance.recheck(fn, "soft_dice_loss", "matches_reference",
                               {"input": x, "target": t}, {"activation": "sigmoid"},
                               verbose=False) is None
    assert failure.comparison.expected == pytest.approx(2 / 3, rel=1e-12)
    hard = torch.ones((1, 1, 1), dtype=torch.float64)
    assert conformance.recheck(fn, "soft_dice_loss", "matches_reference",
                               {"input": x, "target": hard}, {"activation": "sigmoid"},
                               verbose=False) is None


def test_smp_lovasz_computes_its_gradient_weights_in_float32():
    fn = _smp("lovasz_hinge")
    logits, labels = [[0.0, 0.0, 0.0, 0.0]], torch.tensor([[1, 0, 1, 0]])
    with pytest.raises(RuntimeError, match="same dtype"):
        fn(torch.tensor(logits, dtype=torch.float64), labels)
    assert fn(torch.tensor(logits, dtype=torch.float16), labels).dtype == torch.float32
    softmax = _smp("lovasz_softmax")
    with pytest.raises(RuntimeError, match="same dtype"):
        softmax(torch.zeros((1, 2, 2), dtype=torch.float16), torch.tensor([[1, 0]]))
    assert conformance.recheck(fn, "lovasz_hinge", "matches_reference",
                               {"input": torch.tensor(logits), "target": labels},
                               verbose=False) is None


def test_smp_lovasz_softmax_returns_an_empty_tensor_when_every_pixel_is_ignored():
    fn = _smp("lovasz_softmax")
    out = fn(torch.tensor([[[0.5, -1.0], [2.0, 0.0]]]), torch.tensor([[255, 255]]),
             ignore_index=255)
    assert out.shape == (0, 2)


def test_smp_sigmoid_focal_takes_p_t_as_exp_of_minus_bce():
    fn = _smp("sigmoid_focal_loss")
    x, t = torch.tensor([1.0], dtype=torch.float64), torch.tensor([0.5], dtype=torch.float64)
    bce = math.log1p(math.exp(-1.0)) + 0.5  # max(x, 0) - x t + log(1 + e^-|x|)
    alpha_t = 0.25 * 0.5 + 0.75 * 0.5
    assert fn(x, t).item() == pytest.approx(alpha_t * (1 - math.exp(-bce)) ** 2 * bce,
                                            rel=1e-12)
    failure = conformance.recheck(fn, "sigmoid_focal_loss", "matches_reference",
                                  {"inputs": x, "targets": t}, verbose=False,
                                  conventions=_the_specs_own(fn, "sigmoid_focal_loss"))
    # torchvision's p_t = p t + (1 - p)(1 - t) = 1/2 for t = 1/2, whatever p is.
    assert failure is not None
    # The declared convention explains it.
    assert conformance.recheck(fn, "sigmoid_focal_loss", "matches_reference",
                               {"inputs": x, "targets": t}, verbose=False) is None
    assert failure.comparison.expected == pytest.approx(alpha_t * 0.25 * bce, rel=1e-12)


def test_smp_soft_cross_entropy_is_not_a_drop_in_cross_entropy():
    fn = _smp("cross_entropy")
    logits = torch.zeros((2, 2), dtype=torch.float64)
    targets = torch.tensor([0, -100])
    assert fn(logits, targets, reduction="none", label_smoothing=0.0).shape == (2, 1)
    assert fn(logits, targets, label_smoothing=0.0).item() == pytest.approx(math.log(2) / 2,
                                                                          rel=1e-12)
    # SoftCrossEntropyLoss() at its own default smooth_factor=None divides None by C.
    with pytest.raises(TypeError, match="NoneType"):
        fn(logits, targets)
    assert F.cross_entropy(logits, targets).item() == pytest.approx(math.log(2), rel=1e-12)
    focal = _smp("softmax_focal_loss")
    assert focal(logits, targets, gamma=0.0).item() == pytest.approx(math.log(2) / 2,
                                                                    rel=1e-12)


# pytorch_toolbelt 0.8


def _toolbelt(name: str):
    return _adapter(f"implementations.adapters.toolbelt_losses:{name}")


def test_toolbelt_class_lists_are_uninitialized_arrays():
    _toolbelt("soft_dice_loss")  # skips without pytorch_toolbelt
    from implementations.adapters.toolbelt_losses import _TB

    # np.ndarray([1, 2]) is an empty array of shape (1, 2), not the array [1, 2].
    classes = _TB["dice"].DiceLoss(mode="multiclass", classes=[1, 2]).classes
    assert classes.shape == (1, 2)


def test_toolbelt_lovasz_softmax_reads_logits_as_probabilities():
    fn = _toolbelt("lovasz_softmax")
    x, labels = torch.zeros((1, 2)), torch.tensor([0])
    # Softmax gives p = (1/2, 1/2): class 0's one error is 1/2. Read as probabilities, the
    # zeros give an error of 1.
    assert fn(x, labels).item() == 1.0
    failure = conformance.recheck(fn, "lovasz_softmax", "matches_reference",
                                  {"input": x, "target": labels}, verbose=False)
    assert failure is not None and failure.comparison.expected == pytest.approx(0.5)


def test_toolbelt_softmax_focal_is_a_sum_of_sigmoid_bce_terms():
    fn = _toolbelt("softmax_focal_loss")
    x, y = torch.zeros((1, 3), dtype=torch.float64), torch.tensor([0])
    # gamma = 0: each of the 3 logits contributes BCE(0, onehot) = ln 2; cross-entropy is ln 3.
    # (Its one-hot target is .float(), so float64 logits get float32 precision.)
    assert fn(x, y, gamma=0.0).item() == pytest.approx(3 * math.log(2), rel=1e-7)
    failure = conformance.recheck(fn, "softmax_focal_loss", "matches_reference",
                                  {"input": x, "target": y}, {"gamma": 0.0}, verbose=False)
    assert failure is not None
    assert failure.comparison.expected == pytest.approx(math.log(3), rel=1e-12)


def test_toolbelt_focal_losses_compute_float64_in_float32():
    x = torch.tensor([0.0], dtype=torch.float64)
    t = torch.tensor([0.5], dtype=torch.float64)
    focal = _toolbelt("sigmoid_focal_loss")(x, t, alpha=-1.0, gamma=0.0)
    quality = _toolbelt("quality_focal_loss")(x, t, beta=0.0)
    for out in (focal, quality):
        assert out.dtype == torch.float32
        assert out.item() == float(torch.tensor(math.log(2), dtype=torch.float32))


# optax 0.2.8 on jax 0.10.2 (CPU), through the JAX bridge


def test_optax_dice_is_nan_for_an_empty_class_at_smooth_zero():
    fn = _adapter("implementations.adapters.optax_losses:soft_dice_loss")
    x = torch.tensor([[1e4, -1e4]], dtype=torch.float64)
    labels = torch.tensor([0])
    got = fn(x, labels, smooth=0.0, per_image=False, reduction="none")
    assert got[0].item() == 0.0 and got[1].isnan()
    failure = conformance.recheck(fn, "soft_dice_loss", "matches_reference",
                                  {"input": x, "target": labels},
                                  {"smooth": 0.0, "per_image": False}, verbose=False,
                                  conventions=_the_specs_own(fn, "soft_dice_loss"))
    assert failure is not None
    # The declared convention explains it.
    assert conformance.recheck(fn, "soft_dice_loss", "matches_reference",
                               {"input": x, "target": labels},
                               {"smooth": 0.0, "per_image": False}, verbose=False) is None
    assert conformance.recheck(fn, "soft_dice_loss", "matches_reference",
                               {"input": x, "target": labels},
                               {"smooth": 1.0, "per_image": False}, verbose=False) is None


def test_jax_flushes_subnormals_in_optax_kl_div():
    fn = _adapter("implementations.adapters.optax_losses:kl_div")
    log_q = torch.full((1, 2), -0.6931472)
    log_p = torch.tensor([[-88.5, 0.0]])
    got = fn(log_q, log_p, reduction="none", log_target=True)
    # exp(-88.5) = 3.67e-39 is subnormal in float32: torch keeps it, JAX's CPU backend gives 0.
    assert got[0, 0].item() == 0.0
    expected = F.kl_div(log_q, log_p, reduction="none", log_target=True)
    assert expected[0, 0].item() != 0.0
    # In float64 nothing is subnormal and optax conforms.
    assert conformance.recheck(fn, "kl_div", "matches_reference",
                               {"input": log_q.double(), "target": log_p.double()},
                               {"log_target": True}, verbose=False) is None


# docs/findings.md 3n: empty inputs.
def test_fvcore_smooth_l1_mean_of_nothing_is_zero():
    fn = _adapter("implementations.adapters.fvcore_nn:smooth_l1_loss")
    empty = torch.zeros(0)
    assert fn(empty, empty, beta=1.0, reduction="mean").item() == 0.0
    assert math.isnan(F.smooth_l1_loss(empty, empty, beta=1.0, reduction="mean").item())
    failure = conformance.recheck(fn, "smooth_l1_loss", "handles_empty_input",
                                  {"input": torch.ones(2), "target": torch.zeros(2)},
                                  {"beta": 1.0}, verbose=False,
                                  conventions=_the_specs_own(fn, "smooth_l1_loss"))
    assert failure is not None and "expects NaN here: got 0.0" in failure.message
    # The declared convention explains it.
    assert conformance.recheck(fn, "smooth_l1_loss", "handles_empty_input",
                               {"input": torch.ones(2), "target": torch.zeros(2)},
                               {"beta": 1.0}, verbose=False) is None


def test_smp_region_losses_raise_on_a_batch_of_zero():
    fn = _smp("soft_dice_loss")
    with pytest.raises(RuntimeError, match="cannot reshape tensor of 0 elements"):
        fn(torch.zeros(0, 3, 1), torch.zeros(0, 1, dtype=torch.long))


@pytest.mark.parametrize("library", ["smp_losses", "toolbelt_losses"])
def test_lovasz_hinge_per_image_of_no_image_is_a_python_int(library):
    fn = _adapter(f"implementations.adapters.{library}:lovasz_hinge")
    out = fn(torch.zeros(0, 2, 2, requires_grad=True), torch.zeros(0, 2, 2), per_image=True)
    assert out == 0 and not isinstance(out, torch.Tensor)


def test_monai_per_image_mean_of_no_image_is_nan():
    fn = _adapter("implementations.adapters.monai_losses:soft_jaccard_loss")
    x = torch.zeros(0, 2, 1, 1)
    out = fn(x, x, activation="sigmoid", smooth=1.0, per_image=True, reduction="mean")
    assert math.isnan(out.item())


# docs/findings.md 3o: kornia's focal_loss and lovasz_hinge_loss, monai's FocalLoss.
def test_kornia_focal_mean_divides_by_classes_times_pixels():
    fn = _adapter("implementations.adapters.kornia_losses:softmax_focal_loss")
    x = torch.tensor([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([0, 2])
    assert fn(x, y, gamma=0.5, reduction="mean").item() == pytest.approx(
        fn(x, y, gamma=0.5, reduction="sum").item() / 6, rel=1e-12)
    assert fn(torch.tensor([[0.5, -1.0]]), torch.tensor([-100]), reduction="mean").item() == 0.0


def test_kornia_lovasz_hinge_raises_on_a_non_contiguous_sort():
    _adapter("implementations.adapters.kornia_losses:lovasz_hinge")
    from implementations.adapters.kornia_losses import _KORNIA

    pred = torch.tensor([[0.5, -1.0], [2.0, 0.0]]).t()[:, None, None, :]
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        _KORNIA["lovasz_hinge"].lovasz_hinge_loss(pred, torch.zeros(2, 1, 2))
    assert _KORNIA["lovasz_hinge"].lovasz_hinge_loss(pred.contiguous(),
                                                     torch.zeros(2, 1, 2)).item() == 2.0


def test_kornia_lovasz_softmax_scores_every_class_of_each_image():
    fn = _adapter("implementations.adapters.kornia_losses:lovasz_softmax")
    one = torch.zeros(1, 3, 1, 1, dtype=torch.float64)
    label = torch.zeros(1, 1, 1, dtype=torch.long)
    assert fn(one, label).item() == pytest.approx(4 / 9, rel=1e-12)
    assert ref_seg.lovasz_softmax(one.numpy(), label.numpy()) == pytest.approx(2 / 3)
    assert ref_seg.lovasz_softmax(one.numpy(), label.numpy(), classes="all") == pytest.approx(
        4 / 9)
    two = torch.zeros(2, 2, 1, 2, dtype=torch.float64)
    two[1, 0, 0, :] = 2.0
    labels = torch.tensor([[[0, 0]], [[1, 0]]])
    per_image = ref_seg.lovasz_softmax(two.numpy(), labels.numpy(), classes="all",
                                       per_image=True)
    batch = ref_seg.lovasz_softmax(two.numpy(), labels.numpy(), classes="all")
    assert fn(two, labels).item() == pytest.approx(per_image, rel=1e-12)
    assert abs(per_image - batch) > 0.09
    with pytest.raises(RuntimeError, match="reshape"):
        fn(torch.zeros(0, 2, 3, 1), torch.zeros(0, 3, 1, dtype=torch.long))


def test_monai_focal_sum_is_a_mean_without_spatial_axes():
    fn = _adapter("implementations.adapters.monai_losses:sigmoid_focal_loss")
    x = torch.tensor([0.5, -1.0, 2.0, 0.0])
    y = torch.tensor([1.0, 0.0, 0.0, 1.0])
    assert fn(x, y, reduction="sum").item() == pytest.approx(fn(x, y, reduction="mean").item())
    assert fn(x, y, reduction="sum").item() == pytest.approx(
        fn(x, y, reduction="none").sum().item() / 4, rel=1e-6)
    assert fn(x.double(), y.double()).dtype == torch.float32


# docs/findings.md 3p: library defaults, as a caller who leaves the argument out gets them.
def test_fvcore_and_optax_focal_default_to_no_alpha():
    x, t = torch.tensor([0.0], dtype=torch.float64), torch.tensor([0.5], dtype=torch.float64)
    for path in ("fvcore_nn", "optax_losses"):
        fn = _adapter(f"implementations.adapters.{path}:sigmoid_focal_loss")
        assert fn(x, t).item() == pytest.approx(0.1732868, rel=1e-6)  # alpha_t = 1
        assert fn(x, t, alpha=0.25).item() == pytest.approx(0.0866434, rel=1e-6)


def test_fvcore_smooth_l1_has_no_default_beta_and_defaults_to_none():
    fn = _adapter("implementations.adapters.fvcore_nn:smooth_l1_loss")
    with pytest.raises(TypeError, match="beta"):
        fn(torch.ones(3), torch.zeros(3))
    assert fn(torch.ones(3), torch.zeros(3), beta=1.0).shape == (3,)


def test_timm_label_smoothing_defaults_to_a_tenth():
    fn = _adapter("implementations.adapters.timm_loss:cross_entropy")
    logits, target = torch.tensor([[2.0, 0.0]], dtype=torch.float64), torch.tensor([0])
    assert fn(logits, target).item() == pytest.approx(0.226928, rel=1e-6)
    assert F.cross_entropy(logits, target).item() == pytest.approx(0.126928, rel=1e-6)


@pytest.mark.parametrize("library", ["smp_losses", "toolbelt_losses"])
def test_binary_lovasz_defaults_to_one_score_over_the_batch(library):
    fn = _adapter(f"implementations.adapters.{library}:lovasz_hinge")
    x = torch.tensor([[[1.0, -1.0]], [[-1.0, 1.0]]])
    t = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]]])
    assert fn(x, t).item() == pytest.approx(2 / 3, rel=1e-6)
    assert fn(x, t, per_image=True).item() == pytest.approx(0.5, rel=1e-6)


@pytest.mark.parametrize("path", ["monai_losses", "optax_losses"])
def test_monai_and_optax_dice_default_to_a_score_per_image(path):
    fn = _adapter(f"implementations.adapters.{path}:soft_dice_loss")
    x = torch.tensor([[[1e4], [-1e4]]], dtype=torch.float64)
    labels = torch.tensor([[0]])
    assert fn(x, labels, activation="softmax", reduction="none").shape == (1, 2)
    assert fn(x, labels, activation="softmax", per_image=False, reduction="none").shape == (2,)


@pytest.mark.parametrize("path", ["smp_losses:sigmoid_focal_loss",
                                  "toolbelt_losses:sigmoid_focal_loss",
                                  "monai_losses:sigmoid_focal_loss"])
def test_focal_losses_that_default_to_the_mean(path):
    fn = _adapter(f"implementations.adapters.{path}")
    assert fn(torch.zeros(3), torch.ones(3)).shape == ()
    failure = conformance.recheck(fn, "sigmoid_focal_loss", "default_reduction_is_the_specs",
                                  {"inputs": torch.zeros(3), "targets": torch.ones(3)},
                                  {"alpha": 0.25, "gamma": 2.0}, verbose=False)
    assert failure is not None and "output shape ()" in failure.message


def test_kornia_focal_loss_defaults_to_its_per_class_map():
    fn = _adapter("implementations.adapters.kornia_losses:softmax_focal_loss")
    assert fn(torch.zeros(2, 3), torch.tensor([0, 1])).shape == (2, 3)


def test_smp_multiclass_focal_scores_probabilities_as_p_over_one_plus_p():
    _smp("sigmoid_focal_loss")  # skips when smp is not installed
    from implementations.sources import import_sources

    focal = import_sources("segmentation_models_pytorch.losses", ("focal",))["focal"].FocalLoss
    target = torch.tensor([0])
    probabilities = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    as_probabilities = focal(mode="multiclass", from_logits=False)(probabilities, target)
    as_logits = focal(mode="multiclass")(torch.zeros(1, 2, dtype=torch.float64), target)
    assert as_logits.item() == pytest.approx(0.173287, rel=1e-5)  # (1/2)^2 log 2 per class
    assert as_probabilities.item() == pytest.approx(0.266662, rel=1e-5)  # p scored as 1/3


# docs/findings.md 3q: torch's soft_margin_loss overflows for a large negative margin.
def test_torch_soft_margin_loss_overflows_where_the_loss_fits():
    x = torch.tensor([100.0], requires_grad=True)
    out = F.soft_margin_loss(x, torch.tensor([-1.0]))
    out.backward()
    assert torch.isinf(out) and torch.isnan(x.grad).all()
    assert ref_ranking.soft_margin_loss(np.array([100.0]), np.array([-1.0])) == pytest.approx(
        100.0)
    assert torch.isinf(F.soft_margin_loss(torch.tensor([1e4], dtype=torch.float64),
                                          torch.tensor([-1.0], dtype=torch.float64)))
    # Where exp(-y x) fits, it conforms: a margin of -88 in float32.
    assert F.soft_margin_loss(torch.tensor([88.0]), torch.tensor([-1.0])).item() == (
        pytest.approx(88.0, rel=1e-6))


def test_torch_multilabel_soft_margin_loss_broadcasts_wrong_shapes():
    scores = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]])
    one_row = torch.tensor([[1.0, 0.0, 0.0]])
    assert F.multilabel_soft_margin_loss(scores, one_row, reduction="none").shape == (2,)
    one_class = torch.tensor([0.5])
    long_weight = torch.tensor([0.3, 0.3])
    out = F.multilabel_soft_margin_loss(one_class, torch.tensor([1.0]), weight=long_weight,
                                        reduction="none")
    term = F.binary_cross_entropy_with_logits(one_class, torch.tensor([1.0]))
    assert out.item() == pytest.approx(2 * 0.3 * term.item(), rel=1e-6)
    with pytest.raises(RuntimeError):
        F.multilabel_soft_margin_loss(scores, torch.zeros(2, 3), weight=torch.ones(4))



# docs/findings.md 3r: multi_margin_loss and multilabel_margin_loss reduce an empty batch from
# uninitialized memory. One call may happen to find a 0 there; of 100 calls of each, 97 to 98
# returned something else in every process tried, so all 200 being 0 does not happen by luck.
def test_torch_class_margin_losses_reduce_an_empty_batch_from_uninitialized_memory():
    scores = torch.zeros(0, 3)
    sums = [F.multi_margin_loss(scores, torch.zeros(0, dtype=torch.long), reduction="sum")
            for _ in range(100)]
    sums += [F.multilabel_margin_loss(scores, torch.zeros(0, 3, dtype=torch.long),
                                      reduction="sum") for _ in range(100)]
    assert any(value.item() != 0.0 for value in sums)  # a sum over nothing is 0
    assert ref_ranking.multi_margin_loss(np.zeros((0, 3)), np.zeros(0, dtype=np.int64),
                                         reduction="sum") == 0.0


def test_torch_multi_margin_loss_weighs_the_powered_hinge():
    scores = torch.tensor([[0.1, 0.2, 0.4, 0.8]], dtype=torch.float64)
    weight = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    out = F.multi_margin_loss(scores, torch.tensor([3]), p=2, weight=weight)
    assert out.item() == pytest.approx(0.61, rel=1e-12)
    x, w = scores.numpy(), weight.numpy()
    assert float(ref_ranking.multi_margin_loss(x, np.array([3]), 2, weight=w)) == (
        pytest.approx(0.61, rel=1e-12))
    assert float(ref_ranking.multi_margin_loss(x, np.array([3]), 2, weight=w,
                                               weight_placement="inside")) == (
        pytest.approx(2.44, rel=1e-12))


def test_torch_gaussian_nll_loss_passes_the_gradient_through_the_clamp():
    var = torch.tensor([0.0, 4.0], dtype=torch.float64, requires_grad=True)
    out = F.gaussian_nll_loss(torch.zeros(2, dtype=torch.float64),
                              torch.tensor([0.0, 1.0], dtype=torch.float64), var,
                              eps=1e-6, reduction="sum")
    out.backward()
    # d/dv (log v + d^2 / v) / 2 = (1 / v - d^2 / v^2) / 2: at v = 0 (clamped to eps) and
    # d = 0 it is 1 / (2 eps) = 5e5, where a clamp autograd could see would give 0; at v = 4,
    # d = 1, (1 / 4 - 1 / 16) / 2.
    assert var.grad[0].item() == pytest.approx(5e5, rel=1e-9)
    assert var.grad[1].item() == pytest.approx(0.5 * (0.25 - 1.0 / 16), rel=1e-12)
    # The value uses the clamped variance.
    assert out.item() == pytest.approx(0.5 * math.log(1e-6) + 0.5 * (math.log(4.0) + 0.25),
                                       rel=1e-12)


# docs/findings.md, 3s: torch.nn.functional.ctc_loss.
CTC_LENGTHS = (torch.tensor([1]), torch.tensor([1]))


def test_torch_ctc_gradient_is_that_of_the_renormalized_loss():
    log_probs = torch.log(torch.tensor([[[0.25, 0.75]]], dtype=torch.float64))
    given = log_probs.clone().requires_grad_()
    loss = F.ctc_loss(given, torch.tensor([[1]]), *CTC_LENGTHS)
    loss.backward()
    assert loss.item() == pytest.approx(-math.log(0.75), rel=1e-15)
    # The one path emits class 1: d loss / d log_probs = [0, -1]; torch adds exp(log_probs).
    assert given.grad.flatten().tolist() == pytest.approx([0.25, -0.25], rel=1e-12)
    failure = conformance.recheck(F.ctc_loss, "ctc_loss", "gradient_matches_reference",
                                  {"log_probs": log_probs, "targets": torch.tensor([[1]]),
                                   "input_lengths": CTC_LENGTHS[0],
                                   "target_lengths": CTC_LENGTHS[1]}, verbose=False)
    assert failure is not None
    # Through a log_softmax the chained gradient is the loss's: [0.25, -0.25] either way.
    logits = log_probs.clone().requires_grad_()
    F.ctc_loss(logits.log_softmax(2), torch.tensor([[1]]), *CTC_LENGTHS).backward()
    assert logits.grad.flatten().tolist() == pytest.approx([0.25, -0.25], rel=1e-12)


def test_torch_ctc_reads_non_contiguous_concatenated_targets_wrong():
    log_probs = torch.log(torch.tensor([[[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]]],
                                       dtype=torch.float64))
    targets = torch.tensor([[1, 0], [2, 0]])[:, 0]  # the labels [1, 2], stride 2
    lengths = (torch.tensor([1, 1]), torch.tensor([1, 1]))
    strided = F.ctc_loss(log_probs, targets, *lengths, reduction="none")
    right = F.ctc_loss(log_probs, targets.contiguous(), *lengths, reduction="none")
    assert right.tolist() == pytest.approx([-math.log(0.3), -math.log(0.5)], rel=1e-12)
    assert strided.tolist() == pytest.approx([-math.log(0.3), -math.log(0.2)], rel=1e-12)
    # Padded targets are read right in any layout.
    padded = torch.tensor([[1, 2], [2, 1]]).t().contiguous().t()
    assert not padded.is_contiguous()
    assert F.ctc_loss(log_probs, padded, *lengths, reduction="none").tolist() == (
        pytest.approx([-math.log(0.3), -math.log(0.5)], rel=1e-12))


def test_torch_ctc_does_not_check_target_labels():
    log_probs = torch.log(torch.tensor([[[0.25, 0.75]]], dtype=torch.float64))
    blank_as_label = F.ctc_loss(log_probs, torch.tensor([[0]]), *CTC_LENGTHS, reduction="none")
    assert blank_as_label.item() == pytest.approx(-math.log(0.25), rel=1e-12)
    F.ctc_loss(log_probs, torch.tensor([[2]]), *CTC_LENGTHS, reduction="none")  # C: no error
    with pytest.raises(RuntimeError):  # an input length past T is refused
        F.ctc_loss(log_probs, torch.tensor([[1]]), torch.tensor([2]), CTC_LENGTHS[1])
    failure = conformance.recheck(F.ctc_loss, "ctc_loss", "rejects_invalid_input",
                                  {"log_probs": log_probs.float(), "targets": torch.tensor([[1]]),
                                   "input_lengths": CTC_LENGTHS[0],
                                   "target_lengths": CTC_LENGTHS[1]}, verbose=False)
    assert failure is not None and "target label" in failure.message


def test_torch_ctc_refuses_an_empty_batch_and_half_precision():
    empty = (torch.zeros(1, 0, 3), torch.zeros(0, 1, dtype=torch.long),
             torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    with pytest.raises(RuntimeError, match="must not be empty"):
        F.ctc_loss(*empty, reduction="none")
    log_probs = torch.log(torch.tensor([[[0.25, 0.75]]]))
    for dtype in (torch.float16, torch.bfloat16):
        with pytest.raises(NotImplementedError):
            F.ctc_loss(log_probs.to(dtype), torch.tensor([[1]]), *CTC_LENGTHS)


# docs/findings.md 3t: cosine_embedding_loss multiplies the squared norms in float16; the
# cosine and triplet losses broadcast a batch of 1.
def test_torch_cosine_embedding_loss_float16_norm_product_leaves_the_range():
    x = torch.full((2, 4), 16.0, dtype=torch.float16)
    y = torch.tensor([1.0, -1.0], dtype=torch.float16)
    half = F.cosine_embedding_loss(x, x, y, margin=0.5, reduction="none")
    assert half.tolist() == [1.0, 0.0]
    single = F.cosine_embedding_loss(x.float(), x.float(), y.float(), margin=0.5,
                                     reduction="none")
    assert single.tolist() == pytest.approx([0.0, 0.5], abs=1e-6)
    small = torch.tensor([[0.0078125]], dtype=torch.float16, requires_grad=True)
    loss = F.cosine_embedding_loss(small, torch.tensor([[0.015625]], dtype=torch.float16),
                                   torch.tensor([1.0], dtype=torch.float16), reduction="none")
    loss.sum().backward()
    assert loss.item() == -math.inf and math.isnan(small.grad.item())
    failure = conformance.recheck(F.cosine_embedding_loss, "cosine_embedding_loss",
                                  "matches_reference",
                                  {"input1": x, "input2": x, "target": y}, {"margin": 0.5},
                                  verbose=False)
    assert failure is not None and "does not hold" in failure.message
    # Under autocast it runs in float32 and is right.
    with torch.autocast("cpu", dtype=torch.float16):
        assert F.cosine_embedding_loss(x, x, y, margin=0.5, reduction="none").tolist() == (
            pytest.approx([0.0, 0.5], abs=1e-6))


def test_torch_cosine_and_triplet_losses_broadcast_a_batch_of_one():
    x1 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    x2 = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    out = F.cosine_embedding_loss(x1, x2, torch.tensor([1.0]), reduction="none")
    assert out.tolist() == pytest.approx([0.0, 1.0, 0.0], abs=1e-6)
    anchor = torch.tensor([[0.0, 0.0], [1.0, 2.0], [0.0, 0.0]])
    positive = torch.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, 4.0]])
    negative = torch.tensor([[3.0, 4.0]])
    for fn in (F.triplet_margin_loss, F.triplet_margin_with_distance_loss):
        assert fn(anchor, positive, negative, reduction="none").shape == (3,)
    failure = conformance.recheck(F.triplet_margin_loss, "triplet_margin_loss",
                                  "rejects_invalid_input",
                                  {"anchor": anchor, "positive": positive,
                                   "negative": torch.cat([negative, anchor[1:]])}, {},
                                  verbose=False)
    assert failure is not None and "batch of 1" in failure.message


# docs/findings.md 3v: keras.losses (Keras 3.15.1 on the JAX backend).
def _keras(spec: str):
    return _adapter(f"implementations.adapters.keras_losses:{spec}")


def test_keras_tversky_weighs_false_negatives_with_alpha():
    fn = _keras("tversky_loss")
    x, labels = torch.zeros(1, 2), torch.tensor([0])
    # Class 0: I = 0.5, FP = 0, FN = 0.5. alpha weighs FP, beta FN (Salehi et al.; Keras' docs).
    got = fn(x, labels, alpha=0.5, beta=1.0, reduction="none")
    assert got[0].item() == pytest.approx(1 - 0.5 / (0.5 + 0.5 * 0.5), rel=1e-6)  # alpha on FN
    expected = 1 - 0.5 / (0.5 + 1.0 * 0.5)
    failure = conformance.recheck(fn, "tversky_loss", "matches_reference",
                                  {"input": x, "target": labels}, {"alpha": 0.5, "beta": 1.0},
                                  verbose=False)
    assert failure is not None and failure.comparison.expected == pytest.approx(expected)
    # At alpha = beta the swap is invisible.
    assert conformance.recheck(fn, "tversky_loss", "matches_reference",
                               {"input": x, "target": labels}, {"alpha": 0.7, "beta": 0.7},
                               verbose=False) is None


def test_keras_focal_losses_saturate_through_clipped_probabilities():
    x = torch.tensor([[1e4]], dtype=torch.float64)
    zero = torch.tensor([[0.0]], dtype=torch.float64)
    focal = _keras("sigmoid_focal_loss")(x, zero, alpha=-1.0, gamma=0.0, reduction="none")
    assert focal.item() == pytest.approx(-math.log(1e-7), rel=1e-6)  # 16.118, owed 1e4
    bce = _keras("binary_cross_entropy_with_logits")(x, zero, reduction="none")
    assert bce.item() == pytest.approx(1e4)  # Keras' own BCE from logits is right
    softmax = _keras("softmax_focal_loss")(torch.tensor([[0.0, 1e4]], dtype=torch.float64),
                                           torch.tensor([0]), gamma=0.0, reduction="none")
    assert softmax.item() == pytest.approx(-math.log(1e-7), rel=1e-6)
    failure = conformance.recheck(_keras("sigmoid_focal_loss"), "sigmoid_focal_loss",
                                  "matches_reference", {"inputs": x, "targets": zero},
                                  {"alpha": -1.0, "gamma": 0.0}, verbose=False)
    assert failure is not None and failure.comparison.expected == pytest.approx(1e4)


def test_keras_reduces_an_empty_batch_to_an_empty_array():
    fn = _keras("mse_loss")
    empty = torch.zeros(0, 4)
    assert fn(empty, empty, reduction="mean").shape == (0,)
    failure = conformance.recheck(fn, "mse_loss", "handles_empty_input",
                                  {"input": torch.ones(2, 4), "target": torch.zeros(2, 4)}, {},
                                  verbose=False)
    assert failure is not None and "output shape (0,)" in failure.message


def test_keras_elementwise_losses_compute_float64_at_float32_precision():
    fn = _keras("mse_loss")
    x = torch.tensor([0.0], dtype=torch.float64)
    t = torch.tensor([1.543077458143134e-06], dtype=torch.float64)
    got = fn(x, t, reduction="none").item()
    assert got != t.item() ** 2 and got == pytest.approx(t.item() ** 2, rel=1e-7)
    assert conformance.recheck(fn, "mse_loss", "matches_reference",
                               {"input": x, "target": t}, {}, verbose=False) is not None
    # Keras' cross-entropy sums with keras.ops.sum: float64 conforms there.
    assert conformance.recheck(_keras("cross_entropy"), "cross_entropy", "matches_reference",
                               {"input": torch.tensor([[0.1234567, 2.0]], dtype=torch.float64),
                                "target": torch.tensor([1])}, {}, verbose=False) is None


def test_keras_kl_div_halves_the_gradient_at_a_probability_of_one():
    fn = _keras("kl_div")
    log_q = torch.zeros(1, 1, dtype=torch.float64, requires_grad=True)
    fn(log_q, torch.ones(1, 1, dtype=torch.float64), reduction="sum").backward()
    assert log_q.grad.item() == -0.5  # d/d log q of p (log p - log q) is -p = -1
    failure = conformance.recheck(fn, "kl_div", "gradient_matches_reference",
                                  {"input": log_q.detach(),
                                   "target": torch.ones(1, 1, dtype=torch.float64)},
                                  {}, verbose=False)
    assert failure is not None
