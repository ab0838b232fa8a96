"""The float64 box metrics and losses against exact arithmetic and mpmath, and their
conventions.

``exact_geometry`` writes the papers' quantities directly (intersection as the product of
the clamped overlaps, union = |A| + |B| - |A n B|, the enclosing box C, the centre
distance) and shares no code with ``reference``, which builds the same quantities from a
3 x 3 cell split. The float64 coordinates are exact binary numbers, and these quantities
are rational in them, so they are computed as exact fractions (fractions.Fraction), and
so are 1 - IoU, |C| - |A u B| and the other differences in which they cancel: the expected
value is the true metric of exactly those boxes, however close the boxes are. Only the
aspect term of CIoU is transcendental (pi and atan); it is evaluated in mpmath at 40
digits, where it meets no cancellation that matters (see mp_loss), and every exact value is
rounded to 40 digits at the end.

Agreement means |ref - mp| <= 1e-13 |mp| + 1e-300 for the losses and for IoU, which are
all sums of non-negative terms. The metrics that subtract a penalty from IoU (GIoU, DIoU,
CIoU, pairwise and elementwise) may cancel to any small value, and no float64 evaluation
knows that difference better than a few ulps of the terms, so they get an allowance of
16 ulps of |IoU| + |penalty| on top.

The grid places one box at 5 scales (1e-3 to 1e4) and 4 offsets (up to 1e4, both signs)
and pairs it with: itself; boxes sharing its centre (smaller, larger, crossing); boxes
inside it, flush with an edge or not; shifted boxes overlapping by half or barely;
boxes touching along an edge or at a corner; disjoint and distant ones; zero-width,
zero-height and point boxes; and boxes of a very different scale. A small derandomized
Hypothesis search looks between them, with coordinates and sizes 0 or of magnitude 1e-3 to
1e4: far smaller ones make areas underflow, the one place where float64 cannot keep the
relative accuracy asserted here (reference.boxes says so).
"""

from __future__ import annotations

import functools
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
CANCEL = 16 * np.finfo(np.float64).eps
EPS = 1e-7  # torchvision's default

# Derandomized, no example database, no health checks: a verdict must not depend on the
# machine's load (a too-slow health check under `pytest -n 2`) or on an earlier run's examples.
HYPOTHESIS = settings(max_examples=50, derandomize=True, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))

LOSSES = {
    "iou": ref.iou_loss,
    "giou": ref.generalized_box_iou_loss,
    "diou": ref.distance_box_iou_loss,
    "ciou": ref.complete_box_iou_loss,
}


# ---------------------------------------------------------------------------
# exact and mpmath formulas


@functools.cache
def exact_geometry(a: tuple[float, ...], b: tuple[float, ...]) -> dict[str, Fraction]:
    """Exact areas, squared distances and sizes of boxes a and b (tuples of 4 floats)."""
    x1, y1, x2, y2 = map(Fraction, a)
    gx1, gy1, gx2, gy2 = map(Fraction, b)
    overlap_w = max(Fraction(0), min(x2, gx2) - max(x1, gx1))
    overlap_h = max(Fraction(0), min(y2, gy2) - max(y1, gy1))
    inter = overlap_w * overlap_h
    hull_w = max(x2, gx2) - min(x1, gx1)
    hull_h = max(y2, gy2) - min(y1, gy1)
    return {
        "inter": inter,
        "union": (x2 - x1) * (y2 - y1) + (gx2 - gx1) * (gy2 - gy1) - inter,
        "hull": hull_w * hull_h,
        "rho2": ((x1 + x2) / 2 - (gx1 + gx2) / 2) ** 2 + ((y1 + y2) / 2 - (gy1 + gy2) / 2) ** 2,
        "c2": hull_w**2 + hull_h**2,
        "w_a": x2 - x1,
        "h_a": y2 - y1,
        "w_b": gx2 - gx1,
        "h_b": gy2 - gy1,
    }


def ratio(num: Fraction, den: Fraction) -> Fraction | float:
    """num / den exactly, and 0 / 0 = nan (zero-area boxes without eps), as in float."""
    if den == 0:
        assert num == 0
        return math.nan
    return num / den


def to_mp(value: Fraction | float) -> mpmath.mpf:
    if isinstance(value, float):  # a nan from ratio
        return mp.mpf(value)
    return mp.mpf(value.numerator) / value.denominator


