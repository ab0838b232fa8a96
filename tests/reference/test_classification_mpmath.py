"""The float64 classification references against mpmath at 40 significant digits.

Every mp_* function below is written straight from the loss's formula in mpmath; it
shares no code with ``reference``. Where 40 digits would themselves cancel (1 - sigma(x)
for large x, log p_t for p_t near 1) the mp code either works with more digits or uses
an exact identity (1 - sigma(x) = 1 / (1 + e^x), -log p_y = log(1 + sum_{k!=y}
e^(x_k - x_y))), each noted where it is used. The float64 inputs are exact binary
numbers, so the mp value is the true loss of exactly those inputs.

Agreement means |ref - mp| <= 1e-13 * |mp| + 1e-300 (the 1e-300 floor covers values
that are zero or underflow in float64), plus, for the two formulas that subtract
(kl_div's log p - log q and quality focal's y - sigma(x)), a rounding allowance of
16 ulps of the subtracted terms: no float64 evaluation knows those differences better.

Grids mix ordinary values with extreme magnitudes (logits to +-1e4, probabilities at
0, 1e-300, 1 - 1e-16, 1), and a small Hypothesis search per family looks between them.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence

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

MAGNITUDES = (1e-8, 1e-3, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 40.0, 100.0, 700.0, 745.0, 1e4)
LOGITS = (0.0, *MAGNITUDES, *(-m for m in MAGNITUDES))
PROBS = (0.0, 1e-300, 1e-30, 1e-8, 1e-3, 0.1, 0.25, 0.5, 0.75, 0.9, 1 - 1e-8, 1 - 1e-16, 1.0)
TARGETS = (0.0, 1e-8, 0.1, 0.3, 0.5, 0.7, 0.99, 1 - 1e-8, 1.0)
GAMMAS = (0.0, 0.5, 1.0, 2.0, 5.0)
ALPHAS = (-1.0, 0.0, 0.25, 1.0)
SMOOTHINGS = (0.0, 0.1, 1.0)
# log q / log p values for kl_div: 0, tiny, ordinary, and the far tail
LOG_PROBS = (0.0, -1e-8, -0.1, -1.0, -10.0, -745.0, -1e4)
CLASS_WEIGHTS = (0.5, 2.0, 1.0, 3.0, 0.25)

# Derandomized, no example database, no health checks: a verdict must not depend on the
# machine's load (a too-slow health check under `pytest -n 2`) or on an earlier run's examples.
HYPOTHESIS = settings(max_examples=50, derandomize=True, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
logits_st = st.one_of(st.sampled_from(LOGITS), st.floats(-1e4, 1e4))
probs_st = st.one_of(st.sampled_from(PROBS), st.floats(0.0, 1.0))
targets_st = st.one_of(st.sampled_from(TARGETS), st.floats(0.0, 1.0))
gammas_st = st.one_of(st.sampled_from(GAMMAS), st.floats(0.0, 5.0))


# ---------------------------------------------------------------------------
# comparison


def assert_close(
    actual: np.ndarray,
    exact: Sequence,
    scale: Sequence | None = None,
    inputs: dict[str, Sequence] | None = None,
) -> None:
    """Compare float64 results with mp values (same order, flattened)."""
    actual = np.asarray(actual, dtype=np.float64).ravel()
    want = np.array([float(v) for v in np.ravel(np.asarray(exact, dtype=object))])
    assert actual.shape == want.shape
    allowance = (
        np.zeros_like(want) if scale is None else CANCEL * np.array([float(s) for s in scale])
    )
    tolerance = RTOL * np.abs(want) + TINY + allowance
    with np.errstate(invalid="ignore"):
        ok = (np.abs(actual - want) <= tolerance) | (np.isinf(want) & (actual == want))
        ok |= np.isnan(want) & np.isnan(actual)
    if not np.all(ok):
        bad = np.flatnonzero(~ok)[:8]
        lines = []
        for i in bad:
            where = ", ".join(f"{k}={_flat(v)[i]!r}" for k, v in (inputs or {}).items())
            lines.append(f"  [{i}] {where}: ref={actual[i]!r} mp={want[i]!r}")
        pytest.fail(f"{len(np.flatnonzero(~ok))} of {want.size} differ:\n" + "\n".join(lines))


def _flat(values: Sequence) -> Sequence:
    return values if isinstance(values, list) else np.ravel(values)


def assert_reduced(actual: np.ndarray, exact_sum, denominator, magnitude=None, scale=0) -> None:
    """A 'sum' or 'mean' against mp.fsum.

    ``magnitude`` is sum |l_i| where the terms have both signs (the error of a float sum
    grows with it); ``scale`` the summed rounding scales of cancelling elements.
    """
    actual = np.asarray(actual)
    assert actual.shape == () and actual.dtype == np.float64
    want = float(exact_sum / denominator)
    size = abs(want) if magnitude is None else float(magnitude / denominator)
    tolerance = RTOL * size + TINY + CANCEL * float(scale / denominator)
    assert abs(float(actual) - want) <= tolerance, (float(actual), want)


# ---------------------------------------------------------------------------
# mpmath formulas


def mp_xlog(a, log_b):
    """a * log b with 0 * log 0 = 0."""
    return mp.zero if a == 0 else a * log_b


def mp_sigmoid(x):
    return 1 / (1 + mp.exp(-x))


def mp_log_sigmoid(x):
    # log(1 / (1 + e^-x))
    return -mp.log1p(mp.exp(-x))


def mp_log_one_minus_sigmoid(x):
    # 1 - 1 / (1 + e^-x) = 1 / (1 + e^x)
    return -mp.log1p(mp.exp(x))


def digits_for(x) -> int:
    """Working digits that keep 40 after 1 - sigma(x) cancels about |x| / ln 10 of them."""
    return 50 + int(abs(float(x)) / math.log(10))


def mp_bce(p, y, clamp):
    log_p = mp.log(p)
    log_1mp = mp.log1p(-p)
    if clamp is not None:
        log_p, log_1mp = max(log_p, clamp), max(log_1mp, clamp)
    return -(mp_xlog(y, log_p) + mp_xlog(1 - y, log_1mp))


def mp_bce_logits(x, y, pos_weight=1):
    return -(pos_weight * y * mp_log_sigmoid(x) + (1 - y) * mp_log_one_minus_sigmoid(x))


@functools.cache
def mp_one_minus_pt(x, y):
    with mp.workdps(digits_for(x)):
        p = mp_sigmoid(x)
        p_t = p * y + (1 - p) * (1 - y)
        return 1 - p_t


def mp_sigmoid_focal(x, y, alpha, gamma):
    loss = mp_bce_logits(x, y) * mp_one_minus_pt(x, y) ** gamma
    if alpha >= 0:
        loss *= alpha * y + (1 - alpha) * (1 - y)
    return loss


def mp_sigmoid_focal_soft(x, y, alpha, gamma, soft_targets):
    """The soft_targets variants: 'exp_bce' (1 - p_t = 1 - exp(-BCE)) and 'per_term'."""
    if soft_targets == "exp_bce":
        ce = mp_bce_logits(x, y)
        with mp.workdps(digits_for(ce) + 40):
            loss = ce * (1 - mp.exp(-ce)) ** gamma
        if alpha >= 0:
            loss *= alpha * y + (1 - alpha) * (1 - y)
        return loss
    with mp.workdps(digits_for(x)):
        p = mp_sigmoid(x)
        positive = y * (1 - p) ** gamma * -mp_log_sigmoid(x)
        negative = (1 - y) * p**gamma * -mp_log_one_minus_sigmoid(x)
    if alpha >= 0:
        positive, negative = alpha * positive, (1 - alpha) * negative
    return positive + negative


def mp_balanced_with_eps(x_sample, y_sample, eps):
    """mp_balanced with count_eps: beta = negatives / (n + eps)."""
    n = len(y_sample) + mp.mpf(eps)
    positives = mp.mpf(sum(y_sample))
    beta, positive_share = (len(y_sample) - positives) / n, (positives + mp.mpf(eps)) / n
    return [
        -(beta * y * mp_log_sigmoid(x) + positive_share * (1 - y) * mp_log_one_minus_sigmoid(x))
        for x, y in zip(x_sample, y_sample, strict=True)
    ]


def mp_quality_focal(x, y, beta):
    """(loss, rounding scale of the y - sigma subtraction)."""
    with mp.workdps(digits_for(x)):
        sigma = mp_sigmoid(x)
        distance = abs(y - sigma)
        terms = y * (1 - sigma) + (1 - y) * sigma
    ce = mp_bce_logits(x, y)
    loss = distance**beta * ce
    if beta == 0 or distance == 0:
        return loss, mp.zero
    return loss, beta * distance ** (beta - 1) * ce * terms


@functools.cache
def mp_neg_log_softmax(row: tuple) -> tuple:
    """-log p_c for every class c of one row of logits."""
    # -log(e^x_c / sum_k e^x_k) = log(1 + sum_{k != c} e^(x_k - x_c))
    return tuple(
        mp.log1p(mp.fsum(mp.exp(row[k] - row[c]) for k in range(len(row)) if k != c))
        for c in range(len(row))
    )


def mp_cross_entropy_index(row, y, weight, eps):
    num_classes = len(row)
    nll = mp_neg_log_softmax(tuple(row))
    smooth = mp.fsum(weight[c] * nll[c] for c in range(num_classes))
    return (1 - eps) * weight[y] * nll[y] + eps / num_classes * smooth


def mp_cross_entropy_probs(row, target, weight, eps):
    num_classes = len(row)
    nll = mp_neg_log_softmax(tuple(row))
    smoothed = [(1 - eps) * t + eps / num_classes for t in target]
    return mp.fsum(weight[c] * smoothed[c] * nll[c] for c in range(num_classes))


def mp_kl(log_q, target, log_target):
    """(loss, rounding scale of the log p - log q subtraction)."""
    if log_target:
        log_p = target
        return (mp.zero if log_p == -mp.inf else mp.exp(log_p) * (log_p - log_q)), mp.zero
    p = target
    if p == 0:
        return mp.zero, mp.zero
    return p * (mp.log(p) - log_q), p * (abs(mp.log(p)) + abs(log_q))


def mp_softmax_focal(row, y, alpha, gamma):
    # p_t = 1 / (1 + S) with S = sum_{k != y} e^(x_k - x_y); at 40 digits p_t itself may
    # round to 1, so 1 - p_t and log p_t are taken from S
    rest = mp.fsum(mp.exp(row[k] - row[y]) for k in range(len(row)) if k != y)
    one_minus_pt = rest / (1 + rest)
    log_pt = -mp.log1p(rest)
    return -alpha[y] * one_minus_pt**gamma * log_pt


def mp_balanced(x_sample, y_sample):
    """Elementwise HED loss of one sample (flat sequences)."""
    beta = 1 - mp.mpf(sum(y_sample)) / len(y_sample)
    return [
        -(beta * y * mp_log_sigmoid(x) + (1 - beta) * (1 - y) * mp_log_one_minus_sigmoid(x))
        for x, y in zip(x_sample, y_sample, strict=True)
    ]


def to_mp(values) -> list:
    return [mp.mpf(float(v)) for v in np.ravel(values)]


def columns(points: list[tuple]) -> list[np.ndarray]:
    return [np.array(c, dtype=np.float64) for c in zip(*points, strict=True)]


# ---------------------------------------------------------------------------
# binary cross entropy on probabilities


@pytest.mark.parametrize("log_clamp", [-100.0, None])
def test_bce_grid(log_clamp: float | None) -> None:
    p, y, w = columns(list(itertools.product(PROBS, TARGETS, (1.0, 0.3, 2.5))))
    actual = ref.binary_cross_entropy(p, y, weight=w, reduction="none", log_clamp=log_clamp)
    exact = [
        wi * mp_bce(pi, yi, log_clamp)
        for pi, yi, wi in zip(to_mp(p), to_mp(y), to_mp(w), strict=True)
    ]
    assert_close(actual, exact, inputs={"p": p, "y": y, "w": w})


def test_bce_reductions_with_broadcast_weight() -> None:
    p = np.array(PROBS[1:-1] * 2).reshape(2, -1)[:, :10]
    y = np.resize(np.array(TARGETS), p.shape)
    w = np.linspace(0.5, 2.0, p.shape[1])
    exact = [
        wi * mp_bce(pi, yi, -100)
        for pi, yi, wi in zip(to_mp(p), to_mp(y), to_mp(np.broadcast_to(w, p.shape)), strict=True)
    ]
    total = mp.fsum(exact)
    assert_reduced(ref.binary_cross_entropy(p, y, w, reduction="sum"), total, 1)
    assert_reduced(ref.binary_cross_entropy(p, y, w, reduction="mean"), total, p.size)


@HYPOTHESIS
@given(st.lists(st.tuples(probs_st, targets_st), min_size=1, max_size=8))
def test_bce_hypothesis(points: list[tuple[float, float]]) -> None:
    p, y = columns(points)
    exact = [mp_bce(pi, yi, -100) for pi, yi in zip(to_mp(p), to_mp(y), strict=True)]
    assert_close(ref.binary_cross_entropy(p, y, reduction="none"), exact, inputs={"p": p, "y": y})
    assert_reduced(ref.binary_cross_entropy(p, y), mp.fsum(exact), p.size)


# ---------------------------------------------------------------------------
# binary cross entropy on logits


def test_bce_with_logits_grid() -> None:
    x, y, pw = columns(list(itertools.product(LOGITS, TARGETS, (1.0, 0.5, 3.0))))
    actual = ref.binary_cross_entropy_with_logits(x, y, reduction="none", pos_weight=pw)
    exact = [mp_bce_logits(*v) for v in zip(to_mp(x), to_mp(y), to_mp(pw), strict=True)]
    assert_close(actual, exact, inputs={"x": x, "y": y, "pos_weight": pw})


def test_bce_with_logits_pos_weight_is_per_class() -> None:
    # pos_weight (C,) must weight the last axis of an (N, C) input, weight (N, 1) the rows
    x = np.array(LOGITS[:24]).reshape(4, 6)
    y = np.resize(np.array(TARGETS), x.shape)
    pos_weight = np.array([1.0, 2.0, 0.5, 3.0, 1.5, 0.25])
    weight = np.array([[1.0], [0.5], [2.0], [0.75]])
    exact = [
        mp.mpf(weight[n, 0]) * mp_bce_logits(mp.mpf(x[n, c]), mp.mpf(y[n, c]), pos_weight[c])
        for n in range(4)
        for c in range(6)
    ]
    kwargs = {"weight": weight, "pos_weight": pos_weight}
    f = ref.binary_cross_entropy_with_logits
    assert_close(f(x, y, reduction="none", **kwargs), exact)
    assert_reduced(f(x, y, reduction="sum", **kwargs), mp.fsum(exact), 1)
    assert_reduced(f(x, y, reduction="mean", **kwargs), mp.fsum(exact), x.size)


@HYPOTHESIS
@given(st.lists(st.tuples(logits_st, targets_st, st.floats(0.0, 10.0)), min_size=1, max_size=8))
def test_bce_with_logits_hypothesis(points: list[tuple[float, float, float]]) -> None:
    x, y, pw = columns(points)
    exact = [mp_bce_logits(*v) for v in zip(to_mp(x), to_mp(y), to_mp(pw), strict=True)]
    actual = ref.binary_cross_entropy_with_logits(x, y, reduction="none", pos_weight=pw)
    assert_close(actual, exact, inputs={"x": x, "y": y, "pos_weight": pw})


# ---------------------------------------------------------------------------
# balanced (HED) binary cross entropy


def test_balanced_bce_matches_hed_formula() -> None:
    rng = np.random.default_rng(1)
    x = rng.choice(np.array(LOGITS), size=(3, 4, 5))
    y = np.zeros_like(x)
    y[0, 0, 0] = 1.0  # a rare positive: beta = 19/20
    y[1] = rng.integers(0, 2, size=(4, 5))
    y[2] = 1.0  # no negatives: beta = 0
    exact = [v for n in range(3) for v in mp_balanced(to_mp(x[n]), to_mp(y[n]))]
    f = ref.balanced_binary_cross_entropy_with_logits
    assert_close(f(x, y, reduction="none"), exact, inputs={"x": x, "y": y})
    assert_reduced(f(x, y, reduction="sum"), mp.fsum(exact), 1)
    assert_reduced(f(x, y), mp.fsum(exact), x.size)


def test_balanced_bce_weights_rare_positive() -> None:
    # one positive among 10^6: the negatives' weight 1 - beta is exactly the positive
    # fraction 1e-6, which 1 - (1 - 1e-6) would only give to ~5e-12 relative
    y = np.zeros((1, 10**6))
    y[0, 123] = 1.0
    w = ref.balanced_bce_weights(y)
    assert_close(w[0, :2], [mp.mpf(1) / 10**6] * 2)
    assert_close(w[0, 123:124], [1 - mp.mpf(1) / 10**6])


@HYPOTHESIS
@given(st.data())
def test_balanced_bce_hypothesis(data: st.DataObject) -> None:
    n, d = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 6))
    x = np.array(data.draw(st.lists(logits_st, min_size=n * d, max_size=n * d))).reshape(n, d)
    y = np.array(data.draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=n * d, max_size=n * d)))
    y = y.reshape(n, d)
    exact = [v for i in range(n) for v in mp_balanced(to_mp(x[i]), to_mp(y[i]))]
    actual = ref.balanced_binary_cross_entropy_with_logits(x, y, reduction="none")
    assert_close(actual, exact, inputs={"x": x, "y": y})


# ---------------------------------------------------------------------------
# sigmoid focal loss (torchvision)


@pytest.fixture(scope="module")
def focal_points() -> list[np.ndarray]:
    return columns(list(itertools.product(LOGITS, TARGETS, GAMMAS, ALPHAS)))


def test_sigmoid_focal_grid(focal_points: list[np.ndarray]) -> None:
    x, y, gamma, alpha = focal_points
    exact = [mp_sigmoid_focal(*v) for v in zip(*map(to_mp, (x, y, alpha, gamma)), strict=True)]
    # alpha and gamma are scalars in the API: evaluate one call per (alpha, gamma)
    actual = np.empty_like(x)
    for a, g in itertools.product(ALPHAS, GAMMAS):
        sel = (alpha == a) & (gamma == g)
        actual[sel] = ref.sigmoid_focal_loss(x[sel], y[sel], alpha=a, gamma=g)
    assert_close(actual, exact, inputs={"x": x, "y": y, "alpha": alpha, "gamma": gamma})


def test_sigmoid_focal_reductions() -> None:
    x = np.array(LOGITS[:27]).reshape(3, 9)
    y = np.resize(np.array(TARGETS), x.shape)
    exact = [mp_sigmoid_focal(xi, yi, 0.25, 2) for xi, yi in zip(to_mp(x), to_mp(y), strict=True)]
    f = ref.sigmoid_focal_loss
    assert_close(f(x, y), exact)  # torchvision's default reduction is 'none'
    assert_reduced(f(x, y, reduction="sum"), mp.fsum(exact), 1)
    assert_reduced(f(x, y, reduction="mean"), mp.fsum(exact), x.size)


@pytest.mark.parametrize("soft_targets", ["exp_bce", "per_term"])
def test_sigmoid_focal_soft_target_variants_grid(focal_points: list[np.ndarray],
                                                 soft_targets: str) -> None:
    x, y, gamma, alpha = focal_points
    exact = [mp_sigmoid_focal_soft(*v, soft_targets)
             for v in zip(*map(to_mp, (x, y, alpha, gamma)), strict=True)]
    actual = np.empty_like(x)
    for a, g in itertools.product(ALPHAS, GAMMAS):
        sel = (alpha == a) & (gamma == g)
        actual[sel] = ref.sigmoid_focal_loss(x[sel], y[sel], alpha=a, gamma=g,
                                             soft_targets=soft_targets)
    assert_close(actual, exact, inputs={"x": x, "y": y, "alpha": alpha, "gamma": gamma})


def test_balanced_bce_count_eps() -> None:
    x = np.array([[0.0, 2.0, -1.0], [0.5, 1e4, -3.0]])
    y = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 1.0]])
    exact = [v for n in range(2) for v in mp_balanced_with_eps(to_mp(x[n]), to_mp(y[n]), 1e-7)]
    actual = ref.balanced_binary_cross_entropy_with_logits(x, y, reduction="none",
                                                           count_eps=1e-7)
    assert_close(actual, exact, inputs={"x": x, "y": y})


@HYPOTHESIS
@given(
    st.lists(st.tuples(logits_st, targets_st), min_size=1, max_size=6),
    st.one_of(st.sampled_from(ALPHAS), st.floats(0.0, 1.0)),
    gammas_st,
)
def test_sigmoid_focal_hypothesis(points: list[tuple], alpha: float, gamma: float) -> None:
    x, y = columns(points)
    exact = [
        mp_sigmoid_focal(xi, yi, mp.mpf(alpha), mp.mpf(gamma))
        for xi, yi in zip(to_mp(x), to_mp(y), strict=True)
    ]
    actual = ref.sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma)
    assert_close(actual, exact, inputs={"x": x, "y": y})


# ---------------------------------------------------------------------------
# quality focal loss (GFL)


def test_quality_focal_grid() -> None:
    x, y, beta = columns(list(itertools.product(LOGITS, TARGETS, GAMMAS)))
    exact, scale = zip(
        *(mp_quality_focal(*v) for v in zip(to_mp(x), to_mp(y), to_mp(beta), strict=True)),
        strict=True,
    )
    actual = np.empty_like(x)
    for b in GAMMAS:
        actual[beta == b] = ref.quality_focal_loss(x[beta == b], y[beta == b], b, "none")
    assert_close(actual, exact, scale, inputs={"x": x, "y": y, "beta": beta})
    for b in (0.0, 2.0):
        chosen = [i for i in range(len(exact)) if beta[i] == b]
        total = mp.fsum(exact[i] for i in chosen)
        allowance = mp.fsum(scale[i] for i in chosen)
        sel = beta == b
        f = ref.quality_focal_loss
        assert_reduced(f(x[sel], y[sel], b, "sum"), total, 1, scale=allowance)
        assert_reduced(f(x[sel], y[sel], b, "mean"), total, len(chosen), scale=allowance)


def test_quality_focal_keeps_confident_distance() -> None:
    # y = 1, x = 40: |y - sigma| = 1/(1 + e^40) ~ 4.2e-18, which 1 - sigma(40) loses to 0
    actual = ref.quality_focal_loss(np.array([40.0]), np.array([1.0]), 1.0, "none")
    exact, _ = mp_quality_focal(mp.mpf(40), mp.one, mp.one)
    assert_close(actual, [exact])
    assert actual[0] > 0


@HYPOTHESIS
@given(st.lists(st.tuples(logits_st, targets_st), min_size=1, max_size=6), gammas_st)
def test_quality_focal_hypothesis(points: list[tuple], beta: float) -> None:
    x, y = columns(points)
    exact, scale = zip(
        *(
            mp_quality_focal(xi, yi, mp.mpf(beta))
            for xi, yi in zip(to_mp(x), to_mp(y), strict=True)
        ),
        strict=True,
    )
    assert_close(ref.quality_focal_loss(x, y, beta, "none"), exact, scale, inputs={"x": x, "y": y})
    mean = ref.quality_focal_loss(x, y, beta)
    assert_reduced(mean, mp.fsum(exact), len(exact), scale=mp.fsum(scale))


# ---------------------------------------------------------------------------
# cross entropy, nll, softmax focal: rows of C logits


def logit_rows() -> list[np.ndarray]:
    """(N, C) blocks for C = 1, 2, 3, 5: exhaustive pairs and triples, seeded rows for C = 5."""
    coarse = (-1e4, -745.0, -40.0, -1.0, 0.0, 1e-8, 1.0, 40.0, 700.0, 1e4)
    rng = np.random.default_rng(0)
    magnitudes = np.array(MAGNITUDES)
    five = rng.choice(magnitudes, size=(60, 5)) * rng.choice([-1.0, 1.0], size=(60, 5))
    return [
        np.array(LOGITS)[:, None],
        np.array(list(itertools.product(LOGITS, repeat=2))),
        np.array(list(itertools.product(coarse, repeat=3))),
        five,
    ]


ROWS = logit_rows()


def every_target(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row repeated once per class, with that class as its target."""
    num_classes = rows.shape[1]
    return np.repeat(rows, num_classes, axis=0), np.tile(np.arange(num_classes), len(rows))


