"""Worked examples from the seed documents (shared/seeds/000-003), re-derived.

Each expected number is either a closed form written out here or the formula evaluated
with its arithmetic in view. Numbers a seed printed are checked only as far as their
printing allows; where a seed's number is wrong, the test says so and asserts the
correct value.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, log_softmax, logsumexp

import reference as ref

# A printed 4-decimal number is the true value rounded: off by at most half a unit.
HALF_UNIT = 5e-5
# torch computed the seeds in float32; its evaluation error at these magnitudes
# (values below 2, a handful of operations) stays far below this.
FLOAT32_SLACK = 1e-6


def printed_range(loss_none, x: np.ndarray, reduce=np.mean) -> tuple[float, float]:
    """Range of reduce(loss) over inputs that round to the printed x (4 decimals).

    For a 0/1 target every loss here is monotone in each x_i, so the extremes of each
    element sit at x_i -+ 5e-5 and the reduction's range is reached elementwise.
    """
    below, above = loss_none(x - HALF_UNIT), loss_none(x + HALF_UNIT)
    return float(reduce(np.minimum(below, above))), float(reduce(np.maximum(below, above)))


def assert_printed(printed: float, low: float, high: float) -> None:
    """``printed`` is some value of [low, high] rounded to 4 decimals."""
    slack = HALF_UNIT + FLOAT32_SLACK
    assert low - slack <= printed <= high + slack, (printed, low, high)


# ---------------------------------------------------------------------------
# seed 000: BCE on probabilities and on logits, and the seed's FocalLoss


SEED0_BCE_X = np.array([-0.2296, -0.6389, -0.2405, 1.3451, 0.7580])
SEED0_BCE_Y = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
SEED0_BCE_PRE = np.array([0.4428, 0.3455, 0.4402, 0.7933, 0.6809])


def test_seed000_bce_probabilities_equal_logits() -> None:
    x, y = SEED0_BCE_X, SEED0_BCE_Y
    on_logits = ref.binary_cross_entropy_with_logits(x, y)
    on_probabilities = ref.binary_cross_entropy(expit(x), y)
    assert float(on_probabilities) == pytest.approx(float(on_logits), rel=1e-14)

    # the printed `pre` is sigmoid of the unrounded input, rounded: sigmoid' <= 1/4, so
    # |sigmoid(printed x) - pre| <= 5e-5 + 5e-5 / 4 (the first entry sits on 0.44285)
    assert np.all(np.abs(expit(x) - SEED0_BCE_PRE) <= HALF_UNIT * 1.25 + FLOAT32_SLACK)

    def bce(xs: np.ndarray) -> np.ndarray:
        return ref.binary_cross_entropy_with_logits(xs, y, reduction="none")

    # |d l / d x| = |sigmoid(x) - y| < 1, so the mean moves by less than 5e-5 across the
    # rounding box, and the printed 0.4869 adds another 5e-5
    assert abs(float(on_logits) - 0.4869) <= 2 * HALF_UNIT + FLOAT32_SLACK
    assert_printed(0.4869, *printed_range(bce, x))


SEED0_FOCAL_X = np.array([-1.3521, 0.4975, -1.0178, -0.3859, -0.2923])
SEED0_FOCAL_Y = np.array([1.0, 1.0, 0.0, 1.0, 1.0])


def seed_focal_on_probabilities(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The seed's FocalLoss(alpha=1, gamma=2, logits=False), elementwise.

    BCE = binary_cross_entropy(p, y); pt = exp(-BCE); F = alpha * (1 - pt)^gamma * BCE
    with alpha = 1 multiplying every element.
    """
    bce = ref.binary_cross_entropy(p, y, reduction="none")
    pt = np.exp(-bce)
    return 1.0 * (1 - pt) ** 2 * bce


def test_seed000_focal_loss() -> None:
    x, y = SEED0_FOCAL_X, SEED0_FOCAL_Y
    # The seed's alpha = 1 scales every element by 1. torchvision's alpha = 1 instead
    # gives alpha_t = y and zeroes the negatives, so the seed's loss is ours with the
    # alpha factor switched off (alpha < 0).
    ours = ref.sigmoid_focal_loss(x, y, alpha=-1, gamma=2.0, reduction="mean")
    probability_path = np.mean(seed_focal_on_probabilities(expit(x), y))
    assert float(ours) == pytest.approx(float(probability_path), rel=1e-13)
    assert float(ref.sigmoid_focal_loss(x, y, alpha=1, gamma=2.0, reduction="mean")) < ours

    def focal(xs: np.ndarray) -> np.ndarray:
        # monotone in x: for y = 1 both (1 - sigma)^2 and -log sigma fall, for y = 0 both rise
        return ref.sigmoid_focal_loss(xs, y, alpha=-1, gamma=2.0, reduction="none")

    assert_printed(0.3375, *printed_range(focal, x))
    assert abs(float(ours) - 0.3375) <= 2 * HALF_UNIT + FLOAT32_SLACK


