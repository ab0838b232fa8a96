"""The float64 regression and ranking references against mpmath at 40 significant digits.

Every mp_* function is the loss's formula written in mpmath; none shares code with
``reference``. The float64 inputs are exact binary numbers, so the mp value is the true
loss of exactly those inputs: a difference x - y or margin - x that cancels has operands
of similar size and is exact at 40 digits, one that does not cancel loses nothing that
matters. Margin ranking's margin - y x1 + y x2 can cancel between terms of very
different sizes (1e4 - (1e4 - 1e-100)), so that sum is formed in exact rationals
(fractions.Fraction) before it is rounded to 40 digits.

Agreement means |ref - mp| <= 1e-13 |mp| + 1e-300 everywhere (the floor covers values
that are zero or underflow in float64). No allowance is needed: d = |x - y| is one
correctly rounded subtraction, the linear branches subtract at most half of d, and the
margin ranking reference sums its three terms with error-free transformations, so even a
margin that cancels y (x1 - x2) to the last bit keeps its remainder.

Grids mix 0, subnormal and tiny values with ordinary ones and 1e4 and 1e200 (whose square
overflows to inf in both), both signs; the thresholds beta and delta sit on the grid
points so that d = beta, d = beta / 2 and d = 2 beta all occur. A small derandomized
Hypothesis search per family looks between the grid points.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reference as ref

mp = mpmath.MPContext()
mp.dps = 40

RTOL = 1e-13
TINY = 1e-300

MAGNITUDES = (5e-324, 1e-300, 1e-8, 1e-3, 0.1, 0.5, 1.0, 1.5, 2.0, 3.0, 10.0, 1e4, 1e200)
VALUES = (0.0, *MAGNITUDES, *(-m for m in MAGNITUDES))
BETAS = (0.0, 1e-3, 0.5, 1.0, 2.0, 1e4)
DELTAS = BETAS[1:]
SIGNS = (1.0, -1.0)
# decimals are not exact in binary: 0.1 - 0.7 + 0.6 and 0.1 - 0.3 + 0.2 leave tiny remainders
RANKING_VALUES = (0.0, 1e-8, 0.1, 0.3, 0.7, 1.0, 1 + 2**-52, 2.0, 1e4, -1e-8, -0.3, -1.0, -1e4)
MARGINS = (0.0, 1e-8, 0.2, 0.6, 1.0, 2.5, 1e4, -1.0)

# Derandomized, no example database, no health checks: a verdict must not depend on the
# machine's load (a too-slow health check under `pytest -n 2`) or on an earlier run's examples.
HYPOTHESIS = settings(max_examples=50, derandomize=True, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
values_st = st.one_of(st.sampled_from(VALUES[:-2]), st.floats(-1e4, 1e4))
thresholds_st = st.one_of(st.sampled_from(DELTAS), st.floats(1e-3, 10.0))


# ---------------------------------------------------------------------------
# comparison


def assert_close(
    actual: np.ndarray, exact: Sequence, inputs: dict[str, np.ndarray] | None = None
) -> None:
    """Compare float64 results with mp values (same order, flattened)."""
    actual = np.asarray(actual, dtype=np.float64).ravel()
    want = np.array([float(v) for v in exact])
    assert actual.shape == want.shape
    with np.errstate(invalid="ignore"):
        ok = np.abs(actual - want) <= RTOL * np.abs(want) + TINY
        ok |= np.isinf(want) & (actual == want)
    if not np.all(ok):
        bad = np.flatnonzero(~ok)[:8]
        lines = [
            "  "
            + ", ".join(f"{k}={np.ravel(v)[i]!r}" for k, v in (inputs or {}).items())
            + f": ref={actual[i]!r} mp={want[i]!r}"
            for i in bad
        ]
        pytest.fail(f"{np.count_nonzero(~ok)} of {want.size} differ:\n" + "\n".join(lines))


def assert_reduced(actual: np.ndarray, exact: Sequence, denominator: float) -> None:
    """A 'sum' or 'mean' of non-negative terms against mp.fsum."""
    actual = np.asarray(actual)
    assert actual.shape == () and actual.dtype == np.float64
    want = float(mp.fsum(exact) / denominator)
    assert abs(float(actual) - want) <= RTOL * abs(want) + TINY, (float(actual), want)


def to_mp(values: np.ndarray) -> list:
    return [mp.mpf(float(v)) for v in np.ravel(values)]


def columns(points: Sequence[tuple]) -> list[np.ndarray]:
    return [np.array(c, dtype=np.float64) for c in zip(*points, strict=True)]


# ---------------------------------------------------------------------------
# mpmath formulas


def mp_l1(x, y):
    return abs(x - y)


def mp_mse(x, y):
    return (x - y) ** 2


def mp_smooth_l1(x, y, beta):
    d = abs(x - y)
    if beta == 0:
        return d
    return d**2 / (2 * beta) if d < beta else d - beta / 2


def mp_huber(x, y, delta):
    d = abs(x - y)
    return d**2 / 2 if d < delta else delta * (d - delta / 2)


def mp_margin_ranking(x1: float, x2: float, y: float, margin: float) -> mpmath.mpf:
    exact = -Fraction(y) * (Fraction(x1) - Fraction(x2)) + Fraction(margin)
    exact = max(exact, Fraction(0))
    return mp.mpf(exact.numerator) / exact.denominator


def mp_hinge_embedding(x, y, margin):
    return x if y == 1 else max(mp.zero, margin - x)


PAIRS = columns(list(itertools.product(VALUES, VALUES)))


# ---------------------------------------------------------------------------
# regression: grids against mpmath


@pytest.mark.parametrize(
    ("reference", "formula"),
    [(ref.l1_loss, mp_l1), (ref.mse_loss, mp_mse)],
    ids=["l1", "mse"],
)
def test_l1_mse_grid(reference: Callable, formula: Callable) -> None:
    x, y = PAIRS
    exact = [formula(a, b) for a, b in zip(to_mp(x), to_mp(y), strict=True)]
    assert_close(reference(x, y, reduction="none"), exact, {"x": x, "y": y})


@pytest.mark.parametrize("beta", BETAS)
def test_smooth_l1_grid(beta: float) -> None:
    x, y = PAIRS
    b = mp.mpf(beta)
    exact = [mp_smooth_l1(u, v, b) for u, v in zip(to_mp(x), to_mp(y), strict=True)]
    assert_close(ref.smooth_l1_loss(x, y, reduction="none", beta=beta), exact, {"x": x, "y": y})


@pytest.mark.parametrize("delta", DELTAS)
def test_huber_grid(delta: float) -> None:
    x, y = PAIRS
    dl = mp.mpf(delta)
    exact = [mp_huber(u, v, dl) for u, v in zip(to_mp(x), to_mp(y), strict=True)]
    assert_close(ref.huber_loss(x, y, reduction="none", delta=delta), exact, {"x": x, "y": y})


def test_regression_reductions() -> None:
    x = np.array([0.5, -3.0, 1e4, 1e-8, 2.0, 0.0]).reshape(2, 3)
    y = np.array([0.0, 1.0, -1e4, 0.0, 2.0, 1.5]).reshape(2, 3)
    mx, my = to_mp(x), to_mp(y)
    cases = [
        (ref.l1_loss, {}, [mp_l1(a, b) for a, b in zip(mx, my, strict=True)]),
        (ref.mse_loss, {}, [mp_mse(a, b) for a, b in zip(mx, my, strict=True)]),
        (
            ref.smooth_l1_loss,
            {"beta": 2.0},
            [mp_smooth_l1(a, b, 2) for a, b in zip(mx, my, strict=True)],
        ),
        (
            ref.huber_loss,
            {"delta": 0.5},
            [mp_huber(a, b, 0.5) for a, b in zip(mx, my, strict=True)],
        ),
    ]
    for reference, kwargs, exact in cases:
        assert reference(x, y, reduction="none", **kwargs).shape == (2, 3)
        assert_reduced(reference(x, y, reduction="sum", **kwargs), exact, 1)
        assert_reduced(reference(x, y, reduction="mean", **kwargs), exact, 6)
        assert_reduced(reference(x, y, **kwargs), exact, 6)  # 'mean' is the default
        assert np.isnan(reference(np.zeros(0), np.zeros(0), **kwargs))  # 0/0, as in torch


@HYPOTHESIS
@given(st.lists(st.tuples(values_st, values_st), min_size=1, max_size=8), thresholds_st)
def test_regression_hypothesis(points: list[tuple[float, float]], threshold: float) -> None:
    x, y = columns(points)
    mx, my, t = to_mp(x), to_mp(y), mp.mpf(threshold)
    inputs = {"x": x, "y": y}
    pairs = list(zip(mx, my, strict=True))
    assert_close(ref.l1_loss(x, y, "none"), [mp_l1(a, b) for a, b in pairs], inputs)
    assert_close(ref.mse_loss(x, y, "none"), [mp_mse(a, b) for a, b in pairs], inputs)
    smooth = ref.smooth_l1_loss(x, y, "none", beta=threshold)
    assert_close(smooth, [mp_smooth_l1(a, b, t) for a, b in pairs], inputs)
    huber = ref.huber_loss(x, y, "none", delta=threshold)
    assert_close(huber, [mp_huber(a, b, t) for a, b in pairs], inputs)


# ---------------------------------------------------------------------------
# regression: hand-derived values and boundary conventions


def test_regression_hand_values() -> None:
    x = np.array([1.0, 2.0, 3.0])
    y = np.zeros(3)
    # |d| = 1, 2, 3: mean 6/3 = 2; d^2 = 1, 4, 9: mean 14/3
    assert float(ref.l1_loss(x, y)) == 2.0
    assert float(ref.mse_loss(x, y)) == pytest.approx(14 / 3, rel=1e-16)
    assert float(ref.mse_loss(x, y, reduction="sum")) == 14.0
    # smooth_l1 with beta = 2 at d = beta / 2 = 1: 0.5 * 1^2 / 2 = 1/4 = beta / 8;
    # at d = beta = 2 both branches give beta / 2 = 1; at d = 3 > beta: 3 - 1 = 2
    np.testing.assert_array_equal(ref.smooth_l1_loss(x, y, "none", beta=2.0), [0.25, 1.0, 2.0])
    # huber with delta = 2: 0.5 * 1 = 0.5; at d = delta: 2 (2 - 1) = 2 = 0.5 * 2^2;
    # d = 3: 2 (3 - 1) = 4
    np.testing.assert_array_equal(ref.huber_loss(x, y, "none", delta=2.0), [0.5, 2.0, 4.0])
    # torch's defaults beta = delta = 1, where the two losses coincide: 0.5, 1.5, 2.5
    np.testing.assert_array_equal(ref.smooth_l1_loss(x - 0.5, y, "none"), [0.125, 1.0, 2.0])
    np.testing.assert_array_equal(ref.huber_loss(x, y, "none"), [0.5, 1.5, 2.5])


def test_smooth_l1_beta_zero_is_l1() -> None:
    x, y = PAIRS
    with np.errstate(all="raise"):  # beta = 0 must not divide by zero
        smooth = ref.smooth_l1_loss(x, y, "none", beta=0.0)
    np.testing.assert_array_equal(smooth, ref.l1_loss(x, y, "none"))


@pytest.mark.parametrize("delta", DELTAS)
def test_huber_is_delta_times_smooth_l1(delta: float) -> None:
    # 0.5 d^2 = delta * 0.5 d^2 / delta and delta (d - 0.5 delta) = delta * (d - 0.5 delta):
    # equal up to the roundings of the two evaluation orders
    x, y = PAIRS
    huber = ref.huber_loss(x, y, "none", delta=delta)
    scaled = delta * ref.smooth_l1_loss(x, y, "none", beta=delta)
    np.testing.assert_allclose(huber, scaled, rtol=4 * np.finfo(np.float64).eps, atol=TINY)


def test_smooth_l1_huge_beta_does_not_overflow() -> None:
    # d = 1e200 < beta = 1e300: 0.5 d^2 / beta = 5e99, although d^2 overflows
    loss = ref.smooth_l1_loss(np.array([1e200]), np.array([0.0]), "none", beta=1e300)
    assert loss[0] == pytest.approx(5e99, rel=1e-15)


# ---------------------------------------------------------------------------
# ranking


def test_margin_ranking_grid() -> None:
    grid = itertools.product(RANKING_VALUES, RANKING_VALUES, SIGNS, MARGINS)
    x1, x2, y, margin = columns(list(grid))
    exact = [mp_margin_ranking(*v) for v in zip(x1, x2, y, margin, strict=True)]
    inputs = {"x1": x1, "x2": x2, "y": y, "margin": margin}
    # margin is a scalar in the API: one call per margin value
    actual = np.empty_like(x1)
    for m in MARGINS:
        sel = margin == m
        actual[sel] = ref.margin_ranking_loss(x1[sel], x2[sel], y[sel], m, reduction="none")
    assert_close(actual, exact, inputs)


def test_margin_ranking_keeps_the_remainder() -> None:
    # y = 1: -(x1 - x2) + margin = 0.1 - 0.7 + 0.6, which for the binary values of these
    # decimals is exactly 2^-55, not 0. The plain float evaluation rounds 0.7 - 0.1 to
    # 0.6's float and returns 0; the compensated sum returns 2^-55.
    x1, x2, margin = np.array([0.7]), np.array([0.1]), 0.6
    exact = mp.mpf(0.1) - mp.mpf(0.7) + mp.mpf(0.6)
    assert exact == mp.mpf(2) ** -55
    assert -(x1 - x2)[0] + margin == 0.0
    actual = ref.margin_ranking_loss(x1, x2, np.array([1.0]), margin, reduction="none")
    assert actual[0] == 2.0**-55


def test_hinge_embedding_grid() -> None:
    margins = (1.0, 0.0, 0.5, 2.0, -1.0, 1e4)
    x, y, margin = columns(list(itertools.product(VALUES, SIGNS, margins)))
    exact = [mp_hinge_embedding(*v) for v in zip(to_mp(x), to_mp(y), to_mp(margin), strict=True)]
    actual = np.empty_like(x)
    for m in margins:
        sel = margin == m
        actual[sel] = ref.hinge_embedding_loss(x[sel], y[sel], m, reduction="none")
    assert_close(actual, exact, {"x": x, "y": y, "margin": margin})


def mp_soft_margin(x, y):
    # log(1 + e^(-y x)) at 40 digits; for -y x past ~92 the 1 is below 40 digits of e^(-y x)
    # and log(e^(-y x) (1 + e^(y x))) is used instead, exact to the same digits.
    z = -y * x
    return z + mp.log1p(mp.exp(-z)) if z > 0 else mp.log1p(mp.exp(z))


def test_soft_margin_grid() -> None:
    x, y = columns(list(itertools.product(VALUES, SIGNS)))
    exact = [mp_soft_margin(*v) for v in zip(to_mp(x), to_mp(y), strict=True)]
    assert_close(ref.soft_margin_loss(x, y, reduction="none"), exact, {"x": x, "y": y})


@HYPOTHESIS
@given(st.lists(st.tuples(values_st, st.sampled_from(SIGNS)), min_size=1, max_size=6))
def test_soft_margin_hypothesis(points: list[tuple[float, float]]) -> None:
    x, y = columns(points)
    exact = [mp_soft_margin(*v) for v in zip(to_mp(x), to_mp(y), strict=True)]
    assert_close(ref.soft_margin_loss(x, y, reduction="none"), exact, {"x": x, "y": y})
    assert_reduced(ref.soft_margin_loss(x, y, reduction="mean"), exact, len(points))


def test_soft_margin_hand_values() -> None:
    # A zero margin costs log 2; a margin of 40 costs e^-40 (to 1e-35), -40 costs 40 + e^-40.
    x, y = np.array([0.0, 40.0, -40.0]), np.array([1.0, 1.0, 1.0])
    actual = ref.soft_margin_loss(x, y, reduction="none")
    assert actual[0] == pytest.approx(math.log(2.0), rel=1e-15)
    assert actual[1] == pytest.approx(math.exp(-40.0), rel=1e-15)
    assert actual[2] == pytest.approx(40.0, rel=1e-15)


def mp_poisson(x, y, log_input: bool, full: bool, eps: float):
    rate = mp.exp(x) if log_input else x
    loss = rate - y * (x if log_input else mp.log(x + mp.mpf(eps)))
    if full and y > 1:
        loss += y * mp.log(y) - y + mp.log(2 * mp.pi * y) / 2
    return loss


@pytest.mark.parametrize("log_input", [True, False])
@pytest.mark.parametrize("full", [False, True])
def test_poisson_nll_grid(log_input: bool, full: bool) -> None:
    # Log-rates to +-30, rates from 0 to 1e4; counts 0, 1, fractions and Stirling's y > 1.
    inputs = (-30.0, -2.0, 0.0, 0.5, 1.0, 3.0, 30.0) if log_input else (
        0.0, 1e-6, 0.5, 1.0, 2.0, 7.0, 1e4)
    counts = (0.0, 0.5, 1.0, 1.5, 2.0, 7.0, 1e4)
    x, y = columns(list(itertools.product(inputs, counts)))
    exact = [mp_poisson(a, b, log_input, full, 1e-8)
             for a, b in zip(to_mp(x), to_mp(y), strict=True)]
    actual = ref.poisson_nll_loss(x, y, log_input, full, reduction="none")
    # exp(x) - y x and x - y log(x + eps) subtract: 16 ulps of the larger term as allowance.
    want = np.array([float(v) for v in exact])
    terms = np.abs(np.exp(x) if log_input else x) + np.abs(y * (x if log_input else np.log(
        x + 1e-8))) + (np.abs(y * np.log(np.maximum(y, 1.0))) + y if full else 0.0)
    assert np.all(np.abs(actual - want) <= RTOL * np.abs(want) + 16 * 2.0**-52 * terms + TINY)


def mp_gaussian(x, y, v, eps: float, full: bool):
    vv = max(v, mp.mpf(eps))
    loss = (mp.log(vv) + (x - y) ** 2 / vv) / 2
    return loss + mp.log(2 * mp.pi) / 2 if full else loss


@pytest.mark.parametrize("eps", [1e-6, 1e-3])
@pytest.mark.parametrize("full", [False, True])
def test_gaussian_nll_grid(eps: float, full: bool) -> None:
    # Means and samples over every decade; variances of 0 and below, at and above eps.
    points = (-1e4, -3.0, -0.5, 0.0, 1e-8, 0.5, 1.0, 3.0, 1e4)
    variances = (0.0, 1e-8, 1e-6, 1e-3, 0.5, 1.0, 2.0, 1e4)
    x, y, v = columns(list(itertools.product(points, points, variances)))
    exact = [mp_gaussian(a, b, c, eps, full)
             for a, b, c in zip(to_mp(x), to_mp(y), to_mp(v), strict=True)]
    actual = ref.gaussian_nll_loss(x, y, v, full=full, eps=eps, reduction="none")
    # log v and (x - y)^2 / v cancel where v < 1: 4 ulps of their sizes as allowance.
    vv = np.maximum(v, eps)
    terms = np.abs(np.log(vv)) + (x - y) ** 2 / vv
    want = np.array([float(e) for e in exact])
    assert np.all(np.abs(actual - want) <= RTOL * np.abs(want) + 4 * 2.0**-52 * terms + TINY)


def test_gaussian_variance_layouts() -> None:
    x = np.zeros((2, 3))
    np.testing.assert_array_equal(ref.gaussian_variance(x, np.array([1.0, 2.0])),
                                  [[1.0] * 3, [2.0] * 3])  # the last axis dropped
    np.testing.assert_array_equal(ref.gaussian_variance(x, np.array([[1.0, 2.0, 3.0]])),
                                  [[1.0, 2.0, 3.0]] * 2)  # one axis of length 1
    np.testing.assert_array_equal(ref.gaussian_variance(x, 0.5), np.full((2, 3), 0.5))
    for wrong in (np.ones(3), np.ones((1, 1)), np.ones((2, 3, 1)), -np.ones((2, 3))):
        with pytest.raises(ValueError):
            ref.gaussian_variance(x, wrong)


def test_gaussian_nll_hand_values() -> None:
    # var = 1: (x - y)^2 / 2; var = 0 clamps to eps = 1e-6: (log 1e-6 + 0.25e6) / 2.
    actual = ref.gaussian_nll_loss(np.array([0.0, 0.0]), np.array([3.0, 0.5]),
                                   np.array([1.0, 0.0]), reduction="none")
    assert actual[0] == 4.5
    assert actual[1] == pytest.approx((math.log(1e-6) + 0.25e6) / 2, rel=1e-15)


def _exact_hinge(margin: float, own: float, other: float) -> Fraction:
    return max(Fraction(margin) - Fraction(own) + Fraction(other), Fraction(0))


def mp_multi_margin(row, y: int, p: int, margin: float, w: float, inside: bool):
    terms = []
    for i, other in enumerate(row):
        if i == y:
            continue
        z = Fraction(margin) - Fraction(row[y]) + Fraction(other)
        term = max(Fraction(w) * z, Fraction(0)) ** p if inside else Fraction(w) * max(
            z, Fraction(0)) ** p
        terms.append(term)
    total = sum(terms, Fraction(0)) / len(row)
    return mp.mpf(total.numerator) / total.denominator


ROWS = list(itertools.product(RANKING_VALUES, repeat=3))


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("placement", ["outside", "inside"])
def test_multi_margin_grid(p: int, placement: str) -> None:
    x = np.array(ROWS)
    weight = np.array([0.5, 2.0, 3.0])
    for margin in (0.0, 1.0, 0.2, 1e4, -1.0):
        for y in (0, 2):
            target = np.full(len(ROWS), y)
            exact = [mp_multi_margin(row, y, p, margin, weight[y], placement == "inside")
                     for row in ROWS]
            actual = ref.multi_margin_loss(x, target, p, margin, weight, "none", placement)
            assert_close(actual, exact, {"margin": np.full(len(ROWS), margin)})


def mp_multilabel_margin(row, listed: list[int]):
    total = Fraction(0)
    for j in listed:
        for i, other in enumerate(row):
            if i not in listed:
                total += _exact_hinge(1.0, row[j], other)
    total /= len(row)
    return mp.mpf(total.numerator) / total.denominator


@pytest.mark.parametrize("target_row", [[0, -1, 2], [2, 0, -1], [1, 1, -1], [-1, 0, 1],
                                        [0, 1, 2]])
def test_multilabel_margin_grid(target_row: list[int]) -> None:
    x = np.array(ROWS)
    listed = target_row[:target_row.index(-1)] if -1 in target_row else target_row
    exact = [mp_multilabel_margin(row, listed) for row in ROWS]
    actual = ref.multilabel_margin_loss(x, np.tile(target_row, (len(ROWS), 1)), "none")
    assert_close(actual, exact)


@HYPOTHESIS
@given(st.lists(values_st, min_size=1, max_size=5), st.data())
def test_class_margins_hypothesis(row: list[float], data: st.DataObject) -> None:
    y = data.draw(st.integers(0, len(row) - 1))
    margin = data.draw(st.sampled_from(MARGINS))
    p = data.draw(st.sampled_from([1, 2]))
    actual = ref.multi_margin_loss(np.array(row), np.array(y), p, margin, reduction="none")
    assert_close(actual, [mp_multi_margin(row, y, p, margin, 1.0, False)])
    listed = data.draw(st.lists(st.integers(0, len(row) - 1), max_size=len(row)))
    target_row = (listed + [-1] * len(row))[:len(row)]
    actual = ref.multilabel_margin_loss(np.array(row), np.array(target_row), "none")
    assert_close(actual, [mp_multilabel_margin(row, listed[:len(row)])])


def test_ranking_hand_values() -> None:
    # margin_ranking, margin 1: y = 1 with x1 - x2 = 1 sits exactly at the margin: 0;
    # equal inputs: max(0, 0 + 1) = 1; y = -1 with x1 - x2 = -1: max(0, -1 + 1) = 0;
    # y = -1 with x1 - x2 = 1 (the wrong order): max(0, 1 + 1) = 2
    x1, x2 = np.array([1.0, 2.0, 0.0, 1.0]), np.array([0.0, 2.0, 1.0, 0.0])
    y = np.array([1.0, 1.0, -1.0, -1.0])
    np.testing.assert_array_equal(ref.margin_ranking_loss(x1, x2, y, 1.0, "none"), [0, 1, 0, 2])
    assert float(ref.margin_ranking_loss(x1, x2, y, 1.0)) == 0.75  # (0 + 1 + 0 + 2) / 4
    # margin 0.5: max(0, -1 + 0.5) = 0, 0.5, max(0, -1 + 0.5) = 0, 1 + 0.5: sum 2;
    # margin -1: 0, 0 (0 - 1 < 0), 0, 1 - 1 = 0
    assert float(ref.margin_ranking_loss(x1, x2, y, 0.5, "sum")) == 2.0
    assert float(ref.margin_ranking_loss(x1, x2, y, -1.0, "sum")) == 0.0
    # hinge_embedding, margin 1: y = 1 gives x itself, even negative (-0.5);
    # y = -1: max(0, 1 - 0.25) = 0.75 and max(0, 1 - 3) = 0
    x, t = np.array([-0.5, 2.0, 0.25, 3.0]), np.array([1.0, 1.0, -1.0, -1.0])
    np.testing.assert_array_equal(
        ref.hinge_embedding_loss(x, t, reduction="none"), [-0.5, 2, 0.75, 0]
    )
    assert float(ref.hinge_embedding_loss(x, t)) == pytest.approx(2.25 / 4, rel=1e-16)


def test_ranking_reductions() -> None:
    x1 = np.array([0.3, -2.0, 1e4, 1e-8, 0.0])
    x2 = np.array([0.1, 1.0, -1.0, 0.0, 0.0])
    y = np.array([1.0, -1.0, -1.0, 1.0, 1.0])
    exact = [mp_margin_ranking(*v, 0.2) for v in zip(x1, x2, y, strict=True)]
    assert_reduced(ref.margin_ranking_loss(x1, x2, y, 0.2, "sum"), exact, 1)
    assert_reduced(ref.margin_ranking_loss(x1, x2, y, 0.2), exact, 5)
    distances = np.abs(x1)
    hinge = [
        mp_hinge_embedding(a, b, mp.mpf(2)) for a, b in zip(to_mp(distances), to_mp(y), strict=True)
    ]
    assert_reduced(ref.hinge_embedding_loss(distances, y, 2.0, "sum"), hinge, 1)
    assert_reduced(ref.hinge_embedding_loss(distances, y, 2.0), hinge, 5)
    assert np.isnan(ref.margin_ranking_loss(np.zeros(0), np.zeros(0), np.zeros(0)))
    assert np.isnan(ref.hinge_embedding_loss(np.zeros(0), np.zeros(0)))


@HYPOTHESIS
@given(
    st.lists(st.tuples(values_st, values_st, st.sampled_from(SIGNS)), min_size=1, max_size=8),
    st.one_of(st.sampled_from(MARGINS), st.floats(-5.0, 5.0)),
)
def test_ranking_hypothesis(points: list[tuple[float, float, float]], margin: float) -> None:
    x1, x2, y = columns(points)
    inputs = {"x1": x1, "x2": x2, "y": y}
    exact = [mp_margin_ranking(a, b, c, margin) for a, b, c in zip(x1, x2, y, strict=True)]
    assert_close(ref.margin_ranking_loss(x1, x2, y, margin, "none"), exact, inputs)
    m = mp.mpf(margin)
    hinge = [mp_hinge_embedding(a, c, m) for a, c in zip(to_mp(x1), to_mp(y), strict=True)]
    assert_close(ref.hinge_embedding_loss(x1, y, margin, "none"), hinge, inputs)


# ---------------------------------------------------------------------------
# conventions and misuse


def test_outputs_are_float64() -> None:
    x32, y32 = np.ones(3, dtype=np.float32), np.zeros(3, dtype=np.float32)
    for loss in (ref.l1_loss, ref.mse_loss, ref.smooth_l1_loss, ref.huber_loss):
        assert loss(x32, y32, "none").dtype == np.float64
        assert loss(x32, y32).shape == () and loss(x32, y32).dtype == np.float64
    signs = np.array([1.0, -1.0, 1.0], dtype=np.float32)
    assert ref.margin_ranking_loss(x32, y32, signs, reduction="none").dtype == np.float64
    assert ref.hinge_embedding_loss(x32, signs, reduction="sum").dtype == np.float64
    assert ref.margin_ranking_loss(np.array(1.0), np.array(0.0), np.array(1.0)).shape == ()


@pytest.mark.parametrize(
    "call",
    [
        lambda: ref.l1_loss(np.ones(2), np.ones(2), reduction="avg"),
        lambda: ref.mse_loss(np.ones(2), np.ones(3)),
        lambda: ref.l1_loss(np.ones((2, 1)), np.ones(2)),  # torch would broadcast
        lambda: ref.smooth_l1_loss(np.ones(2), np.ones(2), beta=-1.0),
        lambda: ref.huber_loss(np.ones(2), np.ones(2), delta=0.0),
        lambda: ref.huber_loss(np.ones(2), np.ones(2), delta=-1.0),
        lambda: ref.huber_loss(np.ones(2), np.ones(2), reduction="batchmean"),
        lambda: ref.margin_ranking_loss(np.ones(2), np.ones(2), np.array([1.0, 0.0])),
        lambda: ref.margin_ranking_loss(np.ones(2), np.ones(3), np.ones(2)),
        lambda: ref.margin_ranking_loss(np.ones(2), np.ones(2), np.ones(1)),
        lambda: ref.margin_ranking_loss(np.ones(2), np.ones(2), np.ones(2), reduction="max"),
        lambda: ref.hinge_embedding_loss(np.ones(2), np.array([1.0, 2.0])),
        lambda: ref.hinge_embedding_loss(np.ones(2), np.ones(3)),
        lambda: ref.hinge_embedding_loss(np.ones(2), np.ones(2), reduction="none "),
    ],
)
def test_misuse_raises_value_error(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()


def test_error_messages_name_the_problem() -> None:
    with pytest.raises(ValueError, match="beta >= 0"):
        ref.smooth_l1_loss(np.ones(1), np.ones(1), beta=-0.5)
    with pytest.raises(ValueError, match="delta > 0"):
        ref.huber_loss(np.ones(1), np.ones(1), delta=0.0)
    with pytest.raises(ValueError, match=r"shape \(3,\) must equal input shape \(2,\)"):
        ref.l1_loss(np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match=r"\+1 and -1"):
        ref.hinge_embedding_loss(np.ones(1), np.zeros(1))


def test_nan_propagates() -> None:
    nan = np.array([math.nan])
    for loss in (ref.l1_loss, ref.mse_loss, ref.smooth_l1_loss, ref.huber_loss):
        assert np.isnan(loss(nan, np.zeros(1), "none")[0])
    assert np.isnan(ref.margin_ranking_loss(nan, np.zeros(1), np.ones(1), reduction="none")[0])
    assert np.isnan(ref.hinge_embedding_loss(nan, -np.ones(1), reduction="none")[0])