@pytest.mark.parametrize("eps", SMOOTHINGS)
@pytest.mark.parametrize("rows", ROWS, ids=lambda r: f"C{r.shape[1]}")
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_index_grid(rows: np.ndarray, eps: float, weighted: bool) -> None:
    logits, target = every_target(rows)
    num_classes = rows.shape[1]
    weight = np.array(CLASS_WEIGHTS[:num_classes]) if weighted else None
    w = to_mp(weight if weighted else np.ones(num_classes))
    mp_rows = [to_mp(r) for r in logits]
    exact = [
        mp_cross_entropy_index(r, int(t), w, mp.mpf(eps))
        for r, t in zip(mp_rows, target, strict=True)
    ]
    actual = ref.cross_entropy(logits, target, weight, reduction="none", label_smoothing=eps)
    assert_close(actual, exact, inputs={"target": target, "row": list(logits)})


@pytest.mark.parametrize("eps", SMOOTHINGS)
@pytest.mark.parametrize("rows", ROWS[1:], ids=lambda r: f"C{r.shape[1]}")
def test_cross_entropy_probability_grid(rows: np.ndarray, eps: float) -> None:
    num_classes = rows.shape[1]
    rng = np.random.default_rng(num_classes)
    raw = rng.random((len(rows), num_classes)) * (rng.random((len(rows), num_classes)) < 0.7)
    raw[::3] = np.eye(num_classes)[rng.integers(0, num_classes, len(rows))[::3]]
    raw[raw.sum(axis=1) == 0] = 1.0
    target = raw / raw.sum(axis=1, keepdims=True)
    weight = np.array(CLASS_WEIGHTS[:num_classes])
    exact = [
        mp_cross_entropy_probs(to_mp(r), to_mp(t), to_mp(weight), mp.mpf(eps))
        for r, t in zip(rows, target, strict=True)
    ]
    f = ref.cross_entropy
    assert_close(f(rows, target, weight, reduction="none", label_smoothing=eps), exact)
    # the mean divides by the number of samples, whatever the weights
    mean = f(rows, target, weight, reduction="mean", label_smoothing=eps)
    assert_reduced(mean, mp.fsum(exact), len(rows))


