"""The float64 embedding references against mpmath at 40 significant digits.

Every mp_* function is the formula written in mpmath; none shares code with ``reference``. The
float64 inputs are exact binary numbers, and the sums that can cancel are formed exactly first
(fractions.Fraction): the coordinates x - y + eps of a distance, and (|x1|^2 + eps)(|x2|^2 +
eps) - (x1 . x2)^2, whose root over the norms is 1 - cos for a pair that is nearly parallel.
So the mp value is the true loss of exactly those inputs to 40 digits.

Agreement means |ref - mp| <= 1e-13 |mp| + 1e-300 + the ulps of the subtractions the formula
cannot avoid, u = 2^-53:

- a distance ||x - y + eps||_p: none. Its coordinates are summed without error, and the scaled
  norm (a division, a power, a sum of D terms, a root, a product) is good to (D + 7) u relative
  for p >= 1 and twice that for p = 1/2: under 1e-13 for D <= 4.
- the triplet hinge margin + d(a, p) - d_neg: each distance's (D + 7) u of itself, 16 u
  (d(a, p) + d_neg) in all (the three-term sum itself is error-free).
- the similar pair's 1 - cos = (|u1 - u2|^2 + e1 + e2) / 2, with u = x / n: the difference
  u1 - u2 is off by (D / 2 + 4) u of |u| <= 1 per coordinate, (D + 8) u in norm, so
  |u1 - u2|^2 / 2 by (D + 8) u |u1 - u2| + ((D + 8) u)^2 / 2: 16 u |u1 - u2| + 128 u^2 for
  D <= 3. Nearly parallel vectors have a loss of about |u1 - u2|^2 / 2, which keeps most of
  its digits, unlike 1 - cos formed as a difference (an absolute u, whatever the loss).
- the dissimilar pair's cos - margin: a dot product of D terms of unit vectors, (2 D + 8) u of
  sum |u1_i u2_i| <= 1, and an ulp of |margin|: 16 u (1 + |margin|).

Grids mix 0, subnormal and tiny coordinates with ordinary ones and 1e4 and 1e200 (whose square
overflows float64, and whose norms the references take without squaring), both signs, with
identical, parallel, antiparallel and nearly parallel pairs. A small derandomized Hypothesis
search per loss looks between the grid points.
"""

from __future__ import annotations

import functools
import itertools
import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reference as ref
from reference import embedding

mp = mpmath.MPContext()
mp.dps = 40

RTOL = 1e-13
TINY = 1e-300
U = 2.0**-53

# Coordinates of the grid vectors (D = 2).
VALUES = (0.0, 1e-300, 1e-6, -1e-6, 1e-3, 1.0, -1.0, 3.0, 1e4, -1e4, 1e200)
VECTORS = [np.array(v) for v in itertools.product(VALUES, repeat=2)]
# A smaller set for the all-pairs grids.
FEW = (0.0, 1e-300, 1e-6, 1.0, -3.0, 1e4, 1e200)
FEW_VECTORS = [np.array(v) for v in itertools.product(FEW, repeat=2)]
NORM_DEGREES = (1.0, 2.0, 3.0, 1.5, 0.5, math.inf)
EPSILONS = (0.0, 1e-6, 1e-3)
MARGINS = (0.0, 0.5, -0.5, 1.0, -1.0)

HYPOTHESIS = settings(max_examples=50, derandomize=True, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))


def _near_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """Each grid vector with itself, twice itself, its negation and a copy one ulp off."""
    out = []
    for x in VECTORS:
        out += [(x, x), (x, 2 * x), (x, -x), (x, np.nextafter(x, np.inf))]
    return out


PAIRS = [(x, y) for x in FEW_VECTORS for y in FEW_VECTORS] + _near_pairs()


# ---------------------------------------------------------------------------
# exact and mpmath formulas


def exact(x: float) -> Fraction:
    return Fraction(float(x))


def mpf(q: Fraction) -> mpmath.mpf:
    return mp.mpf(q.numerator) / q.denominator


def mp_distance(x: np.ndarray, y: np.ndarray, p: float, eps: float) -> mpmath.mpf:
    """|| x - y + eps ||_p, the coordinates exact before rounding to 40 digits."""
    return _distance(tuple(map(float, x)), tuple(map(float, y)), p, eps)