# ---------------------------------------------------------------------------
# seed 002: per-class sigmoid focal loss (FCOS, alpha = 0.25, gamma = 2) on logits


def fcos_focal(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    return ref.sigmoid_focal_loss(x, t, alpha=0.25, gamma=2.0, reduction="none")


def test_seed002_inputs_are_logits() -> None:
    # a negative with x = 0.1: p = sigmoid(0.1), 1 - p_t = p, alpha_t = 0.75,
    # loss = -0.75 * p^2 * log(1 - p) = 0.1539 (read as a probability 0.1 it would be
    # -0.75 * 0.01 * log 0.9 = 0.00079)
    p = expit(0.1)
    by_hand = -0.75 * p**2 * np.log(1 - p)
    assert float(fcos_focal(np.array([0.1]), np.array([0.0]))[0]) == pytest.approx(by_hand)
    assert abs(by_hand - 0.1539) <= HALF_UNIT + FLOAT32_SLACK


SEED2_ROWS = [
    # pred (logits), target, printed loss
    ([0.1, 0.2, 0.8, 0.4, 0.4], [0, 0, 1, 0, 0], [0.1539, 0.1810, 0.4181, 0.2454, 0.2454]),
    ([0.9, 0.6, 0.2, 0.3, 0.5], [1, 0, 0, 0, 0], [0.0071, 0.3244, 0.1810, 0.2114, 0.2831]),
    ([0.6, 0.2, 0.3, 0.4, 0.6], [0, 0, 0, 0, 0], [0.3244, 0.1810, 0.2114, 0.2454, 0.3244]),
    ([0.1, 0.3, 0.1, 0.2, 0.4], [0, 0, 0, 0, 0], [0.1539, 0.2114, 0.1539, 0.1810, 0.2454]),
]
# (row, column) of the one printed entry that the formula does not give
SEED2_WRONG_ENTRY = (0, 2)


@pytest.mark.parametrize("row", range(4))
def test_seed002_per_class_losses(row: int) -> None:
    pred, target, printed = (np.array(v, dtype=np.float64) for v in SEED2_ROWS[row])
    loss = fcos_focal(pred, target)
    for col in range(5):
        if (row, col) == SEED2_WRONG_ENTRY:
            continue
        # the inputs are exact decimals, so only the printing rounds
        assert abs(loss[col] - printed[col]) <= HALF_UNIT + FLOAT32_SLACK, (col, loss[col])


def test_seed002_wrong_positive_entry() -> None:
    """The seed prints loss1[2] = 0.4181 for pred 0.8 with target 1; that is wrong.

    Target 1: p = sigmoid(0.8) = 0.68997, loss = -0.25 * (1 - p)^2 * log p
    = -0.25 * 0.31003^2 * log 0.68997 = 0.0089.
    0.4181 is the value for target 0: -0.75 * p^2 * log(1 - p) = 0.75 * 0.47606 * 1.17109.
    The seed's pred2 row handles its positive correctly (0.0071 for logit 0.9, target 1),
    so the table is inconsistent, and its row-1 positive was evaluated as a negative.
    """
    p = expit(0.8)
    as_positive = -0.25 * (1 - p) ** 2 * np.log(p)
    as_negative = -0.75 * p**2 * np.log(1 - p)
    loss = fcos_focal(np.array([0.8]), np.array([1.0]))[0]
    assert loss == pytest.approx(as_positive, rel=1e-14)
    assert abs(loss - 0.0089) <= HALF_UNIT + FLOAT32_SLACK
    assert abs(loss - 0.4181) > 0.4  # the seed's printed value is not the formula's
    assert abs(as_negative - 0.4181) <= HALF_UNIT + FLOAT32_SLACK  # but the target-0 one


def test_seed002_all_negative_point_sums_to_printed() -> None:
    # preds [0.2, 0.4, 0.1, 0.8, 0.2] (logits), all targets 0: the printed 1.1794 is the
    # SUM over the five classes, sum_c -0.75 * sigmoid(x_c)^2 * log(1 - sigmoid(x_c))
    # (the mean would be 0.2359). Note the seed introduces this point as
    # [0.2, 0.4, 0.9, 0.1, 0.3] but evaluates [0.2, 0.4, 0.1, 0.8, 0.2]; the number
    # belongs to the second vector (the first sums to 1.2622).
    x = np.array([0.2, 0.4, 0.1, 0.8, 0.2])
    p = expit(x)
    by_hand = np.sum(-0.75 * p**2 * np.log(1 - p))
    total = ref.sigmoid_focal_loss(x, np.zeros(5), reduction="sum")
    assert float(total) == pytest.approx(by_hand, rel=1e-14)
    assert abs(float(total) - 1.1794) <= HALF_UNIT + FLOAT32_SLACK
    mean = float(ref.sigmoid_focal_loss(x, np.zeros(5), reduction="mean"))
    assert abs(mean - 1.1794) > 0.9


def test_seed002_dog_example() -> None:
    # "-P(dog) * log q(dog) = -1 x log(0.7) = 0.36": nll reads only the target class, so
    # the other two probabilities (not given in the seed) are placeholders
    q = np.array([0.2, 0.7, 0.1])
    loss = float(ref.nll_loss(np.log(q), np.array(1)))
    assert loss == pytest.approx(-np.log(0.7), rel=1e-15)
    assert round(loss, 2) == 0.36


def test_seed002_cat_dog_horse_bce() -> None:
    # GT [0, 1, 0], sigmoid outputs [0.2, 0.8, 0.4]; Loss(cat) = -(0 log 0.2 + 1 log 0.8)
    # and the sample's loss is the sum over the three binary problems
    p = np.array([0.2, 0.8, 0.4])
    y = np.array([0.0, 1.0, 0.0])
    per_class = ref.binary_cross_entropy(p, y, reduction="none")
    assert per_class[0] == pytest.approx(-np.log(0.8), rel=1e-15)
    total = float(ref.binary_cross_entropy(p, y, reduction="sum"))
    assert total == pytest.approx(-(np.log(0.8) + np.log(0.8) + np.log(0.6)), rel=1e-15)


# ---------------------------------------------------------------------------
# seed 001: multi-class cross entropy, forms one and two; balanced BCE


SEED1_PROBS = np.array([0.1, 0.5, 0.1, 0.3])
SEED1_LABEL = 2  # the one-hot label [0, 0, 1, 0]


def test_seed001_form_one() -> None:
    # "loss = -(0*log0.1 + 0*log0.5 + 1*log0.1 + 0*log0.3) = -(log0.1)"
    nll = float(ref.nll_loss(np.log(SEED1_PROBS), np.array(SEED1_LABEL)))
    assert nll == pytest.approx(-np.log(0.1), rel=1e-15)
    # the probabilities sum to 1, so softmax(log p) = p and cross entropy agrees
    ce = float(ref.cross_entropy(np.log(SEED1_PROBS), np.array(SEED1_LABEL)))
    assert ce == pytest.approx(-np.log(0.1), rel=1e-14)


def test_seed001_form_two() -> None:
    # "loss = -(log(0.9) + log(0.5) + log(0.1) + log(0.7))": BCE over every channel of the
    # same prediction, log(1 - p) where the label is 0 and log p where it is 1
    y = np.eye(4)[SEED1_LABEL]
    total = float(ref.binary_cross_entropy(SEED1_PROBS, y, reduction="sum"))
    by_hand = -(np.log(0.9) + np.log(0.5) + np.log(0.1) + np.log(0.7))
    assert total == pytest.approx(by_hand, rel=1e-15)


def test_seed001_balanced_beta() -> None:
    # "beta = 1 - y / (H * W)" with y the number of positive pixels: 2 of 6 -> beta = 2/3,
    # positives weighted 2/3 and negatives 1 - beta = 1/3
    y = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    w = ref.balanced_bce_weights(y)
    assert np.allclose(w, np.where(y == 1, 2 / 3, 1 / 3), rtol=1e-15, atol=0)
    x = np.array([[[0.3, -1.2, 2.0], [0.0, 4.0, -0.5]]])
    balanced = ref.balanced_binary_cross_entropy_with_logits(x, y, reduction="none")
    weighted = ref.binary_cross_entropy_with_logits(x, y, weight=w, reduction="none")
    assert np.allclose(balanced, weighted, rtol=1e-15, atol=0)


# ---------------------------------------------------------------------------
# seed 003: the relations it states


def test_seed003_cross_entropy_is_nll_of_log_softmax() -> None:
    # "CE = NLL(LogSoftmax(inputs), targets)"
    x = np.array([[1.5, -0.3, 0.2, 2.0, -1.0], [0.0, 0.1, -0.1, 3.0, 1.0], [2.0, 2.0, 0, 0, 1]])
    t = np.array([1, 0, 4])
    ce = ref.cross_entropy(x, t, reduction="none")
    nll = ref.nll_loss(log_softmax(x, axis=1), t, reduction="none")
    assert np.allclose(ce, nll, rtol=1e-14, atol=0)


def test_seed003_qfocal_replaces_modulating_factor() -> None:
    # QFocal swaps (1 - p_t)^gamma for |y - sigmoid(x)|^gamma; with a 0/1 target the two
    # coincide (|1 - sigma| = 1 - p_t for y = 1, |0 - sigma| = 1 - p_t for y = 0), so
    # QFL equals the focal loss without alpha
    x = np.array([-3.0, -0.5, 0.0, 0.7, 4.0, 12.0])
    y = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    for gamma in (0.0, 1.5, 2.0):
        qfl = ref.quality_focal_loss(x, y, beta=gamma, reduction="none")
        focal = ref.sigmoid_focal_loss(x, y, alpha=-1, gamma=gamma, reduction="none")
        assert np.allclose(qfl, focal, rtol=1e-14, atol=0)


# ---------------------------------------------------------------------------
# hand-derived values


def test_cross_entropy_of_equal_logits_is_log_two() -> None:
    # softmax([0, 0]) = [1/2, 1/2], so -log p_0 = log 2
    assert float(ref.cross_entropy(np.zeros(2), np.array(0))) == pytest.approx(np.log(2), rel=1e-15)


def test_full_label_smoothing_is_uniform_cross_entropy() -> None:
    # eps = 1: l = (1/C) sum_c -log p_c = logsumexp(x) - mean(x), whatever the target
    x = np.array([[1.0, 2.0, 3.0], [-4.0, 0.5, 0.25]])
    expected = logsumexp(x, axis=1) - np.mean(x, axis=1)
    for t in ([0, 1], [2, 2]):
        got = ref.cross_entropy(x, np.array(t), reduction="none", label_smoothing=1.0)
        assert np.allclose(got, expected, rtol=1e-14, atol=0)


def test_kl_divergence_of_a_distribution_with_itself_is_zero() -> None:
    # KL(p || p) = sum p (log p - log p) = 0, including the p = 0 entry (0 * anything = 0)
    p = np.array([[0.5, 0.25, 0.25, 0.0], [0.1, 0.2, 0.3, 0.4]])
    with np.errstate(divide="ignore"):
        log_p = np.log(p)
    assert np.all(ref.kl_div(log_p, p, reduction="none") == 0.0)
    assert np.all(ref.kl_div(log_p, log_p, reduction="none", log_target=True) == 0.0)


def test_kl_divergence_batchmean_by_hand() -> None:
    # KL([1/2, 1/2] || [1/4, 3/4]) = 1/2 log 2 + 1/2 log(2/3); batchmean over one sample
    got = float(ref.kl_div(np.log([[0.25, 0.75]]), np.array([[0.5, 0.5]]), "batchmean"))
    assert got == pytest.approx(0.5 * np.log(2) + 0.5 * np.log(2 / 3), rel=1e-14)


def test_focal_losses_without_focusing_are_cross_entropies() -> None:
    # gamma = 0 makes the modulating factor 0^0 = 1 everywhere
    x = np.array([[2.0, -1.0, 0.5], [0.0, 0.0, 9.0]])
    t = np.array([0, 2])
    softmax_focal = ref.softmax_focal_loss(x, t, gamma=0.0, reduction="none")
    assert np.allclose(softmax_focal, ref.cross_entropy(x, t, reduction="none"), rtol=1e-15)
    z = x.ravel()
    y = np.array([1.0, 0.0, 0.3, 1.0, 0.0, 1.0])
    sigmoid_focal = ref.sigmoid_focal_loss(z, y, alpha=-1, gamma=0.0)
    bce = ref.binary_cross_entropy_with_logits(z, y, reduction="none")
    assert np.allclose(sigmoid_focal, bce, rtol=1e-15, atol=0)