@pytest.fixture(scope="module")
def spatial_batch() -> dict[str, np.ndarray]:
    """An (N, C, d1, d2) batch with ignored targets, for the class-axis-1 layout."""
    rng = np.random.default_rng(7)
    n, c, d1, d2 = 3, 4, 2, 3
    logits = rng.choice(np.array(LOGITS), size=(n, c, d1, d2))
    target = rng.integers(0, c, size=(n, d1, d2))
    target[0, 0, :] = 255
    target[2, 1, 1] = 255
    return {"logits": logits, "target": target, "weight": np.array(CLASS_WEIGHTS[:c])}


@pytest.mark.parametrize("eps", SMOOTHINGS)
def test_cross_entropy_spatial_weighted_ignore(spatial_batch: dict, eps: float) -> None:
    logits, target, weight = (
        spatial_batch["logits"],
        spatial_batch["target"],
        spatial_batch["weight"],
    )
    rows = np.moveaxis(logits, 1, -1).reshape(-1, logits.shape[1])
    flat = target.ravel()
    kept = flat != 255
    w = to_mp(weight)
    exact = [
        mp_cross_entropy_index(to_mp(r), int(t), w, mp.mpf(eps)) if t != 255 else mp.zero
        for r, t in zip(rows, flat, strict=True)
    ]
    weight_sum = mp.fsum(w[t] for t in flat[kept])
    kwargs = {"weight": weight, "ignore_index": 255, "label_smoothing": eps}
    none = ref.cross_entropy(logits, target, reduction="none", **kwargs)
    assert none.shape == target.shape
    assert_close(none, exact)
    assert_reduced(ref.cross_entropy(logits, target, reduction="sum", **kwargs), mp.fsum(exact), 1)
    mean = ref.cross_entropy(logits, target, reduction="mean", **kwargs)
    assert_reduced(mean, mp.fsum(exact), weight_sum)
    assert ref.class_index_weight_sum(target, weight, 255, 4) == pytest.approx(float(weight_sum))