@functools.cache
def _distance(x: tuple[float, ...], y: tuple[float, ...], p: float, eps: float) -> mpmath.mpf:
    v = [abs(mpf(exact(a) - exact(b) + exact(eps))) for a, b in zip(x, y, strict=True)]
    if math.isinf(p):
        return max(v)
    return mp.fsum(c ** mp.mpf(p) for c in v) ** (1 / mp.mpf(p))


def mp_cosine(x1: np.ndarray, x2: np.ndarray, convention: str = "added"
              ) -> tuple[mpmath.mpf, mpmath.mpf, mpmath.mpf]:
    """cos, 1 - cos and |u1 - u2| of a pair under the convention (reference/embedding.py)."""
    dot = sum((exact(a) * exact(b) for a, b in zip(x1, x2, strict=True)), Fraction(0))
    squares = [sum((exact(a) ** 2 for a in x), Fraction(0)) for x in (x1, x2)]
    if convention == "added":
        eps = exact(embedding.COSINE_EPS)
        a, b = squares[0] + eps, squares[1] + eps
        norms = [mp.sqrt(mpf(a)), mp.sqrt(mpf(b))]
        root = mp.sqrt(mpf(a * b))
        cos = mpf(dot) / root
        # 1 - cos = (ab - dot^2) / (root (root + dot)), the numerator exact: no cancellation.
        gap = mpf(a * b - dot * dot) / (root * (root + mpf(dot))) if dot > 0 else 1 - cos
    elif min(squares) >= exact(embedding.CLAMPED_NORM_EPS) ** 2:  # no norm clamped
        norms = [mp.sqrt(mpf(s)) for s in squares]
        root = mp.sqrt(mpf(squares[0] * squares[1]))
        cos = mpf(dot) / root
        gap = (mpf(squares[0] * squares[1] - dot * dot) / (root * (root + mpf(dot)))
               if dot > 0 else 1 - cos)
    else:
        floor = exact(embedding.CLAMPED_NORM_EPS)
        with mp.workdps(120):  # a clamped norm: dot < n1 n2, and 120 digits hold what is left
            norms = [mp.sqrt(mpf(s)) if s >= floor**2 else mpf(floor) for s in squares]
            cos = mpf(dot) / (norms[0] * norms[1])
            gap = 1 - cos
    u1 = [mp.mpf(float(c)) / norms[0] for c in x1]
    u2 = [mp.mpf(float(c)) / norms[1] for c in x2]
    apart = mp.sqrt(mp.fsum((a - b) ** 2 for a, b in zip(u1, u2, strict=True)))
    return cos, gap, apart


def assert_within(actual: np.ndarray, want: list, allowance: list, what: str) -> None:
    actual = np.asarray(actual, dtype=np.float64).ravel()
    wanted = np.array([float(w) for w in want])
    extra = np.array([float(a) for a in allowance])
    assert actual.shape == wanted.shape
    with np.errstate(invalid="ignore"):  # inf - inf, where both overflow
        ok = np.abs(actual - wanted) <= RTOL * np.abs(wanted) + TINY + extra
    ok |= np.isinf(wanted) & (actual == wanted)
    if not np.all(ok):
        bad = np.flatnonzero(~ok)[:6]
        lines = [f"  #{i}: ref={actual[i]!r} mp={wanted[i]!r} allowance={extra[i]:.3g}"
                 for i in bad]
        pytest.fail(f"{what}: {np.count_nonzero(~ok)} of {wanted.size} differ:\n"
                    + "\n".join(lines))


# ---------------------------------------------------------------------------
# distances


@pytest.mark.parametrize("p", NORM_DEGREES)
@pytest.mark.parametrize("eps", EPSILONS)
def test_pairwise_distance_grid(p: float, eps: float) -> None:
    x = np.stack([a for a, _ in PAIRS])
    y = np.stack([b for _, b in PAIRS])
    want = [mp_distance(a, b, p, eps) for a, b in PAIRS]
    assert_within(ref.pairwise_distance(x, y, p, eps), want, [0.0] * len(want),
                  f"pairwise_distance p={p} eps={eps}")