def mp_divide(num: mpmath.mpf, den: mpmath.mpf) -> mpmath.mpf:
    """num / den in mpmath with 0 / 0 = nan (mpmath raises instead)."""
    return mp.nan if den == 0 else num / den


def mp_atan_ratio(w: Fraction, h: Fraction) -> mpmath.mpf:
    """atan(w / h) as torchvision evaluates it: atan(w / 0) = atan(inf) = pi / 2 for w > 0,
    and atan(0 / 0) = atan(nan) = nan."""
    if h == 0:
        return mp.pi / 2 if w > 0 else mp.nan
    return mp.atan(to_mp(w / h))


def mp_v(g: dict[str, Fraction]) -> mpmath.mpf:
    """CIoU's v = (4 / pi^2) (atan(w_b / h_b) - atan(w_a / h_a))^2."""
    angle_a, angle_b = mp_atan_ratio(g["w_a"], g["h_a"]), mp_atan_ratio(g["w_b"], g["h_b"])
    return 4 / mp.pi**2 * (angle_b - angle_a) ** 2


def mp_loss(kind: str, a: tuple, b: tuple, eps: float) -> mpmath.mpf:
    """The torchvision losses: eps in every denominator.

    The difference of the two atans cancels for similar aspect ratios, leaving v with an
    absolute error of ~1e-40 |angle difference|; alpha v = v^2 / (1 - IoU + v + eps) then
    carries an absolute error below 1e-39 v, negligible beside 1 - IoU + alpha v.
    """
    g = exact_geometry(a, b)
    e = Fraction(eps)
    one_minus_iou = ratio(g["union"] + e - g["inter"], g["union"] + e)
    if kind == "iou":
        return to_mp(one_minus_iou)
    if kind == "giou":
        return to_mp(one_minus_iou + ratio(g["hull"] - g["union"], g["hull"] + e))
    diou = one_minus_iou + ratio(g["rho2"], g["c2"] + e)
    if kind == "diou":
        return to_mp(diou)
    v = mp_v(g)
    alpha = mp_divide(v, to_mp(one_minus_iou) + v + to_mp(e))
    return to_mp(diou) + alpha * v


def mp_metric(kind: str, a: tuple, b: tuple, eps: float) -> tuple[mpmath.mpf, mpmath.mpf]:
    """(metric, |IoU| + |penalty|): box_iou / generalized_box_iou (no eps), DIoU and CIoU
    with eps in c^2 and in alpha only, the torchvision pairwise conventions."""
    g = exact_geometry(a, b)
    e = Fraction(eps)
    iou = ratio(g["inter"], g["union"])
    if kind == "iou":
        return to_mp(iou), to_mp(iou)
    if kind == "giou":
        penalty = ratio(g["hull"] - g["union"], g["hull"])
        return to_mp(iou - penalty), to_mp(iou + penalty)
    penalty = ratio(g["rho2"], g["c2"] + e)
    if kind == "diou":
        return to_mp(iou - penalty), to_mp(iou + penalty)
    v = mp_v(g)
    alpha = mp_divide(v, to_mp(ratio(g["union"] - g["inter"], g["union"])) + v + to_mp(e))
    return to_mp(iou - penalty) - alpha * v, to_mp(iou + penalty) + alpha * v


def mp_pair_metric(kind: str, a: tuple, b: tuple, eps: float) -> tuple[mpmath.mpf, mpmath.mpf]:
    """box_pair_iou / box_pair_giou: IoU = |A n B| / (|A u B| + eps), hull term over |C| + eps."""
    g = exact_geometry(a, b)
    e = Fraction(eps)
    iou = ratio(g["inter"], g["union"] + e)
    if kind == "iou":
        return to_mp(iou), to_mp(iou)
    penalty = ratio(g["hull"] - g["union"], g["hull"] + e)
    return to_mp(iou - penalty), to_mp(iou + penalty)


# ---------------------------------------------------------------------------
# comparison