def test_cross_entropy_all_ignored_mean_is_nan() -> None:
    logits = np.zeros((2, 3))
    target = np.array([-100, -100])
    assert np.isnan(ref.cross_entropy(logits, target))
    assert np.isnan(ref.nll_loss(logits, target))
    assert np.isnan(ref.softmax_focal_loss(logits, target))
    assert ref.cross_entropy(logits, target, reduction="sum") == 0.0


@HYPOTHESIS
@given(st.data())
def test_cross_entropy_hypothesis(data: st.DataObject) -> None:
    num_classes = data.draw(st.integers(1, 5))
    n = data.draw(st.integers(1, 4))
    row_st = st.lists(logits_st, min_size=num_classes, max_size=num_classes)
    logits = np.array(data.draw(st.lists(row_st, min_size=n, max_size=n)))
    target = np.array(data.draw(st.lists(st.integers(-1, num_classes - 1), min_size=n, max_size=n)))
    weight = np.array(
        data.draw(st.lists(st.floats(0.1, 5.0), min_size=num_classes, max_size=num_classes))
    )
    eps = data.draw(st.one_of(st.sampled_from(SMOOTHINGS), st.floats(0.0, 1.0)))
    w = to_mp(weight)
    exact = [
        mp_cross_entropy_index(to_mp(r), int(t), w, mp.mpf(eps)) if t >= 0 else mp.zero
        for r, t in zip(logits, target, strict=True)
    ]
    kwargs = {"weight": weight, "ignore_index": -1, "label_smoothing": eps}
    assert_close(ref.cross_entropy(logits, target, reduction="none", **kwargs), exact)
    if np.any(target >= 0):
        weight_sum = mp.fsum(w[t] for t in target if t >= 0)
        assert_reduced(ref.cross_entropy(logits, target, **kwargs), mp.fsum(exact), weight_sum)