def test_squared_distance_grid() -> None:
    x = np.stack([a for a, _ in PAIRS])
    y = np.stack([b for _, b in PAIRS])
    want = [mp_distance(a, b, 2.0, 0.0) ** 2 for a, b in PAIRS]
    with np.errstate(over="ignore"):
        assert_within(ref.squared_distance(x, y), want, [0.0] * len(want), "squared_distance")


def test_identical_vectors_are_eps_apart_and_the_distance_is_not_symmetric() -> None:
    x = np.array([[1.0, 2.0, 3.0]])
    for p in (1.0, 2.0, 3.0):
        assert float(ref.pairwise_distance(x, x, p)[0]) == pytest.approx(3 ** (1 / p) * 1e-6,
                                                                         rel=1e-15)
    y = np.array([[1.5, 2.0, 3.0]])
    assert float(ref.pairwise_distance(x, y, 1.0)[0]) == pytest.approx(0.5 - 1e-6 + 2e-6)
    assert float(ref.pairwise_distance(y, x, 1.0)[0]) == pytest.approx(0.5 + 1e-6 + 2e-6)
    assert float(ref.pairwise_distance(x, y, 1.0, eps=0.0)[0]) == 0.5
    with pytest.raises(ValueError, match="p must be positive"):
        ref.pairwise_distance(x, y, 0.0)


# ---------------------------------------------------------------------------
# cosine embedding loss


@functools.cache
def _mp_cosine(x1: tuple[float, ...], x2: tuple[float, ...], convention: str) -> tuple:
    return mp_cosine(np.array(x1), np.array(x2), convention)


def _cosine_expected(pairs: list, targets: list, margin: float, convention: str
                     ) -> tuple[list, list]:
    want, allowance = [], []
    for (x1, x2), y in zip(pairs, targets, strict=True):
        cos, gap, apart = _mp_cosine(tuple(map(float, x1)), tuple(map(float, x2)), convention)
        if y == 1:
            want.append(gap)
            allowance.append(16 * U * apart + 128 * U**2)
        else:
            want.append(max(mp.zero, cos - margin))
            allowance.append(16 * U * (1 + abs(margin)))
    return want, allowance


@pytest.mark.parametrize("convention", embedding.COSINE_EPS_CONVENTIONS)
def test_cosine_embedding_loss_grid(convention: str) -> None:
    x1 = np.stack([a for a, _ in PAIRS])
    x2 = np.stack([b for _, b in PAIRS])
    for margin, y in itertools.product(MARGINS, (1.0, -1.0)):
        target = np.full(len(PAIRS), y)
        got = ref.cosine_embedding_loss(x1, x2, target, margin, "none", cosine_eps=convention)
        want, allowance = _cosine_expected(PAIRS, list(target), margin, convention)
        assert_within(got, want, allowance, f"cosine y={y} margin={margin} {convention}")


def test_cosine_hand_values() -> None:
    # torch's eps is a float32 constant
    assert embedding.COSINE_EPS == 9.999999960041972e-13
    tiny = np.array([[1e-6, 0.0]])
    similar = np.array([1.0])
    # identical vectors of norm 1e-6: cos = 1e-12 / (1e-12 + eps), loss about 1/2; the
    # clamped norms give cosine 1, loss 0
    assert float(ref.cosine_embedding_loss(tiny, tiny, similar, reduction="sum")) == (
        pytest.approx(1 - 1e-12 / (1e-12 + embedding.COSINE_EPS), rel=1e-15))
    assert float(ref.cosine_embedding_loss(tiny, tiny, similar, reduction="sum",
                                           cosine_eps="clamped")) == 0.0
    # a zero vector has cosine 0: loss 1 when similar, max(0, -margin) when dissimilar
    zero, one = np.zeros((1, 3)), np.ones((1, 3))
    assert float(ref.cosine_embedding_loss(zero, one, similar, reduction="sum")) == (
        pytest.approx(1.0, rel=1e-15))
    assert float(ref.cosine_embedding_loss(zero, zero, -similar, -0.5, "sum")) == 0.5
    # orthogonal, dissimilar at the default margin 0: the hinge's kink, 0
    assert float(ref.cosine_embedding_loss(np.array([1.0, 0.0]), np.array([0.0, 2.0]),
                                           np.array(-1.0))) == 0.0
    # 3-4-5: cos = 0.6 / 0.8 ... unbatched pairs give a 0-d loss
    out = ref.cosine_embedding_loss(np.array([3.0, 4.0]), np.array([4.0, 3.0]), np.array(1.0),
                                    reduction="none")
    assert out.shape == () and float(out) == pytest.approx(1 - 24 / 25, rel=1e-12)