def assert_close(
    actual: np.ndarray,
    exact: Sequence,
    scale: Sequence | None = None,
    boxes: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """Compare float64 results with mp values (same order, flattened); ``scale`` gives the
    magnitude of the terms of a cancelling difference."""
    actual = np.asarray(actual, dtype=np.float64).ravel()
    want = np.array([float(v) for v in exact])
    assert actual.shape == want.shape
    allowance = 0.0 if scale is None else CANCEL * np.array([float(s) for s in scale])
    with np.errstate(invalid="ignore"):
        ok = np.abs(actual - want) <= RTOL * np.abs(want) + TINY + allowance
    ok |= np.isnan(want) & np.isnan(actual)
    if not np.all(ok):
        lines = []
        for i in np.flatnonzero(~ok)[:8]:
            where = "" if boxes is None else f"{boxes[0][i].tolist()} vs {boxes[1][i].tolist()}"
            lines.append(f"  [{i}] {where}: ref={actual[i]!r} mp={want[i]!r}")
        pytest.fail(f"{np.count_nonzero(~ok)} of {want.size} differ:\n" + "\n".join(lines))


def exact_losses(kind: str, a: np.ndarray, b: np.ndarray, eps: float = EPS) -> list:
    return [mp_loss(kind, tuple(p), tuple(q), eps) for p, q in zip(a, b, strict=True)]


# ---------------------------------------------------------------------------
# the grid


SCALES = (1e-3, 0.37, 1.0, 29.5, 1e4)
OFFSETS = ((0.0, 0.0), (-1e4, 3.7), (0.5, -1e-3), (123.456, -7e3))


def partners(box: np.ndarray) -> list[np.ndarray]:
    """Second boxes for one box, in every relation the module docstring lists."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx, cy = x1 + w / 2, y1 + h / 2
    return [
        box,  # identical
        np.array([cx - 0.25 * w, cy - 0.25 * h, cx + 0.25 * w, cy + 0.25 * h]),  # same centre
        np.array([cx - 0.3 * w, cy - 2 * h, cx + 0.3 * w, cy + 2 * h]),  # same centre, crossing
        np.array([x1 - w, y1 - h, x2 + w, y2 + h]),  # contains it, same centre
        np.array([x1 - w, y1 - 0.5 * h, x2 + 3 * w, y2 + 0.25 * h]),  # contains it
        np.array([x1 + 0.1 * w, y1 + 0.2 * h, x1 + 0.5 * w, y1 + 0.6 * h]),  # inside
        np.array([x1, y1 + 0.25 * h, x1 + 0.5 * w, y2]),  # inside, flush with 3 edges
        np.array([x1 + 0.5 * w, y1, x2 + 0.5 * w, y2]),  # overlap by half along x
        np.array([x1 + 0.3 * w, y1 - 0.4 * h, x2 + 0.3 * w, y2 - 0.4 * h]),  # diagonal overlap
        np.array([x1 + 1e-6 * w, y1, x2 + 1e-6 * w, y2 + 2e-6 * h]),  # nearly identical
        np.array([x2, y1, x2 + w, y2]),  # touching along an edge
        np.array([x2, y2, x2 + 2 * w, y2 + 0.5 * h]),  # touching at a corner
        np.array([x2 + w, y1, x2 + 2 * w, y2]),  # disjoint, one width apart
        np.array([x1 + 1e4, y1 - 1e4, x2 + 1e4, y2 - 1e4]),  # distant (1e7 sizes at 1e-3)
        np.array([cx, y1, cx, y2]),  # zero width, inside
        np.array([x1 - w, cy, x2 + w, cy]),  # zero height, crossing
        np.array([cx, cy, cx, cy]),  # a point at the centre
        np.array([x2, y2, x2, y2]),  # a point on the corner
        np.array([x1, y1, x1 + 1e-3, y1 + 1e-3]),  # tiny box in the corner
        np.array([x1 - 1e4, y1 - 1e4, x1 + 1e-3, y1 + 2e4]),  # huge box overlapping a sliver
    ]


def grid_pairs() -> tuple[np.ndarray, np.ndarray]:
    first, second = [], []
    for scale, (ox, oy) in itertools.product(SCALES, OFFSETS):
        box = np.array([ox, oy, ox + scale, oy + 0.75 * scale])
        for other in partners(box):
            first.append(box)
            second.append(other)
    # degenerate against degenerate: points, collinear and crossing segments
    point, other_point = [1.0, 2.0, 1.0, 2.0], [4.0, -2.0, 4.0, -2.0]
    segment, crossing = [0.0, 2.0, 3.0, 2.0], [1.0, 0.0, 1.0, 5.0]
    degenerate = [
        (point, point),
        (point, other_point),
        (segment, segment),
        (segment, [2.0, 2.0, 7.0, 2.0]),  # collinear, overlapping: C has zero area too
        (segment, crossing),
        (point, segment),
        (segment, [0.0, 0.0, 3.0, 2.0]),  # a segment on the edge of a box
    ]
    for a, b in degenerate:
        first.append(np.array(a))
        second.append(np.array(b))
    a, b = np.array(first), np.array(second)
    # both orders: CIoU's prediction and ground truth swap roles
    return np.concatenate([a, b]), np.concatenate([b, a])


GRID_A, GRID_B = grid_pairs()


# ---------------------------------------------------------------------------
# losses: grid, reductions, Hypothesis


@pytest.mark.parametrize("kind", LOSSES)
def test_losses_grid(kind: str) -> None:
    actual = LOSSES[kind](GRID_A, GRID_B)
    assert actual.shape == (len(GRID_A),) and actual.dtype == np.float64
    assert_close(actual, exact_losses(kind, GRID_A, GRID_B), boxes=(GRID_A, GRID_B))


@pytest.mark.parametrize("eps", [0.0, 1e-3])
@pytest.mark.parametrize("kind", LOSSES)
def test_losses_other_eps(kind: str, eps: float) -> None:
    # eps = 0 leaves the denominators bare: 0/0 = nan for two zero-area boxes, as the
    # same formulas give in torch
    a, b = GRID_A[::3], GRID_B[::3]
    actual = LOSSES[kind](a, b, eps=eps)
    assert_close(actual, exact_losses(kind, a, b, eps), boxes=(a, b))


@pytest.mark.parametrize("kind", LOSSES)
def test_loss_reductions(kind: str) -> None:
    # (2, 10, 4) batches: the losses are elementwise over every leading axis
    a, b = GRID_A[:20].reshape(2, 10, 4), GRID_B[:20].reshape(2, 10, 4)
    loss = LOSSES[kind]
    exact = exact_losses(kind, a.reshape(-1, 4), b.reshape(-1, 4))
    none = loss(a, b)
    assert none.shape == (2, 10)
    assert_close(none, exact)
    total = mp.fsum(exact)
    for reduction, denominator in (("sum", 1), ("mean", 20)):
        reduced = loss(a, b, reduction=reduction)
        assert reduced.shape == () and reduced.dtype == np.float64
        assert_close(reduced, [total / denominator])
    # torchvision: the mean over no boxes is 0.0 * loss.sum() = 0, not nan
    empty = np.zeros((0, 4))
    assert float(loss(empty, empty, reduction="mean")) == 0.0
    assert float(loss(empty, empty, reduction="sum")) == 0.0
    assert loss(empty, empty).shape == (0,)
    # a single pair of shape (4,) gives a 0-d loss
    assert loss(a[0, 0], b[0, 0]).shape == ()


def magnitude_st(low: float, high: float) -> st.SearchStrategy[float]:
    """0, or |v| in [low, high] spaced both linearly and logarithmically.

    Values below 1e-154 are left out: their products (areas) underflow in float64,
    where no evaluation keeps relative accuracy (see reference.boxes).
    """
    log_spaced = st.builds(lambda e: 10.0**e, st.floats(math.log10(low), math.log10(high)))
    return st.one_of(st.just(0.0), log_spaced, st.floats(low, high))


signed = st.sampled_from([1.0, -1.0])
coordinates_st = st.one_of(
    st.sampled_from([0.0, 1e-3, -1e-3, 1.0, -7.5, 1e4, -1e4]),
    st.builds(lambda s, v: s * v, signed, magnitude_st(1e-3, 1e4)),
)
sizes_st = st.one_of(st.sampled_from([0.0, 1e-3, 0.5, 1.0, 1e4]), magnitude_st(1e-3, 1e4))
fractions_st = st.builds(lambda s, v: s * v, signed, magnitude_st(1e-6, 2.0))


@st.composite
def box_pairs_st(draw: st.DrawFn) -> tuple[list[float], list[float]]:
    x, y, w, h = draw(coordinates_st), draw(coordinates_st), draw(sizes_st), draw(sizes_st)
    a = [x, y, x + w, y + h]
    if draw(st.booleans()):
        # a second box related to the first: shifted and resized by fractions of it
        fx, fy, fw, fh = (draw(fractions_st) for _ in range(4))
        bx, by = x + fx * w, y + fy * h
        b = [bx, by, bx + abs(fw) * w, by + abs(fh) * h]
    else:
        bx, by, bw, bh = draw(coordinates_st), draw(coordinates_st), draw(sizes_st), draw(sizes_st)
        b = [bx, by, bx + bw, by + bh]
    return a, b


@HYPOTHESIS
@given(st.lists(box_pairs_st(), min_size=1, max_size=4))
def test_boxes_hypothesis(pairs: list[tuple[list[float], list[float]]]) -> None:
    a = np.array([p for p, _ in pairs])
    b = np.array([q for _, q in pairs])
    for kind, loss in LOSSES.items():
        assert_close(loss(a, b), exact_losses(kind, a, b), boxes=(a, b))
    for kind, metric in (("iou", ref.box_pair_iou), ("giou", ref.box_pair_giou)):
        exact, scale = zip(
            *(mp_pair_metric(kind, tuple(p), tuple(q), 0.0) for p, q in zip(a, b, strict=True)),
            strict=True,
        )
        assert_close(metric(a, b), exact, scale, boxes=(a, b))


# ---------------------------------------------------------------------------
# metrics: elementwise helpers and the pairwise (N, M) forms


@pytest.mark.parametrize("eps", [0.0, EPS])
@pytest.mark.parametrize("kind", ["iou", "giou"])
def test_pair_metrics_grid(kind: str, eps: float) -> None:
    metric = {"iou": ref.box_pair_iou, "giou": ref.box_pair_giou}[kind]
    exact, scale = zip(
        *(
            mp_pair_metric(kind, tuple(p), tuple(q), eps)
            for p, q in zip(GRID_A, GRID_B, strict=True)
        ),
        strict=True,
    )
    # IoU has no subtraction: no allowance
    allowance = scale if kind == "giou" else None
    assert_close(metric(GRID_A, GRID_B, eps=eps), exact, allowance, boxes=(GRID_A, GRID_B))


def pairwise_sets() -> tuple[np.ndarray, np.ndarray]:
    """Box sets whose N x M pairs mix every relation of the grid."""
    return GRID_A[::7], GRID_B[3::11]


PAIRWISE = {
    "iou": ref.box_iou,
    "giou": ref.generalized_box_iou,
    "diou": ref.distance_box_iou,
    "ciou": ref.complete_box_iou,
}


@pytest.mark.parametrize("kind", PAIRWISE)
def test_pairwise_metrics(kind: str) -> None:
    a, b = pairwise_sets()
    actual = PAIRWISE[kind](a, b)
    assert actual.shape == (len(a), len(b)) and actual.dtype == np.float64
    exact, scale = zip(
        *(mp_metric(kind, tuple(p), tuple(q), EPS) for p in a for q in b), strict=True
    )
    rows, cols = np.divmod(np.arange(len(a) * len(b)), len(b))
    assert_close(actual, exact, scale, boxes=(a[rows], b[cols]))


def test_pairwise_is_elementwise_on_every_pair() -> None:
    a, b = pairwise_sets()
    rows, cols = np.divmod(np.arange(len(a) * len(b)), len(b))
    shape = (len(a), len(b))
    same = np.testing.assert_array_equal
    same(ref.box_iou(a, b), ref.box_pair_iou(a[rows], b[cols]).reshape(shape))
    same(ref.generalized_box_iou(a, b), ref.box_pair_giou(a[rows], b[cols]).reshape(shape))
    assert ref.box_iou(a[:0], b).shape == (0, len(b))


# ---------------------------------------------------------------------------
# hand-derived values


UNIT = np.array([0.0, 0.0, 1.0, 1.0])


def test_unit_squares_overlapping_by_half() -> None:
    a, b = UNIT, np.array([0.5, 0.0, 1.5, 1.0])
    # A n B = [0.5, 1] x [0, 1]: 1/2; A u B = 1 + 1 - 1/2 = 3/2; IoU = 1/3.
    # C = [0, 1.5] x [0, 1] = A u B, so GIoU = IoU - 0 = 1/3.
    # Centres (0.5, 0.5), (1, 0.5): rho^2 = 1/4; c^2 = 1.5^2 + 1^2 = 13/4: DIoU = 1/3 - 1/13
    # = 10/39. Both are squares: v = 0 and CIoU = DIoU.
    iou, giou, diou = 1 / 3, 1 / 3, 10 / 39
    pairwise = [
        (ref.box_iou(a[None], b[None]), iou),
        (ref.generalized_box_iou(a[None], b[None]), giou),
        (ref.distance_box_iou(a[None], b[None], eps=0.0), diou),
        (ref.complete_box_iou(a[None], b[None], eps=0.0), diou),
        (ref.box_pair_iou(a, b), iou),
        (ref.box_pair_giou(a, b), giou),
    ]
    for actual, expected in pairwise:
        assert float(np.squeeze(actual)) == pytest.approx(expected, rel=1e-15, abs=0)
    # The losses with eps: 1 - 0.5 / (1.5 + eps) = (1 + eps) / (1.5 + eps), hull term 0,
    # centre term 0.25 / (3.25 + eps).
    iou_loss = (1 + EPS) / (1.5 + EPS)
    assert float(ref.iou_loss(a, b)) == pytest.approx(iou_loss, rel=1e-15)
    assert float(ref.generalized_box_iou_loss(a, b)) == pytest.approx(iou_loss, rel=1e-15)
    diou_loss = iou_loss + 0.25 / (3.25 + EPS)
    assert float(ref.distance_box_iou_loss(a, b)) == pytest.approx(diou_loss, rel=1e-15)
    assert float(ref.complete_box_iou_loss(a, b)) == pytest.approx(diou_loss, rel=1e-15)


def test_unit_squares_one_apart() -> None:
    a, b = UNIT, np.array([2.0, 0.0, 3.0, 1.0])
    # IoU = 0; A u B = 2; C = [0, 3] x [0, 1] = 3: GIoU = 0 - (3 - 2) / 3 = -1/3.
    # Centres 2 apart along x: rho^2 = 4; c^2 = 3^2 + 1^2 = 10: DIoU = -0.4.
    assert float(ref.box_iou(a[None], b[None])[0, 0]) == 0.0
    assert float(ref.generalized_box_iou(a[None], b[None])[0, 0]) == pytest.approx(
        -1 / 3, rel=1e-15
    )
    assert float(ref.distance_box_iou(a[None], b[None], eps=0.0)[0, 0]) == pytest.approx(-0.4)
    # losses: 1 - 0 + 1 / (3 + eps) and 1 - 0 + 4 / (10 + eps)
    giou_loss = ref.generalized_box_iou_loss(a, b)
    assert float(giou_loss) == pytest.approx(1 + 1 / (3 + EPS), rel=1e-15)
    diou_loss = ref.distance_box_iou_loss(a, b)
    assert float(diou_loss) == pytest.approx(1 + 4 / (10 + EPS), rel=1e-15)
    assert float(ref.iou_loss(a, b)) == 1.0


def test_nested_boxes_sharing_a_centre() -> None:
    a, b = np.array([0.0, 0.0, 4.0, 4.0]), np.array([1.0, 1.0, 3.0, 3.0])
    # B inside A: IoU = 4 / 16; C = A so GIoU = IoU; rho = 0 so DIoU = IoU; both squares,
    # v = 0, so CIoU = IoU = 1/4
    for metric in (
        ref.box_iou,
        ref.generalized_box_iou,
        ref.distance_box_iou,
        ref.complete_box_iou,
    ):
        assert float(metric(a[None], b[None])[0, 0]) == 0.25


def test_ciou_aspect_term() -> None:
    pred, gt = np.array([0.0, 0.0, 2.0, 1.0]), UNIT
    # inter = 1, union = 2, IoU = 1/2; centres (1, .5), (.5, .5): rho^2 = 1/4; C = pred:
    # c^2 = 4 + 1 = 5, DIoU = 1/2 - 1/20 = 0.45.
    # v = 4/pi^2 (atan(1) - atan(2))^2 = 4/pi^2 atan(1/3)^2 (tan(a - b) = (1 - 2)/(1 + 2));
    # alpha = v / (1 - 1/2 + v), CIoU = 0.45 - alpha v.
    v = 4 / math.pi**2 * math.atan(1 / 3) ** 2
    ciou = 0.45 - v * v / (0.5 + v)
    assert float(ref.complete_box_iou(pred[None], gt[None], eps=0.0)[0, 0]) == pytest.approx(
        ciou, rel=1e-14
    )
    # the loss: 1 - IoU + rho^2 / c^2 + alpha v, with eps = 0 for the hand value
    loss = 0.5 + 0.05 + v * v / (0.5 + v)
    assert float(ref.complete_box_iou_loss(pred, gt, eps=0.0)) == pytest.approx(loss, rel=1e-14)
    # symmetric in value: swapping prediction and ground truth squares the same difference
    assert float(ref.complete_box_iou_loss(gt, pred, eps=0.0)) == pytest.approx(loss, rel=1e-14)


def test_zero_height_prediction() -> None:
    flat = np.array([0.0, 0.0, 1.0, 0.0])  # w = 1, h = 0: angle atan(1 / 0) = pi / 2
    # against the unit square (angle pi / 4): v = 4/pi^2 (pi/4)^2 = 1/4.
    # inter = 0, union = 1: 1 - IoU = (0 + 1 + eps) / (1 + eps) = 1.
    # centres (0.5, 0), (0.5, 0.5): rho^2 = 1/4; c^2 = 1 + 1 = 2: 0.25 / (2 + eps).
    # alpha = 0.25 / (1 + 0.25 + eps); loss = 1 + 1/8 + 1/20 = 1.175 up to eps.
    expected = 1 + 0.25 / (2 + EPS) + 0.0625 / (1.25 + EPS)
    assert float(ref.complete_box_iou_loss(flat, UNIT)) == pytest.approx(expected, rel=1e-15)
    assert expected == pytest.approx(1.175, rel=1e-7)


def test_point_boxes() -> None:
    p, q = np.array([1.0, 1.0, 1.0, 1.0]), np.array([2.0, 1.0, 2.0, 1.0])
    # two points: A u B = 0, so the losses' IoU is 0 / eps = 0 and 1 - IoU = eps / eps = 1.
    # Same point: C = 0, hull and centre terms 0 / eps = 0. One apart: C is a segment of
    # zero area (hull term 0), rho^2 = c^2 = 1: centre term 1 / (1 + eps).
    assert float(ref.iou_loss(p, p)) == 1.0
    assert float(ref.generalized_box_iou_loss(p, q)) == 1.0
    assert float(ref.distance_box_iou_loss(p, p)) == 1.0
    assert float(ref.distance_box_iou_loss(p, q)) == pytest.approx(1 + 1 / (1 + EPS), rel=1e-15)
    # a point has no aspect ratio: CIoU is nan (torchvision: atan(0 / 0))
    assert np.isnan(ref.complete_box_iou_loss(p, p))
    assert np.isnan(ref.complete_box_iou_loss(p, UNIT))
    # the pairwise metrics have no eps: 0 / 0 = nan for two zero-area boxes
    for metric in (ref.box_iou, ref.generalized_box_iou, ref.distance_box_iou):
        assert np.isnan(metric(p[None], q[None])[0, 0])
    # a zero-area box against the unit square: IoU 0 and GIoU = -(|C| - 1) / |C|, where C
    # is the square itself for its corner point p (GIoU 0) and [0, 2] x [0, 1] for q
    # (GIoU -1/2)
    both = np.stack([p, q])
    np.testing.assert_array_equal(ref.box_iou(both, UNIT[None]), [[0.0], [0.0]])
    np.testing.assert_array_equal(ref.generalized_box_iou(both, UNIT[None]), [[0.0], [-0.5]])
    assert float(ref.box_area(p)) == 0.0


def torchvision_style_iou_loss(a: np.ndarray, b: np.ndarray) -> float:
    """1 - inter / (|A| + |B| - inter) in float64, the way torchvision writes it."""
    inter = (min(a[2], b[2]) - max(a[0], b[0])) * (min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return 1 - inter / union


@pytest.mark.parametrize(
    ("corner", "side", "naive_error"),
    [(1e4, 1.7, 1e-5), (1e-3, 7e-4, 1e-2)],
    ids=["side-1.7-at-1e4", "side-7e-4-at-1e-3"],
)
def test_nearly_identical_boxes_keep_relative_accuracy(
    corner: float, side: float, naive_error: float
) -> None:
    # The second box moves x1, x2 and y2 by one ulp of the corner coordinate, so
    # 1 - IoU is ~1e-12 (at 1e4) or ~1e-15 (at 1e-3). Subtracting a rounded IoU from 1
    # leaves an absolute error of ~1e-16: a relative error above 1e-5, and above 1e-2
    # for the small boxes. The cell split forms (|A \ B| + |B \ A|) / |A u B| directly.
    a = np.array([corner, corner, corner + side, corner + 1.3 * side])
    step = np.spacing(corner)
    b = a + np.array([step, 0.0, step, step])
    for kind, loss in LOSSES.items():
        assert_close(loss(a, b, eps=0.0), exact_losses(kind, a[None], b[None], 0.0))
        assert_close(loss(a, b), exact_losses(kind, a[None], b[None]))
    exact = float(exact_losses("iou", a[None], b[None], 0.0)[0])
    assert abs(torchvision_style_iou_loss(a, b) - exact) > naive_error * exact


# ---------------------------------------------------------------------------
# properties of the references


def test_giou_bounds_and_order() -> None:
    a, b = GRID_A, GRID_B
    with np.errstate(invalid="ignore"):
        iou, giou = ref.box_pair_iou(a, b), ref.box_pair_giou(a, b)
    defined = ~np.isnan(iou)
    tol = 4 * np.finfo(np.float64).eps
    assert np.all(giou[defined] <= iou[defined] + tol)
    assert np.all((giou[defined] >= -1 - tol) & (iou[defined] <= 1 + tol))
    for loss in LOSSES.values():
        values = loss(a, b)
        assert np.all(values[~np.isnan(values)] >= 0)
    # iou_loss = 1 - box_pair_iou(eps) and giou loss = 1 - box_pair_giou(eps), to rounding
    np.testing.assert_allclose(ref.iou_loss(a, b), 1 - ref.box_pair_iou(a, b, EPS), atol=1e-15)
    giou_eps = ref.box_pair_giou(a, b, EPS)
    np.testing.assert_allclose(ref.generalized_box_iou_loss(a, b), 1 - giou_eps, atol=1e-15)


def test_losses_are_symmetric() -> None:
    for loss in LOSSES.values():
        np.testing.assert_allclose(loss(GRID_A, GRID_B), loss(GRID_B, GRID_A), rtol=1e-15)


def test_box_area() -> None:
    boxes = np.array([[0.0, 0.0, 2.0, 3.0], [-1e4, -1e-3, 1e4, 1e-3], [5.0, 5.0, 5.0, 9.0]])
    np.testing.assert_array_equal(ref.box_area(boxes), [6.0, 2e4 * 2e-3, 0.0])
    assert ref.box_area(boxes.reshape(1, 3, 4)).shape == (1, 3)


def test_nan_coordinates_propagate() -> None:
    bad = np.array([[0.0, 0.0, np.nan, 1.0]])
    for loss in LOSSES.values():
        assert np.isnan(loss(bad, UNIT[None])[0])
    assert np.isnan(ref.box_iou(bad, UNIT[None])[0, 0])


# ---------------------------------------------------------------------------
# misuse


@pytest.mark.parametrize(
    "call",
    [
        lambda: ref.iou_loss(np.array([1.0, 0.0, 0.0, 1.0]), UNIT),  # x2 < x1
        lambda: ref.generalized_box_iou_loss(UNIT, np.array([0.0, 1.0, 1.0, 0.0])),  # y2 < y1
        lambda: ref.distance_box_iou_loss(UNIT[None], np.stack([UNIT, UNIT])),  # shapes
        lambda: ref.complete_box_iou_loss(UNIT[:3], UNIT[:3]),  # not 4 coordinates
        lambda: ref.iou_loss(UNIT, UNIT, reduction="batchmean"),
        lambda: ref.iou_loss(UNIT, UNIT, eps=-1e-7),
        lambda: ref.box_iou(UNIT, UNIT[None]),  # pairwise needs (N, 4)
        lambda: ref.generalized_box_iou(UNIT[None, None], UNIT[None]),
        lambda: ref.distance_box_iou(UNIT[None], UNIT[None], eps=-1.0),
        lambda: ref.complete_box_iou(np.array([[0.0, 0.0, np.inf, 1.0]]), UNIT[None]),
        lambda: ref.box_area(np.array([0.0, 0.0, -1.0, 1.0])),
        lambda: ref.box_pair_iou(UNIT, np.array(1.0)),
    ],
)
def test_misuse_raises_value_error(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()


def test_inverted_box_message() -> None:
    with pytest.raises(ValueError, match="boxes2 holds an inverted box"):
        ref.iou_loss(UNIT, np.array([0.0, 0.0, -1.0, 1.0]))