@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss(spatial_batch: dict, weighted: bool) -> None:
    # log-probabilities straight from the mp log-softmax, rounded once to float64
    logits, target = spatial_batch["logits"], spatial_batch["target"]
    weight = spatial_batch["weight"] if weighted else None
    rows = np.moveaxis(logits, 1, -1).reshape(-1, logits.shape[1])
    log_p = np.array([[-float(v) for v in mp_neg_log_softmax(tuple(to_mp(r)))] for r in rows])
    w = to_mp(weight if weighted else np.ones(4))
    flat = target.ravel()
    exact = [
        -w[t] * mp.mpf(lp[t]) if t != 255 else mp.zero for lp, t in zip(log_p, flat, strict=True)
    ]
    weight_sum = mp.fsum(w[t] for t in flat if t != 255)
    log_p_input = np.moveaxis(log_p.reshape(3, 2, 3, 4), -1, 1)
    kwargs = {"weight": weight, "ignore_index": 255}
    assert_close(ref.nll_loss(log_p_input, target, reduction="none", **kwargs), exact)
    assert_reduced(ref.nll_loss(log_p_input, target, **kwargs), mp.fsum(exact), weight_sum)
    # 1-D input (C,) with a 0-d target
    assert float(ref.nll_loss(log_p[0], np.array(2))) == -log_p[0, 2]


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("rows", ROWS, ids=lambda r: f"C{r.shape[1]}")
def test_softmax_focal_grid(rows: np.ndarray, gamma: float) -> None:
    logits, target = every_target(rows)
    num_classes = rows.shape[1]
    alpha = np.array(CLASS_WEIGHTS[:num_classes])
    a = to_mp(alpha)
    exact = [
        mp_softmax_focal(to_mp(r), int(t), a, mp.mpf(gamma))
        for r, t in zip(logits, target, strict=True)
    ]
    actual = ref.softmax_focal_loss(logits, target, alpha, gamma, reduction="none")
    assert_close(actual, exact, inputs={"target": target, "row": list(logits)})
    # the mean counts the non-ignored elements; alpha does not enter the denominator
    target[::4] = -100
    kept = target != -100
    mean = ref.softmax_focal_loss(logits, target, alpha, gamma, reduction="mean")
    assert_reduced(mean, mp.fsum(e for e, k in zip(exact, kept, strict=True) if k), kept.sum())