def test_cosine_reductions_and_errors() -> None:
    x1 = np.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]])
    x2 = np.array([[2.0, 1.0], [1.0, 1.0], [-3.0, 1e-3]])
    y = np.array([1.0, -1.0, 1.0])
    want, _ = _cosine_expected(list(zip(x1, x2, strict=True)), list(y), -0.25, "added")
    assert float(ref.cosine_embedding_loss(x1, x2, y, -0.25, "sum")) == pytest.approx(
        float(mp.fsum(want)), rel=1e-14)
    assert float(ref.cosine_embedding_loss(x1, x2, y, -0.25)) == pytest.approx(
        float(mp.fsum(want) / 3), rel=1e-14)
    assert np.isnan(ref.cosine_embedding_loss(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0)))
    with pytest.raises(ValueError, match="only \\+1 and -1"):
        ref.cosine_embedding_loss(x1, x2, np.array([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="target shape"):
        ref.cosine_embedding_loss(x1, x2, np.array([1.0]))
    with pytest.raises(ValueError, match="cosine_eps"):
        ref.cosine_embedding_loss(x1, x2, y, cosine_eps="other")


# ---------------------------------------------------------------------------
# triplet margin losses

TRIPLET_VALUES = (0.0, 1e-6, 1.0, -2.5, 1e4)
TRIPLET_VECTORS = [np.array(v) for v in itertools.product(TRIPLET_VALUES, repeat=2)]


def _triplets() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every anchor with every positive and a few negatives (itself, the positive, others)."""
    out = []
    for a, p in itertools.product(TRIPLET_VECTORS, repeat=2):
        for n in (a, p, TRIPLET_VECTORS[8], TRIPLET_VECTORS[-1]):
            out.append((a, p, n))
    return out


TRIPLETS = _triplets()


def mp_triplet(a, p, n, margin, degree, eps, swap) -> tuple[mpmath.mpf, mpmath.mpf]:
    """The loss and its allowance, 16 u (d(a, p) + d_neg)."""
    d_pos = mp_distance(a, p, degree, eps)
    d_neg = mp_distance(a, n, degree, eps)
    if swap:
        d_neg = min(d_neg, mp_distance(p, n, degree, eps))
    return max(mp.zero, mp.mpf(margin) + d_pos - d_neg), 16 * U * (d_pos + d_neg)


@pytest.mark.parametrize(("degree", "eps"), [(2.0, 1e-6), (1.0, 0.0), (3.0, 1e-3), (1.5, 1e-6)])
@pytest.mark.parametrize("swap", [False, True])
def test_triplet_margin_loss_grid(degree: float, eps: float, swap: bool) -> None:
    a, p, n = (np.stack(column) for column in zip(*TRIPLETS, strict=True))
    for margin in (1.0, 0.5, 2.5):
        got = ref.triplet_margin_loss(a, p, n, margin, degree, eps, swap, "none")
        expected = [mp_triplet(*t, margin, degree, eps, swap) for t in TRIPLETS]
        assert_within(got, [w for w, _ in expected], [e for _, e in expected],
                      f"triplet p={degree} eps={eps} swap={swap} margin={margin}")


def test_the_default_distance_is_pairwise_distance() -> None:
    a, p, n = (np.stack(column) for column in zip(*TRIPLETS, strict=True))
    for swap in (False, True):
        np.testing.assert_array_equal(
            ref.triplet_margin_with_distance_loss(a, p, n, swap=swap, reduction="none"),
            ref.triplet_margin_loss(a, p, n, swap=swap, reduction="none"))


def test_triplet_with_a_squared_distance_grid() -> None:
    a, p, n = (np.stack(column) for column in zip(*TRIPLETS, strict=True))
    got = ref.triplet_margin_with_distance_loss(a, p, n, distance_function=ref.squared_distance,
                                                margin=2.0, swap=True, reduction="none")
    want, allowance = [], []
    for x, y, z in TRIPLETS:
        d_pos = mp_distance(x, y, 2.0, 0.0) ** 2
        d_neg = min(mp_distance(x, z, 2.0, 0.0) ** 2, mp_distance(y, z, 2.0, 0.0) ** 2)
        want.append(max(mp.zero, 2 + d_pos - d_neg))
        allowance.append(16 * U * (d_pos + d_neg))
    assert_within(got, want, allowance, "triplet with the squared distance")


def test_triplet_hand_values_reductions_and_errors() -> None:
    a = np.array([[0.0, 0.0], [1.0, 2.0]])
    p = np.array([[0.0, 0.0], [1.0, 2.0]])
    n = np.array([[3.0, 4.0], [1.0, 2.5]])
    # identical anchors and positives are sqrt(2) 1e-6 apart; d(a, n) = ||(-3, -4) + eps||
    d_pos = math.sqrt(2) * 1e-6
    want = [0.0, 1 + d_pos - math.hypot(1e-6, -0.5 + 1e-6)]
    np.testing.assert_allclose(ref.triplet_margin_loss(a, p, n, reduction="none"), want,
                               rtol=1e-15)
    assert float(ref.triplet_margin_loss(a, p, n, reduction="sum")) == pytest.approx(
        sum(want), rel=1e-15)
    assert float(ref.triplet_margin_loss(a, p, n)) == pytest.approx(sum(want) / 2, rel=1e-15)
    one = ref.triplet_margin_loss(a[1], p[1], n[1], reduction="none")
    assert one.shape == () and float(one) == pytest.approx(want[1], rel=1e-15)
    assert np.isnan(ref.triplet_margin_loss(np.zeros((0, 2)), np.zeros((0, 2)),
                                            np.zeros((0, 2))))
    with pytest.raises(ValueError, match="margin must be greater than 0"):
        ref.triplet_margin_loss(a, p, n, margin=0.0)
    with pytest.raises(ValueError, match="margin must be greater than 0"):
        ref.triplet_margin_with_distance_loss(a, p, n, margin=-1.0)
    with pytest.raises(ValueError, match="negative shape"):
        ref.triplet_margin_loss(a, p, n[:1])
    with pytest.raises(ValueError, match="one distance per row"):
        ref.triplet_margin_with_distance_loss(a, p, n, distance_function=lambda x, y: x - y)


# ---------------------------------------------------------------------------
# a small search between the grid points

coordinates = st.one_of(st.sampled_from(VALUES[:-1]), st.floats(-1e4, 1e4))


@st.composite
def rows(draw: st.DrawFn, count: int) -> list[np.ndarray]:
    dim = draw(st.integers(1, 3))
    batch = draw(st.integers(1, 4))
    return [np.array(draw(st.lists(coordinates, min_size=batch * dim, max_size=batch * dim))
                     ).reshape(batch, dim) for _ in range(count)]


@HYPOTHESIS
@given(rows(2), st.sampled_from(MARGINS), st.sampled_from(embedding.COSINE_EPS_CONVENTIONS),
       st.booleans())
def test_cosine_hypothesis(pair: list[np.ndarray], margin: float, convention: str,
                           parallel: bool) -> None:
    x1, x2 = pair
    if parallel:  # nearly parallel pairs, where 1 - cos is tiny
        x2 = x1 * 3.0 + x2 * 1e-9
    y = np.where(np.arange(len(x1)) % 2 == 0, 1.0, -1.0)
    got = ref.cosine_embedding_loss(x1, x2, y, margin, "none", cosine_eps=convention)
    want, allowance = _cosine_expected(list(zip(x1, x2, strict=True)), list(y), margin,
                                       convention)
    assert_within(got, want, allowance, "cosine (hypothesis)")


@HYPOTHESIS
@given(rows(3), st.sampled_from((1.0, 2.0, 3.0, 1.5)), st.sampled_from(EPSILONS),
       st.booleans(), st.floats(1e-2, 10.0))
def test_triplet_hypothesis(triplet: list[np.ndarray], degree: float, eps: float, swap: bool,
                            margin: float) -> None:
    a, p, n = triplet
    got = ref.triplet_margin_loss(a, p, n, margin, degree, eps, swap, "none")
    expected = [mp_triplet(*t, margin, degree, eps, swap) for t in zip(a, p, n, strict=True)]
    assert_within(got, [w for w, _ in expected], [e for _, e in expected],
                  "triplet (hypothesis)")