@HYPOTHESIS
@given(st.data())
def test_softmax_focal_hypothesis(data: st.DataObject) -> None:
    num_classes = data.draw(st.integers(1, 5))
    row = np.array(data.draw(st.lists(logits_st, min_size=num_classes, max_size=num_classes)))
    t = data.draw(st.integers(0, num_classes - 1))
    gamma = data.draw(gammas_st)
    exact = mp_softmax_focal(to_mp(row), t, [mp.one] * num_classes, mp.mpf(gamma))
    actual = ref.softmax_focal_loss(row, np.array(t), gamma=gamma, reduction="none")
    assert_close(actual, [exact], inputs={"row": [row]})


# ---------------------------------------------------------------------------
# kl_div


@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_grid(log_target: bool) -> None:
    targets = (*LOG_PROBS, -np.inf) if log_target else PROBS
    log_q, t = columns(list(itertools.product(LOG_PROBS, targets)))
    exact, scale = zip(
        *(mp_kl(q, p, log_target) for q, p in zip(to_mp(log_q), to_mp(t), strict=True)), strict=True
    )
    actual = ref.kl_div(log_q, t, reduction="none", log_target=log_target)
    assert_close(actual, exact, scale, inputs={"log_q": log_q, "target": t})


def test_kl_div_reductions() -> None:
    log_q = np.array(LOG_PROBS[:6] * 2).reshape(3, 4)
    p = np.array(PROBS[:12]).reshape(3, 4)
    exact, scale = zip(
        *(mp_kl(q, pi, False) for q, pi in zip(to_mp(log_q), to_mp(p), strict=True)), strict=True
    )
    total = mp.fsum(exact)
    magnitude = mp.fsum(abs(e) for e in exact) + mp.fsum(scale)
    f = ref.kl_div
    assert_reduced(f(log_q, p, reduction="sum"), total, 1, magnitude)
    assert_reduced(f(log_q, p, reduction="mean"), total, 12, magnitude)
    assert_reduced(f(log_q, p, reduction="batchmean"), total, 3, magnitude)
    scalar = f(np.array(-1.0), np.array(0.5), reduction="batchmean")
    assert_reduced(scalar, mp_kl(mp.mpf(-1), mp.mpf(0.5), False)[0], 1)


@HYPOTHESIS
@given(st.lists(st.tuples(st.floats(-1e4, 0.0), probs_st), min_size=1, max_size=8), st.booleans())
def test_kl_div_hypothesis(points: list[tuple[float, float]], log_target: bool) -> None:
    log_q, p = columns(points)
    t = np.log(p, where=p > 0, out=np.full_like(p, -np.inf)) if log_target else p
    exact, scale = zip(
        *(mp_kl(q, ti, log_target) for q, ti in zip(to_mp(log_q), to_mp(t), strict=True)),
        strict=True,
    )
    actual = ref.kl_div(log_q, t, reduction="none", log_target=log_target)
    assert_close(actual, exact, scale, inputs={"log_q": log_q, "target": t})


# ---------------------------------------------------------------------------
# misuse


@pytest.mark.parametrize(
    "call",
    [
        lambda: ref.binary_cross_entropy(np.ones(2) / 2, np.ones(2), reduction="avg"),
        lambda: ref.binary_cross_entropy(np.ones(2) / 2, np.ones(3)),
        lambda: ref.binary_cross_entropy(np.array([1.5]), np.array([1.0])),
        lambda: ref.binary_cross_entropy_with_logits(np.ones(3), np.ones(3), pos_weight=np.ones(2)),
        lambda: ref.cross_entropy(np.zeros((2, 3)), np.array([0, 3])),
        lambda: ref.cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2])),
        lambda: ref.cross_entropy(np.zeros((2, 3)), np.zeros((2, 2))),
        lambda: ref.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), weight=np.ones(2)),
        lambda: ref.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), label_smoothing=1.5),
        lambda: ref.kl_div(np.zeros(2), np.ones(2), reduction="batchsum"),
        lambda: ref.balanced_binary_cross_entropy_with_logits(np.zeros(3), np.ones(3)),
        lambda: ref.balanced_binary_cross_entropy_with_logits(
            np.zeros((1, 2)), np.full((1, 2), 0.5)
        ),
        lambda: ref.reduce(np.ones(2), "max"),
    ],
)
def test_misuse_raises_value_error(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()


def test_unknown_reduction_message_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match="'none', 'mean', 'sum'"):
        ref.reduce(np.ones(2), "average")


def test_reduce_conventions() -> None:
    values = np.array([1.0, 2.0, 3.0])
    assert ref.reduce(values.astype(np.float32), "none").dtype == np.float64
    assert ref.reduce(values, "sum").shape == () and float(ref.reduce(values, "sum")) == 6.0
    assert float(ref.reduce(values, "mean")) == 2.0
    assert float(ref.reduce(values, "mean", denominator=4.0)) == 1.5
    assert np.isnan(ref.reduce(np.zeros(0), "mean"))


def test_multilabel_soft_margin_grid() -> None:
    # Each sample's class mean of weighted BCE with logits, the terms from mp_bce_logits.
    rows = [(x1, x2, y1, y2) for x1, x2 in itertools.product(LOGITS, LOGITS[::3])
            for y1, y2 in ((0.0, 1.0), (1.0, 1.0), (0.0, 0.0))]
    x = np.array([[r[0], r[1]] for r in rows])
    y = np.array([[r[2], r[3]] for r in rows])
    w = np.array([0.5, 2.0])
    actual = ref.multilabel_soft_margin_loss(x, y, w, reduction="none")
    for i, (x1, x2, y1, y2) in enumerate(rows):
        exact = (mp.mpf(0.5) * mp_multilabel_term(x1, y1)
                 + mp.mpf(2.0) * mp_multilabel_term(x2, y2)) / 2
        assert abs(actual[i] - float(exact)) <= RTOL * abs(float(exact)) + TINY, (rows[i],)


def mp_multilabel_term(x: float, y: float) -> mpmath.mpf:
    """-(y log sigma(x) + (1 - y) log sigma(-x)) for y in {0, 1}: log(1 + e^(-x)) or
    log(1 + e^x), each written so that e^t never dwarfs the 1 beyond 40 digits."""
    t = mp.mpf(-x) if y == 1.0 else mp.mpf(x)
    return t + mp.log1p(mp.exp(-t)) if t > 0 else mp.log1p(mp.exp(t))



@pytest.mark.parametrize(("mean_over", "denominator"), [("kept", 2), ("all", 3), ("elements", 9)])
def test_softmax_focal_mean_over_conventions(mean_over: str, denominator: int) -> None:
    # three targets, one ignored, three classes: the 'mean' divides the same sum by the kept
    # targets (the spec), every target (smp) or every element of a per-class map (kornia)
    x = np.array([[1.0, -0.5, 2.0], [0.3, 0.2, -1.0], [0.0, 4.0, 1.0]])
    y = np.array([2, -100, 0])
    f = ref.softmax_focal_loss
    total = f(x, y, reduction="sum", mean_over=mean_over)
    assert total == f(x, y, reduction="sum")
    assert f(x, y, mean_over=mean_over) == total / denominator
    with pytest.raises(ValueError, match="mean_over"):
        f(x, y, mean_over="batch")
