"""The float64 segmentation references against exact and 60-digit arithmetic, their identities,
and hand-derived values.

Independent definitions, sharing no code with ``reference.segmentation``:

- soft counts and scores: probabilities in mpmath at 60 digits (1 - p as the other classes'
  share, or 1 / (1 + e^x), so no digits cancel), the one-hot target built pixel by pixel,
  and the papers' formulas S = (2I + s) / (P + G + s) and so on taken literally, L = 1 - S.
  60 rather than 40 digits because that last subtraction cancels: a confident prediction's
  squared-Dice loss is ~1e-31, and 1 - S keeps ~30 of the 60 digits;
  class selection and reductions written as loops;
- the Lovasz losses: the Lovasz extension of the set function Delta_J(M) = |M| / |fg u M|
  (M the mispredicted pixels, Delta_J of the empty set 0), evaluated by its definition
  sum_i m_(i) (Delta_J({1..i}) - Delta_J({1..i-1})) over the decreasing order of the
  errors m, on sets of pixels, with exact fractions (hinge) or 60 digits (softmax);
- lovasz_grad: Alg. 1 (J_k = 1 - I_k / U_k and its differences) in exact fractions;
- jaccard_index: intersections and unions counted in loops.

Agreement means |ref - exact| <= 1e-13 |exact| + 1e-15: the references sum non-negative
terms, and the 1e-15 covers the squared Dice on soft targets, where p - g itself cancels.
"""

from __future__ import annotations

import itertools
import random
import subprocess
import sys
from collections.abc import Callable, Sequence
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import reference as ref
from reference import segmentation as seg

mp = mpmath.MPContext()
mp.dps = 60

RTOL = 1e-13
ATOL = 1e-15
IGNORE = 255
SATURATED = 1e4  # sigmoid and softmax of +-1e4 are exactly 0 and 1 in float64
# Derandomized, no example database, no health checks: a verdict must not depend on the
# machine's load (a too-slow health check under `pytest -n 2`) or on an earlier run's examples.
HYPOTHESIS = settings(max_examples=40, derandomize=True, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))


# ---------------------------------------------------------------------------
# comparison


def to_float(value: object) -> float:
    return float(value)  # Fraction and mpf both convert with one rounding


def assert_close(actual: np.ndarray, exact: object, atol: float = 0.0) -> None:
    """Elementwise |actual - exact| <= RTOL |exact| + atol, with equal shapes."""
    want = np.vectorize(to_float, otypes=[np.float64])(np.asarray(exact, dtype=object))
    actual = np.asarray(actual)
    assert actual.dtype == np.float64
    assert actual.shape == want.shape, (actual.shape, want.shape)
    with np.errstate(invalid="ignore"):
        ok = (np.abs(actual - want) <= RTOL * np.abs(want) + atol) | (
            np.isnan(actual) & np.isnan(want))
    assert np.all(ok), f"ref={actual[~ok]!r} exact={want[~ok]!r}"


# ---------------------------------------------------------------------------
# exact soft counts and region losses


def mp_probabilities(x: np.ndarray, activation: str) -> tuple[np.ndarray, np.ndarray]:
    """(p, 1 - p) at 60 digits as object arrays of the input's shape (N, C, ...)."""
    xm = np.vectorize(lambda v: mp.mpf(float(v)), otypes=[object])(x)
    if activation == "sigmoid":
        p = np.vectorize(lambda v: 1 / (1 + mp.exp(-v)), otypes=[object])(xm)
        q = np.vectorize(lambda v: 1 / (1 + mp.exp(v)), otypes=[object])(xm)
        return p, q
    e = np.vectorize(mp.exp, otypes=[object])(xm)
    total = e.sum(axis=1, keepdims=True)
    p, q = e / total, np.empty_like(e)
    for c in range(x.shape[1]):
        others = [k for k in range(x.shape[1]) if k != c]
        q[:, c] = e[:, others].sum(axis=1) / total[:, 0] if others else 0 * total[:, 0]
    return p, q


def exact_target(
    x: np.ndarray, target: np.ndarray, ignore_index: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """(g as exact fractions of the input's shape, valid-pixel mask of that shape)."""
    target = np.asarray(target)
    valid = np.ones(x.shape, dtype=bool)
    if np.issubdtype(target.dtype, np.floating):
        return np.vectorize(Fraction, otypes=[object])(target), valid
    g = np.full(x.shape, Fraction(0), dtype=object)
    for n, *rest in np.ndindex(target.shape):
        label = int(target[(n, *rest)])
        if label == ignore_index:
            valid[(n, slice(None), *rest)] = False
        else:
            g[(n, label, *rest)] = Fraction(1)
    return g, valid


def mp_counts(
    x: np.ndarray,
    target: np.ndarray,
    activation: str = "softmax",
    per_image: bool = False,
    ignore_index: int | None = None,
    intersection: str = "product",
) -> dict[str, np.ndarray]:
    """I, P, G, FP, FN, sum p^2, sum g^2 at 60 digits, per (image,) class; intersection 'min'
    is I = sum min(p, g), FP = sum max(p - g, 0), FN = sum max(g - p, 0)."""
    p, q = mp_probabilities(x, activation)
    g, valid = exact_target(x, target, ignore_index)
    g = np.vectorize(lambda f: mp.mpf(f.numerator) / f.denominator, otypes=[object])(g)
    p, q, g = (np.where(valid, a, mp.mpf(0)) for a in (p, q, g))
    spatial = tuple(range(2, x.ndim))
    axes = spatial if per_image else (0, *spatial)

    def total(a: np.ndarray) -> np.ndarray:
        return np.asarray(a.sum(axis=axes) if axes else a, dtype=object)

    if intersection == "min":
        low = np.frompyfunc(min, 2, 1)
        high = np.frompyfunc(max, 2, 1)
        overlap, fp, fn = low(p, g), high(p - g, mp.mpf(0)), high(g - p, mp.mpf(0))
    else:
        overlap, fp, fn = p * g, p * (1 - g), q * g
    return {
        "I": total(overlap),
        "P": total(p),
        "G": total(g),
        "FP": total(fp),
        "FN": total(fn),
        "P2": total(p * p),
        "G2": total(g * g),
    }


def mp_losses(kind: str, n: dict[str, np.ndarray], smooth: float, empty: str = "one",
              **kw: object) -> np.ndarray:
    """The papers' losses 1 - S = (den - num) / den, with a zero denominator giving S = 0
    (loss 1), or NaN with empty='nan'. den - num is summed from FP and FN (P = I + FP,
    G = I + FN), never subtracted: 1 - num / den at 60 digits would round a loss below 1e-60
    to 0 (a soft target of 1e-308 at alpha 0 makes a Tversky loss of 5.6e-309)."""
    s = mp.mpf(smooth)
    if kind == "dice" and kw.get("form", "standard") == "squared":
        num, den = 2 * n["I"] + s, n["P2"] + n["G2"] + s
        gap = den - num
    elif kind == "dice":
        num, den = 2 * n["I"] + s, n["P"] + n["G"] + s
        gap = n["FP"] + n["FN"]
    elif kind == "jaccard":
        num, den = n["I"] + s, n["P"] + n["G"] - n["I"] + s
        gap = n["FP"] + n["FN"]
    else:
        a, b = mp.mpf(kw["alpha"]), mp.mpf(kw["beta"])
        gap = a * n["FP"] + b * n["FN"]
        num, den = n["I"] + s, n["I"] + gap + s
    losses = np.empty(num.shape, dtype=object)
    for i in np.ndindex(num.shape):
        # 0 / 0 scores 0: the limit as an absent class's predictions vanish (the spec's choice)
        if den[i] == 0:
            losses[i] = mp.mpf(1) if empty == "one" else mp.nan
        else:
            losses[i] = gap[i] / den[i]
    return losses


def expected_reduction(
    losses: np.ndarray,
    target_count: np.ndarray,
    include_background: bool,
    classes: str | Sequence[int],
    reduction: str,
) -> object:
    """Class selection and reduction of the (N, C) or (C,) losses, written out."""
    num_classes = losses.shape[-1]
    if isinstance(classes, str):
        columns = list(range(0 if include_background else 1, num_classes))
    else:
        columns = list(classes)
    rows = losses.reshape(-1, num_classes)
    counts = target_count.reshape(-1, num_classes)
    out = np.full((rows.shape[0], len(columns)), mp.mpf(0), dtype=object)
    kept = 0
    for r in range(rows.shape[0]):
        for j, c in enumerate(columns):
            if classes != "present" or counts[r, c] > 0:
                out[r, j] = rows[r, c]
                kept += 1
    if reduction == "none":
        return out.reshape((*losses.shape[:-1], len(columns)))
    total = sum(out.ravel(), mp.mpf(0))
    if reduction == "sum":
        return total
    return total / kept if kept else mp.mpf(0)


REGION_LOSSES = {
    "dice": ref.soft_dice_loss,
    "jaccard": ref.soft_jaccard_loss,
    "tversky": ref.tversky_loss,
}


def expected_region_loss(kind: str, x: np.ndarray, target: np.ndarray, **kw: object) -> object:
    """The exact counterpart of REGION_LOSSES[kind](x, target, **kw)."""
    kw = {
        "activation": "softmax",
        "smooth": 0.0,
        "include_background": True,
        "classes": "all",
        "per_image": False,
        "ignore_index": None,
        "reduction": "mean",
        "empty_score": "one",
        "absent_class": "scored",
        "intersection": "product",
        **kw,
    }
    n = mp_counts(x, target, kw["activation"], kw["per_image"], kw["ignore_index"],
                  kw["intersection"])
    extra = {k: kw[k] for k in ("form", "alpha", "beta") if k in kw}
    losses = mp_losses(kind, n, kw["smooth"], kw["empty_score"], **extra)
    if kw["absent_class"] == "zero":  # a class with no ground truth costs 0 (smp)
        losses = np.where(n["G"] > 0, losses, mp.mpf(0))
    return expected_reduction(
        losses, n["G"], kw["include_background"], kw["classes"], kw["reduction"]
    )


# ---------------------------------------------------------------------------
# exact Lovasz extension


def jaccard_set_loss(mistakes: set[int], foreground: set[int]) -> Fraction:
    """Delta_J(M) = |M| / |fg u M|, and 0 for M empty."""
    return Fraction(len(mistakes), len(foreground | mistakes)) if mistakes else Fraction(0)


def lovasz_extension(errors: Sequence, foreground: Sequence[bool]) -> object:
    """sum_i m_(i) (Delta_J({1..i}) - Delta_J({1..i-1})) over the decreasing order of m.

    Equal errors are taken in index order; the value does not depend on it (checked below).
    ``errors`` are Fractions or mpfs; the increments are exact fractions.
    """
    fg = {i for i, f in enumerate(foreground) if f}
    order = sorted(range(len(errors)), key=lambda i: errors[i], reverse=True)
    value: object = Fraction(0)
    before, chosen = Fraction(0), set()
    for i in order:
        chosen.add(i)
        now = jaccard_set_loss(chosen, fg)
        step = now - before
        m = errors[i]
        if not isinstance(m, Fraction):
            step = mp.mpf(step.numerator) / step.denominator
        value += m * step
        before = now
    return value


def exact_hinge(x: np.ndarray, y: np.ndarray, per_image: bool, ignore_index: int | None) -> object:
    """lovasz_hinge by the definition: relu(1 - x s) exactly, one Lovasz extension per image."""
    images = [(x[i].ravel(), y[i].ravel()) for i in range(x.shape[0])]
    if not per_image:
        images = [(x.ravel(), y.ravel())]
    losses = []
    for xs, ys in images:
        kept = [i for i in range(xs.size) if ignore_index is None or ys[i] != ignore_index]
        errors = [max(Fraction(0), 1 - Fraction(xs[i]) * (2 * int(ys[i]) - 1)) for i in kept]
        losses.append(lovasz_extension(errors, [ys[i] == 1 for i in kept]))
    return sum(losses, Fraction(0)) / len(losses) if losses else Fraction(0)


def exact_lovasz_softmax(
    x: np.ndarray,
    y: np.ndarray,
    classes: str | Sequence[int],
    per_image: bool,
    ignore_index: int | None,
) -> object:
    """lovasz_softmax by the definition, with 60-digit probabilities."""
    p, q = mp_probabilities(x, "softmax")
    num_classes = x.shape[1]

    def pixels(a: np.ndarray) -> np.ndarray:  # (N, C, ...) -> (N * pixels, C)
        return np.moveaxis(a, 1, -1).reshape(-1, num_classes)

    if per_image:
        groups = [(pixels(p[i : i + 1]), pixels(q[i : i + 1]), y[i].ravel()) for i in range(len(y))]
    else:
        groups = [(pixels(p), pixels(q), y.ravel())]
    image_losses = []
    for pg, qg, yg in groups:
        kept = [i for i in range(yg.size) if ignore_index is None or yg[i] != ignore_index]
        columns = range(num_classes) if isinstance(classes, str) else classes
        class_losses = []
        for c in columns:
            fg = [yg[i] == c for i in kept]
            if classes == "present" and not any(fg):
                continue
            errors = [qg[i, c] if f else pg[i, c] for i, f in zip(kept, fg, strict=True)]
            class_losses.append(lovasz_extension(errors, fg))
        image_losses.append(
            sum(class_losses, mp.mpf(0)) / len(class_losses) if class_losses else mp.mpf(0)
        )
    return sum(image_losses, mp.mpf(0)) / len(image_losses) if image_losses else mp.mpf(0)


# ---------------------------------------------------------------------------
# strategies


LOGIT_GRID = (-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0)  # repeated values make ties


def logits(moderate: float = 20.0) -> st.SearchStrategy[float]:
    return st.one_of(
        st.sampled_from(LOGIT_GRID),
        st.floats(-moderate, moderate, allow_nan=False, allow_subnormal=False),
    )


@st.composite
def layouts(draw: st.DrawFn, max_pixels: int = 6) -> tuple[int, ...]:
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    spatial = draw(st.lists(st.integers(1, 3), max_size=2))
    while int(np.prod(spatial, dtype=int)) > max_pixels:
        spatial.pop()
    return (n, c, *spatial)


@st.composite
def label_maps(
    draw: st.DrawFn, shape: tuple[int, ...], num_classes: int, ignore: bool
) -> np.ndarray:
    labels = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, num_classes - 1)))
    if ignore:
        hidden = draw(hnp.arrays(np.bool_, shape, elements=st.booleans()))
        labels = np.where(hidden, IGNORE, labels)
    return labels


@st.composite
def region_cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, dict]:
    shape = draw(layouts())
    n, c = shape[:2]
    x = draw(hnp.arrays(np.float64, shape, elements=logits()))
    kw: dict = {
        "activation": draw(st.sampled_from(["softmax", "sigmoid"])),
        "smooth": draw(st.sampled_from([0.0, 0.0, 1.0, 1e-5, 0.375])),
        "per_image": draw(st.booleans()),
        "include_background": draw(st.booleans()),
        "classes": draw(
            st.one_of(
                st.sampled_from(["all", "present"]),
                st.lists(st.integers(0, c - 1), min_size=1, max_size=c, unique=True),
            )
        ),
        "reduction": draw(st.sampled_from(["none", "sum", "mean"])),
    }
    if draw(st.booleans()):
        ignore = draw(st.booleans())
        y = draw(label_maps((n, *shape[2:]), c, ignore))
        if ignore:
            kw["ignore_index"] = IGNORE
    else:
        soft = st.one_of(st.sampled_from([0.0, 1.0, 0.5]), st.floats(0.0, 1.0))
        y = draw(hnp.arrays(np.float64, shape, elements=soft))
    return x, y, kw


# ---------------------------------------------------------------------------
# soft counts and scores against 60 digits


def random_case(
    seed: int, shape: tuple[int, ...], mask: bool, ignore: bool
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=3.0, size=shape)
    if mask:
        return x, rng.uniform(size=shape)
    y = rng.integers(0, shape[1], size=(shape[0], *shape[2:]))
    if ignore:
        y = np.where(rng.uniform(size=y.shape) < 0.3, IGNORE, y)
    return x, y


COUNT_CASES = [
    # (seed, shape, float mask, ignore)
    (0, (2, 3, 2, 3), False, False),
    (1, (2, 3, 4), False, True),
    (2, (1, 2, 5), True, False),
    (3, (3, 1, 2, 2), True, False),
    (4, (2, 4), False, True),  # no spatial axis: one pixel per image
]


@pytest.mark.parametrize(("seed", "shape", "mask", "ignore"), COUNT_CASES)
@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
@pytest.mark.parametrize("per_image", [False, True])
def test_soft_counts(
    seed: int, shape: tuple, mask: bool, ignore: bool, activation: str, per_image: bool
) -> None:
    x, y = random_case(seed, shape, mask, ignore)
    ignore_index = IGNORE if ignore else None
    got = ref.soft_counts(x, y, activation, per_image, ignore_index)
    want = mp_counts(x, y, activation, per_image, ignore_index)
    for name, key in [
        ("intersection", "I"),
        ("prediction", "P"),
        ("target", "G"),
        ("false_positive", "FP"),
        ("false_negative", "FN"),
        ("prediction_sq", "P2"),
        ("target_sq", "G2"),
    ]:
        assert_close(getattr(got, name), want[key])
    assert_close(got.squared_error, want["P2"] + want["G2"] - 2 * want["I"])


SCORE_CALLS = [
    ("dice", {}),
    ("dice", {"form": "squared"}),
    ("dice", {"smooth": 1.0, "per_image": True, "reduction": "none"}),
    ("dice", {"form": "squared", "classes": "present", "include_background": False}),
    ("jaccard", {}),
    ("jaccard", {"smooth": 0.5, "classes": [2, 0], "reduction": "none"}),
    ("jaccard", {"per_image": True, "classes": "present", "reduction": "sum"}),
    ("tversky", {"alpha": 0.3, "beta": 0.7}),
    ("tversky", {"alpha": 2.0, "beta": 0.0, "smooth": 1.0, "reduction": "none"}),
    ("tversky", {"alpha": 0.1, "beta": 0.9, "per_image": True, "classes": "present"}),
    # the declared conventions (conformance.variants)
    ("dice", {"intersection": "min", "absent_class": "zero"}),
    ("jaccard", {"intersection": "min", "smooth": 0.5, "reduction": "none"}),
    ("tversky", {"alpha": 0.3, "beta": 0.7, "intersection": "min", "absent_class": "zero",
                 "per_image": True, "reduction": "none"}),
    ("dice", {"empty_score": "nan", "per_image": True, "reduction": "none"}),
]


@pytest.mark.parametrize(("kind", "kw"), SCORE_CALLS)
@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
@pytest.mark.parametrize("case", [0, 1])
def test_region_losses_exact(kind: str, kw: dict, activation: str, case: int) -> None:
    seed, shape, mask, ignore = COUNT_CASES[case]
    x, y = random_case(seed, shape, mask, ignore)
    kw = {"activation": activation, **kw, **({"ignore_index": IGNORE} if ignore else {})}
    got = REGION_LOSSES[kind](x, y, **kw)
    assert_close(got, expected_region_loss(kind, x, y, **kw))


@pytest.mark.parametrize("kind", sorted(REGION_LOSSES))
def test_a_zero_over_zero_score_is_loss_one_or_nan_as_declared(kind: str) -> None:
    # class 1: nothing predicted (sigmoid of -1e4 is 0 in float64), nothing present
    x = np.array([[[1e4], [-1e4]]])
    y = np.array([[[1.0], [0.0]]])
    kw = {"activation": "sigmoid", "reduction": "none",
          **({"alpha": 0.5, "beta": 0.5} if kind == "tversky" else {})}
    assert_close(REGION_LOSSES[kind](x, y, **kw), [0.0, 1.0])
    assert_close(REGION_LOSSES[kind](x, y, empty_score="nan", **kw), [0.0, mp.nan])
    assert_close(REGION_LOSSES[kind](x, y, empty_score="nan", absent_class="zero", **kw),
                 [0.0, 0.0])


# A weight of 1e-249 makes a loss of that size, which the 50-digit exact value cannot resolve
# against 1: weights are 0 or at least 1e-3.
WEIGHT = st.one_of(st.just(0.0), st.floats(1e-3, 2.0))


@pytest.mark.parametrize("kind", sorted(REGION_LOSSES))
@HYPOTHESIS
@given(case=region_cases(), weights=st.tuples(WEIGHT, WEIGHT))
def test_region_losses_hypothesis(
    kind: str, case: tuple[np.ndarray, np.ndarray, dict], weights: tuple[float, float]
) -> None:
    x, y, kw = case
    if kind == "dice":
        kw["form"] = "squared" if weights[0] > 1 else "standard"
    if kind == "tversky":
        kw["alpha"], kw["beta"] = weights
    got = REGION_LOSSES[kind](x, y, **kw)
    # p - g cancels in the squared Dice's numerator sum (p - g)^2 when g is soft
    soft_squared = kw.get("form") == "squared" and np.issubdtype(y.dtype, np.floating)
    assert_close(got, expected_region_loss(kind, x, y, **kw), ATOL if soft_squared else 0.0)
    # every score is in [0, 1] (alpha, beta >= 0), so every entry and their mean are too
    assert np.all(got >= 0)
    if kw["reduction"] != "sum":
        assert np.all(got <= 1)


@pytest.mark.parametrize("margin", [12.0, 30.0, 36.0])
def test_confident_correct_predictions_keep_relative_accuracy(margin: float) -> None:
    """Logits that put the right class ahead by 12 to 36: 1 - p is 6e-6 down to 2e-16, and
    every loss is of that size. Forming 1 - p by subtraction would leave only the rounding
    error of p there; the references keep ~13 digits."""
    rng = np.random.default_rng(int(margin))
    y = rng.integers(0, 3, size=(2, 5))
    onehot = np.moveaxis(np.eye(3)[y], -1, 1)
    noise = rng.uniform(-0.5, 0.5, size=onehot.shape)
    x = margin * onehot + noise  # softmax: the right class ahead by the margin
    sigmoid_x = margin * (2 * onehot - 1) + noise  # sigmoid: every class confident
    for kind in REGION_LOSSES:
        for activation, logits_ in (("softmax", x), ("sigmoid", sigmoid_x)):
            kw = {"activation": activation, "per_image": True, "reduction": "none"}
            kw |= {"alpha": 0.3, "beta": 0.7} if kind == "tversky" else {}
            got = REGION_LOSSES[kind](logits_, y, **kw)
            assert_close(got, expected_region_loss(kind, logits_, y, **kw))
    squared = ref.soft_dice_loss(x, y, form="squared", reduction="none")
    assert_close(squared, expected_region_loss("dice", x, y, form="squared", reduction="none"))
    for per_image in (False, True):
        got = ref.lovasz_softmax(x, y, "all", per_image)
        assert_close(got, exact_lovasz_softmax(x, y, "all", per_image, None))


def test_kept_entries() -> None:
    x = np.zeros((2, 3, 4))
    y = np.array([[0, 0, 2, 2], [1, IGNORE, 1, 1]])
    assert seg.kept_entries(x, y, ignore_index=IGNORE) == 3
    assert seg.kept_entries(x, y, include_background=False, ignore_index=IGNORE) == 2
    assert seg.kept_entries(x, y, per_image=True, ignore_index=IGNORE) == 6
    # present per image: image 0 has classes 0 and 2, image 1 class 1 only
    assert seg.kept_entries(x, y, classes="present", per_image=True, ignore_index=IGNORE) == 3
    no_background = {"classes": "present", "include_background": False, "per_image": True}
    assert seg.kept_entries(x, y, ignore_index=IGNORE, **no_background) == 2
    assert seg.kept_entries(x, y, classes=[1, 2, 1], ignore_index=IGNORE) == 3
    # an empty list selects nothing: shape (0,) and a mean of 0
    assert seg.kept_entries(x, y, classes=[], ignore_index=IGNORE) == 0
    assert ref.soft_dice_loss(x, y, classes=[], ignore_index=IGNORE, reduction="none").shape == (0,)
    assert ref.soft_dice_loss(x, y, classes=[], ignore_index=IGNORE) == 0.0
    # every pixel ignored: nothing is present, and the mean over nothing is 0
    hidden = np.full_like(y, IGNORE)
    assert seg.kept_entries(x, hidden, classes="present", ignore_index=IGNORE) == 0
    for loss in REGION_LOSSES.values():
        kw = {"classes": "present", "ignore_index": IGNORE}
        assert loss(x, hidden, **kw) == 0.0
        np.testing.assert_array_equal(loss(x, hidden, reduction="none", **kw), np.zeros(3))


@pytest.mark.parametrize("kind", sorted(REGION_LOSSES))
def test_mean_is_sum_over_kept_entries(kind: str) -> None:
    x, y = random_case(1, (2, 3, 4), False, True)
    kw = {"classes": "present", "per_image": True, "ignore_index": IGNORE}
    total = REGION_LOSSES[kind](x, y, reduction="sum", **kw)
    mean = REGION_LOSSES[kind](x, y, reduction="mean", **kw)
    kept = seg.kept_entries(x, y, **kw)
    assert float(mean) == pytest.approx(float(total) / kept, rel=1e-15)


def test_one_hot() -> None:
    y = np.array([[2, 0], [IGNORE, 1]])
    want = np.array([[[0.0, 1.0], [0.0, 0.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 1.0], [0.0, 0.0]]])
    got = seg.one_hot(y, 3, IGNORE)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------
# Dice + CE


def mp_cross_entropy(x: np.ndarray, y: np.ndarray, ignore_index: int | None) -> object:
    p, _ = mp_probabilities(x, "softmax")
    terms = [
        -mp.log(p[(n, int(y[(n, *rest)]), *rest)])
        for n, *rest in np.ndindex(y.shape)
        if y[(n, *rest)] != ignore_index
    ]
    return sum(terms, mp.mpf(0)) / len(terms) if terms else mp.nan


@HYPOTHESIS
@given(
    data=st.data(),
    lambdas=st.tuples(st.floats(0.0, 2.0), st.floats(0.0, 2.0)),
    smooth=st.sampled_from([0.0, 1.0]),
    ignore=st.booleans(),
)
def test_dice_ce_hypothesis(
    data: st.DataObject, lambdas: tuple[float, float], smooth: float, ignore: bool
) -> None:
    shape = data.draw(layouts())
    x = data.draw(hnp.arrays(np.float64, shape, elements=logits()))
    y = data.draw(label_maps((shape[0], *shape[2:]), shape[1], ignore))
    y.flat[0] = 0  # one pixel kept, so the cross entropy is defined
    ignore_index = IGNORE if ignore else None
    got = ref.dice_ce_loss(x, y, *lambdas, smooth=smooth, ignore_index=ignore_index)
    dice = expected_region_loss("dice", x, y, smooth=smooth, ignore_index=ignore_index)
    ce = mp_cross_entropy(x, y, ignore_index)
    want = lambdas[0] * dice + lambdas[1] * ce
    assert got.shape == ()
    assert abs(float(got) - float(want)) <= RTOL * (lambdas[0] * dice + lambdas[1] * ce) + ATOL


def test_dice_ce_every_pixel_ignored_is_nan() -> None:
    x = np.zeros((1, 2, 3))
    y = np.full((1, 3), IGNORE)
    assert np.isnan(ref.dice_ce_loss(x, y, ignore_index=IGNORE))


# ---------------------------------------------------------------------------
# lovasz_grad


def alg1_grad(g: Sequence[int]) -> list[Fraction]:
    """Alg. 1 literally, in fractions: J_k = 1 - I_k / U_k, grad = (J_0, J_1 - J_0, ...)."""
    total = sum(g)
    jaccard = [
        1 - Fraction(total - sum(g[: k + 1]), total + sum(1 - v for v in g[: k + 1]))
        for k in range(len(g))
    ]
    return [jaccard[0]] + [b - a for a, b in itertools.pairwise(jaccard)] if g else []


@pytest.mark.parametrize("length", range(8))
def test_lovasz_grad_is_alg1_correctly_rounded(length: int) -> None:
    """Every 0/1 vector of each length at once, as one (2^length, length) batch; each
    grad is the exact Alg. 1 value rounded once to float64."""
    rows = list(itertools.product([0, 1], repeat=length))
    batch = np.array(rows, dtype=np.int64).reshape(len(rows), length)
    got = seg.lovasz_grad(batch)
    assert got.shape == batch.shape and got.dtype == np.float64
    want = np.array([[float(v) for v in alg1_grad(list(row))] for row in batch.tolist()])
    np.testing.assert_array_equal(got, want.reshape(batch.shape))


def test_lovasz_grad_edge_cases() -> None:
    # no foreground: every J_k is 1, so only the largest error counts
    np.testing.assert_array_equal(seg.lovasz_grad(np.zeros(4)), [1.0, 0.0, 0.0, 0.0])
    # one pixel: grad_0 = J_0 = 1 - (g - g) / (g + 1 - g) = 1 whatever g
    np.testing.assert_array_equal(seg.lovasz_grad(np.array([[0.0], [1.0]])), [[1.0], [1.0]])
    assert seg.lovasz_grad(np.zeros((3, 0))).shape == (3, 0)
    # the grads sum to J_last = 1 (everything mispredicted) whenever a pixel exists
    g = (np.random.default_rng(5).uniform(size=(4, 50)) < 0.3).astype(float)
    np.testing.assert_allclose(seg.lovasz_grad(g).sum(axis=-1), 1.0, rtol=1e-14)


def test_lovasz_grad_large_batch_keeps_small_increments() -> None:
    """Late increments are ~4e-11 while J is ~1: a difference of two J would keep ~5 digits."""
    g = np.zeros(10**6)
    g[:10] = 1.0
    grad = seg.lovasz_grad(g)
    k = 500_000  # background pixel with I_{k-1} = 0 after the 10 foreground ones came first
    assert grad[k] == 0.0
    g = np.zeros(10**6)
    g[-10:] = 1.0  # foreground last: I_{k-1} = 10, U_k = 10 + k + 1
    grad = seg.lovasz_grad(g)
    k = 500_000
    exact = Fraction(10, (10 + k) * (10 + k + 1))
    assert grad[k] == float(exact)


# ---------------------------------------------------------------------------
# Lovasz hinge against the definition


def hinge_case(
    x: Sequence[float], y: Sequence[int], shape: tuple[int, ...] = ()
) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = np.array(x, dtype=np.float64), np.array(y, dtype=np.int64)
    return (xs.reshape(shape), ys.reshape(shape)) if shape else (xs[None], ys[None])


HINGE_EDGE_CASES = {
    "ties": ([2.0, -1.0, 0.5, -0.5, 0.5, -0.5], [1, 0, 0, 1, 0, 1]),
    "all errors equal": ([0.5, -0.5, 0.5, -0.5, -0.5], [1, 0, 1, 0, 0]),
    "all errors zero": ([1.0, -1.0, 1.0], [1, 0, 1]),
    "one pixel, foreground": ([0.25], [1]),
    "one pixel, background": ([0.25], [0]),
    "no foreground": ([0.3, -2.0, 1.5, 0.0], [0, 0, 0, 0]),
    "all foreground": ([0.3, -2.0, 1.5, 0.0], [1, 1, 1, 1]),
    "every pixel ignored": ([0.3, -2.0, 1.5], [IGNORE, IGNORE, IGNORE]),
    "some ignored": ([0.3, -2.0, 1.5, 7.0, -1.0], [1, IGNORE, 0, IGNORE, 1]),
    "all negative errors": ([3.0, -3.0, 2.0], [1, 0, 1]),
}


@pytest.mark.parametrize("name", sorted(HINGE_EDGE_CASES))
def test_lovasz_hinge_edge_cases(name: str) -> None:
    x, y = hinge_case(*HINGE_EDGE_CASES[name])
    for per_image in (True, False):
        got = ref.lovasz_hinge(x, y, per_image=per_image, ignore_index=IGNORE)
        assert got.shape == () and got.dtype == np.float64
        assert_close(got, exact_hinge(x, y, per_image, IGNORE))


def test_lovasz_extension_is_tie_order_free() -> None:
    """The definition itself: reordering pixels (hence equal errors) keeps the exact value."""
    errors = [Fraction(3, 2), Fraction(1, 2), Fraction(3, 2), Fraction(1, 2), Fraction(3, 2)]
    fg = [True, False, False, True, False]
    values = set()
    for perm in itertools.permutations(range(5)):
        values.add(lovasz_extension([errors[i] for i in perm], [fg[i] for i in perm]))
    assert len(values) == 1


def test_lovasz_hinge_images_with_ignored_pixels() -> None:
    x = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5], [-2.0, 0.25, 0.75]])
    y = np.array([[1, 0, IGNORE], [IGNORE, IGNORE, IGNORE], [0, 1, 1]])
    for per_image in (True, False):
        assert_close(
            ref.lovasz_hinge(x, y, per_image=per_image, ignore_index=IGNORE),
            exact_hinge(x, y, per_image, IGNORE),
        )


@HYPOTHESIS
@given(data=st.data(), per_image=st.booleans(), ignore=st.booleans(), as_float=st.booleans())
def test_lovasz_hinge_hypothesis(
    data: st.DataObject, per_image: bool, ignore: bool, as_float: bool
) -> None:
    n = data.draw(st.integers(1, 3))
    spatial = data.draw(st.lists(st.integers(1, 7 // n), max_size=1))
    shape = (n, *spatial)
    x = data.draw(hnp.arrays(np.float64, shape, elements=logits(5.0)))
    y = data.draw(hnp.arrays(np.int64, shape, elements=st.integers(0, 1)))
    if ignore:
        y = np.where(data.draw(hnp.arrays(np.bool_, shape, elements=st.booleans())), IGNORE, y)
    target = y.astype(np.float64) if as_float else y
    ignore_index = IGNORE if ignore else None
    got = ref.lovasz_hinge(x, target, per_image=per_image, ignore_index=ignore_index)
    assert_close(got, exact_hinge(x, y, per_image, ignore_index))


# ---------------------------------------------------------------------------
# Lovasz-softmax against the definition


SOFTMAX_CASES = [
    # (seed, shape, ignore)
    (10, (1, 3, 5), False),
    (11, (2, 3, 3), True),
    (12, (2, 2, 1, 3), False),
    (13, (3, 4, 2), True),
]


@pytest.mark.parametrize(("seed", "shape", "ignore"), SOFTMAX_CASES)
@pytest.mark.parametrize("classes", ["present", "all", [2, 0], [1]])
@pytest.mark.parametrize("per_image", [False, True])
def test_lovasz_softmax_exact(
    seed: int, shape: tuple, ignore: bool, classes: object, per_image: bool
) -> None:
    x, y = random_case(seed, shape, False, ignore)
    if not isinstance(classes, str):
        classes = [c for c in classes if c < shape[1]]
    # snap some logits to a grid so that equal probabilities tie
    x = np.where(np.random.default_rng(seed).uniform(size=x.shape) < 0.5, np.round(x), x)
    ignore_index = IGNORE if ignore else None
    got = ref.lovasz_softmax(x, y, classes=classes, per_image=per_image, ignore_index=ignore_index)
    assert got.shape == ()
    assert_close(got, exact_lovasz_softmax(x, y, classes, per_image, ignore_index))


def test_lovasz_softmax_every_pixel_ignored() -> None:
    x = np.array([[[0.5, -1.0], [2.0, 0.0]]])
    y = np.full((1, 2), IGNORE)
    for classes in ("present", "all", [1]):
        for per_image in (False, True):
            assert ref.lovasz_softmax(x, y, classes, per_image, IGNORE) == 0.0


@HYPOTHESIS
@given(data=st.data(), per_image=st.booleans(), ignore=st.booleans())
def test_lovasz_softmax_hypothesis(data: st.DataObject, per_image: bool, ignore: bool) -> None:
    shape = data.draw(layouts(max_pixels=4))
    x = data.draw(hnp.arrays(np.float64, shape, elements=logits()))
    y = data.draw(label_maps((shape[0], *shape[2:]), shape[1], ignore))
    classes = data.draw(
        st.one_of(
            st.sampled_from(["all", "present"]),
            st.lists(st.integers(0, shape[1] - 1), min_size=1, max_size=shape[1], unique=True),
        )
    )
    ignore_index = IGNORE if ignore else None
    got = ref.lovasz_softmax(x, y, classes, per_image, ignore_index)
    assert_close(got, exact_lovasz_softmax(x, y, classes, per_image, ignore_index))
    assert 0 <= got <= 1  # errors <= 1 and the grads sum to at most 1


# ---------------------------------------------------------------------------
# jaccard_index


def loop_jaccard_index(
    pred: np.ndarray, y: np.ndarray, num_classes: int, ignore_index: int | None, empty: float
) -> np.ndarray:
    out = []
    for c in range(num_classes):
        inter = union = 0
        for a, b in zip(pred.ravel(), y.ravel(), strict=True):
            if b == ignore_index:
                continue
            inter += a == c and b == c
            union += a == c or b == c
        out.append(Fraction(int(inter), int(union)) if union else empty)
    return np.array(out, dtype=object)


def test_jaccard_index_by_hand() -> None:
    pred = np.array([[0, 1, 1, 2]])
    y = np.array([[0, 1, 2, 2]])
    # class 0: {0} vs {0} -> 1; class 1: pred {1, 2}, y {1} -> 1/2; class 2: pred {3},
    # y {2, 3} -> 1/2; class 3: nothing either side -> empty
    np.testing.assert_array_equal(ref.jaccard_index(pred, y, 4), [1.0, 0.5, 0.5, 1.0])
    np.testing.assert_array_equal(ref.jaccard_index(pred, y, 4, empty=0.0), [1, 0.5, 0.5, 0])
    # ignoring pixel 2 removes it from both: class 1 becomes {1} vs {1}, class 2 {3} vs {3}
    hidden = np.array([[0, 1, IGNORE, 2]])
    np.testing.assert_array_equal(ref.jaccard_index(pred, hidden, 4, IGNORE), [1, 1, 1, 1])
    # predictions under ignored pixels may hold anything, even out-of-range labels
    odd = np.array([[0, 1, 99, 2]])
    np.testing.assert_array_equal(ref.jaccard_index(odd, hidden, 4, IGNORE), [1, 1, 1, 1])


@HYPOTHESIS
@given(data=st.data(), per_image=st.booleans(), ignore=st.booleans())
def test_jaccard_index_hypothesis(data: st.DataObject, per_image: bool, ignore: bool) -> None:
    shape = data.draw(layouts())
    n, c = shape[:2]
    labels = (n, *shape[2:])
    pred = data.draw(hnp.arrays(np.int64, labels, elements=st.integers(0, c - 1)))
    y = data.draw(label_maps(labels, c, ignore))
    ignore_index = IGNORE if ignore else None
    got = ref.jaccard_index(pred, y, c, ignore_index=ignore_index, per_image=per_image)
    if per_image:
        per = [loop_jaccard_index(pred[i], y[i], c, ignore_index, 1.0) for i in range(n)]
        want = sum(per[1:], per[0]) / n
    else:
        want = loop_jaccard_index(pred, y, c, ignore_index, 1.0)
    assert_close(got, want)


# ---------------------------------------------------------------------------
# identities


def saturated_softmax(pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Logits 1e4 * onehot(pred), class axis 1: softmax gives exactly 0 and 1."""
    onehot = np.moveaxis(np.eye(num_classes)[pred], -1, 1)
    return SATURATED * onehot


@pytest.mark.parametrize("smooth", [0.0, 1.0, 0.25])
@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_tversky_special_cases(smooth: float, activation: str) -> None:
    for seed, shape, mask, ignore in COUNT_CASES:
        x, y = random_case(seed, shape, mask, ignore)
        kw = {"activation": activation, "per_image": True, "reduction": "none"}
        kw |= {"ignore_index": IGNORE} if ignore else {}
        # alpha = beta = 1 is Jaccard, to the bit: 1 * FP = FP
        np.testing.assert_array_equal(
            ref.tversky_loss(x, y, 1.0, 1.0, smooth=smooth, **kw),
            ref.soft_jaccard_loss(x, y, smooth=smooth, **kw),
        )
        # alpha = beta = 1/2 is Dice with twice the smoothing:
        # (I + s) / (I + (FP + FN) / 2 + s) = (2I + 2s) / (P + G + 2s)
        np.testing.assert_allclose(
            ref.tversky_loss(x, y, 0.5, 0.5, smooth=smooth, **kw),
            ref.soft_dice_loss(x, y, smooth=2 * smooth, **kw),
            rtol=1e-14,
            atol=1e-16,
        )


@pytest.mark.parametrize("seed", range(4))
def test_dice_is_2j_over_1_plus_j_on_hard_masks(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, c = 2, 3
    pred = rng.integers(0, c, size=(n, 4, 3))
    y = rng.integers(0, c, size=(n, 4, 3))
    multi_label = np.where(rng.uniform(size=(n, c, 4, 3)) < 0.4, SATURATED, -SATURATED)
    mask = (rng.uniform(size=multi_label.shape) < 0.5) * 1.0
    cases = [
        (saturated_softmax(pred, c), y, "softmax"),
        (multi_label, y, "sigmoid"),
        (multi_label, mask, "sigmoid"),
    ]
    for x, target, activation in cases:
        for per_image in (False, True):
            kw = {"activation": activation, "per_image": per_image, "reduction": "none"}
            dice = ref.soft_dice_loss(x, target, **kw)
            jaccard = ref.soft_jaccard_loss(x, target, **kw)
            # 1 - 2J / (1 + J) = (1 - J) / (1 + J), with 1 - J the Jaccard loss
            np.testing.assert_allclose(dice, jaccard / (2 - jaccard), rtol=1e-15, atol=0)


@pytest.mark.parametrize("seed", range(6))
def test_lovasz_softmax_on_one_hot_probabilities_is_one_minus_iou(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, c = 3, 4
    pred = rng.integers(0, c, size=(n, 5, 2))
    y = rng.integers(0, c, size=(n, 5, 2))
    y = np.where(rng.uniform(size=y.shape) < 0.2, IGNORE, y)
    y[-1] = IGNORE  # one image with every pixel ignored
    x = saturated_softmax(pred, c)

    def mean_loss_over_present(p: np.ndarray, t: np.ndarray) -> float:
        present = [k for k in range(c) if np.any(t == k)]
        iou = ref.jaccard_index(p, t, c, ignore_index=IGNORE)
        return float(np.mean([1 - iou[k] for k in present])) if present else 0.0

    batch = ref.lovasz_softmax(x, y, "present", per_image=False, ignore_index=IGNORE)
    assert float(batch) == pytest.approx(mean_loss_over_present(pred, y), rel=1e-14)
    images = ref.lovasz_softmax(x, y, "present", per_image=True, ignore_index=IGNORE)
    per = [mean_loss_over_present(pred[i : i + 1], y[i : i + 1]) for i in range(n)]
    assert float(images) == pytest.approx(np.mean(per), rel=1e-14)


@pytest.mark.parametrize("seed", range(6))
def test_lovasz_hinge_with_0_1_errors_is_one_minus_iou(seed: int) -> None:
    """x = +-1 on correct pixels and 0 on wrong ones gives errors 1 - x s in {0, 1}: the
    extension equals Delta_J(wrong pixels) = 1 - IoU of the foreground."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=(3, 6))
    y[1] = 0  # an image without foreground
    wrong = rng.uniform(size=y.shape) < 0.4
    x = np.where(wrong, 0.0, 2.0 * y - 1)
    pred = np.where(wrong, 1 - y, y)
    y = np.where(rng.uniform(size=y.shape) < 0.15, IGNORE, y)
    for per_image in (False, True):
        iou = ref.jaccard_index(pred, y, 2, ignore_index=IGNORE, per_image=per_image)
        got = ref.lovasz_hinge(x, y, per_image=per_image, ignore_index=IGNORE)
        assert float(got) == pytest.approx(1 - iou[1], rel=1e-14, abs=1e-16)


def all_losses(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Every loss on softmax logits x (N, C, ...) and labels y with ignored pixels."""
    kw = {"ignore_index": IGNORE}
    binary = np.where(y == IGNORE, IGNORE, y % 2)
    out = {
        "lovasz_hinge": ref.lovasz_hinge(x[:, 0], binary, per_image=True, **kw),
        "lovasz_hinge_batch": ref.lovasz_hinge(x[:, 0], binary, per_image=False, **kw),
        "lovasz_softmax": ref.lovasz_softmax(x, y, "present", per_image=False, **kw),
        "lovasz_softmax_images": ref.lovasz_softmax(x, y, "all", per_image=True, **kw),
        "dice_ce": ref.dice_ce_loss(x, y, 0.7, 1.3, smooth=0.5, **kw),
    }
    for name, loss in REGION_LOSSES.items():
        for activation in ("softmax", "sigmoid"):
            out[f"{name}_{activation}"] = loss(
                x, y, activation=activation, per_image=True, reduction="none", **kw
            )
    return out


def test_ignored_pixels_change_nothing() -> None:
    rng = np.random.default_rng(20)
    x, y = random_case(21, (3, 3, 4, 3), False, True)
    before = all_losses(x, y)
    hidden = np.broadcast_to((y == IGNORE)[:, None], x.shape)
    x2 = np.where(hidden, rng.normal(scale=1e3, size=x.shape), x)
    after = all_losses(x2, y)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)


def test_pixel_permutation_invariance() -> None:
    """Pixels move together with their labels (and images swap): Lovasz values stay equal to
    the bit (the sort order is a function of the values), sums to a few ulps."""
    rng = np.random.default_rng(30)
    x, y = random_case(31, (3, 3, 8), False, True)
    x[:, :, :4] = np.round(x[:, :, :4])  # ties
    x[:, :, 4:6] = x[:, :, :2]
    y[:, 4:6] = y[:, :2]
    perm = rng.permutation(8)
    images = rng.permutation(3)
    px, py = x[:, :, perm], y[:, perm]
    before, after = all_losses(x, y), all_losses(px, py)
    for name in before:
        if name.startswith("lovasz"):
            assert after[name] == before[name], name
        else:
            np.testing.assert_allclose(after[name], before[name], rtol=1e-14, err_msg=name)
    # batch-level losses also do not see the order of the images
    sx, sy = x[images], y[images]
    assert ref.lovasz_softmax(sx, sy, ignore_index=IGNORE) == ref.lovasz_softmax(
        x, y, ignore_index=IGNORE
    )
    assert float(ref.soft_dice_loss(sx, sy, ignore_index=IGNORE)) == pytest.approx(
        float(ref.soft_dice_loss(x, y, ignore_index=IGNORE)), rel=1e-14
    )


@pytest.mark.parametrize("kind", sorted(REGION_LOSSES))
@pytest.mark.parametrize(("smooth", "loss"), [(1.0, 0.0), (0.0, 1.0)])
def test_empty_prediction_on_empty_target(kind: str, smooth: float, loss: float) -> None:
    """Nothing predicted, nothing there. Smoothed, the formula gives score s / s = 1 and loss
    exactly 0, not nan. Unsmoothed, 0 / 0 scores 0 by convention: loss 1 (the limit of
    FP / (P + G) = P / P as the predictions vanish), so that an underflowing probability cannot
    flip the value."""
    x = np.full((1, 1, 2, 2), -SATURATED)
    y = np.zeros((1, 1, 2, 2))
    for reduction in ("none", "sum", "mean"):
        got = REGION_LOSSES[kind](x, y, activation="sigmoid", smooth=smooth, reduction=reduction)
        np.testing.assert_array_equal(got, np.full_like(got, loss))


def test_losses_within_unit_interval_at_extremes() -> None:
    rng = np.random.default_rng(40)
    x = rng.choice([-SATURATED, -30.0, 0.0, 30.0, SATURATED], size=(2, 3, 5))
    y = rng.integers(0, 3, size=(2, 5))
    for loss in REGION_LOSSES.values():
        for activation in ("softmax", "sigmoid"):
            got = loss(x, y, activation=activation, per_image=True, reduction="none")
            assert np.all((got >= 0) & (got <= 1))
    assert 0 <= ref.lovasz_softmax(x, y, "all") <= 1


@pytest.mark.parametrize("seed", range(3))
def test_per_image_equals_batch_for_one_image(seed: int) -> None:
    x, y = random_case(seed, (1, 3, 3, 2), False, True)
    for loss in REGION_LOSSES.values():
        for reduction in ("none", "sum", "mean"):
            kw = {"classes": "present", "reduction": reduction, "ignore_index": IGNORE}
            one = loss(x, y, per_image=True, **kw)
            batch = loss(x, y, per_image=False, **kw)
            np.testing.assert_array_equal(one.reshape(batch.shape), batch)
    for per in ("present", "all"):
        assert ref.lovasz_softmax(x, y, per, True, IGNORE) == ref.lovasz_softmax(
            x, y, per, False, IGNORE
        )
    binary = np.where(y == IGNORE, IGNORE, y % 2)
    assert ref.lovasz_hinge(x[:, 0], binary, True, IGNORE) == ref.lovasz_hinge(
        x[:, 0], binary, False, IGNORE
    )
    pred = x.argmax(axis=1)
    np.testing.assert_array_equal(
        ref.jaccard_index(pred, y, 3, IGNORE, per_image=True),
        ref.jaccard_index(pred, y, 3, IGNORE, per_image=False),
    )


# ---------------------------------------------------------------------------
# hand-derived values


SEED001_P = np.array([0.3, 0.2, 0.3, 0.2])
SEED001_G = np.array([0.0, 1.0, 0.0, 1.0])


def seed001_case() -> tuple[np.ndarray, np.ndarray]:
    """Seed 001's probabilities as sigmoid logits log(p / (1 - p)), shape (1, 1, 4)."""
    x = np.log(SEED001_P / (1 - SEED001_P))
    return x.reshape(1, 1, 4), SEED001_G.reshape(1, 1, 4)


def test_seed001_dice_example() -> None:
    """Seed 001: A = sum p = 0.3 + 0.2 + 0.3 + 0.2 = 1.0, B = sum g = 2,
    I = 0.3*0 + 0.2*1 + 0.3*0 + 0.2*1 = 0.4, Dice = 2I / (A + B) = 0.8 / 3,
    loss = 1 - 0.8 / 3 = 2.2 / 3 = 11/15."""
    x, y = seed001_case()
    got = ref.soft_dice_loss(x, y, activation="sigmoid")
    assert float(got) == pytest.approx(11 / 15, rel=1e-14)
    counts = ref.soft_counts(x, y, activation="sigmoid")
    got_counts = [counts.prediction[0], counts.target[0], counts.intersection[0]]
    np.testing.assert_allclose(got_counts, [1.0, 2.0, 0.4], rtol=1e-14)


def test_seed001_other_scores() -> None:
    """The same example through the other formulas.

    FP = sum p (1 - g) = 0.3 + 0.3 = 0.6, FN = sum (1 - p) g = 0.8 + 0.8 = 1.6.
    squared Dice: sum p^2 = 0.09 + 0.04 + 0.09 + 0.04 = 0.26, sum g^2 = 2,
        loss = 1 - 0.8 / 2.26 = 1.46 / 2.26 = 73/113.
    Jaccard: 0.4 / (0.4 + 0.6 + 1.6) = 0.4 / 2.6, loss = 2.2 / 2.6 = 11/13.
    Tversky(0.3, 0.7): 0.4 / (0.4 + 0.18 + 1.12) = 0.4 / 1.7, loss = 1.3 / 1.7 = 13/17.
    Dice smoothed by 1: 1 - (0.8 + 1) / (3 + 1) = 0.55.
    """
    x, y = seed001_case()
    kw = {"activation": "sigmoid"}
    expected = {
        "squared": (ref.soft_dice_loss(x, y, form="squared", **kw), 73 / 113),
        "jaccard": (ref.soft_jaccard_loss(x, y, **kw), 11 / 13),
        "tversky": (ref.tversky_loss(x, y, 0.3, 0.7, **kw), 13 / 17),
        "smoothed": (ref.soft_dice_loss(x, y, smooth=1.0, **kw), 0.55),
    }
    for name, (got, want) in expected.items():
        assert float(got) == pytest.approx(want, rel=1e-14), name


def test_lovasz_hinge_by_hand() -> None:
    """x = [2, -1, 0.5, -0.5], y = [1, 0, 0, 1]: s = [1, -1, -1, 1],
    m = 1 - x s = [-1, 0, 1.5, 1.5]. Decreasing: pixels 3 (g=1) and 2 (g=0) tie at 1.5,
    then pixel 1 (0), pixel 0 (-1). With pixel 3 first, g sorted = [1, 0, 0, 1], sum g = 2:
    U = [2, 3, 4, 4], I = [1, 1, 1, 0], J = [1/2, 2/3, 3/4, 1], grad = [1/2, 1/6, 1/12, 1/4];
    loss = 1.5 (1/2 + 1/6) + 0 + 0 = 1. As a set function: relu(m) = 1.5 on {2, 3}, and
    Delta_J({2, 3}) = |{2, 3}| / |{0, 3} u {2, 3}| = 2/3, times 1.5 = 1."""
    x, y = hinge_case([2.0, -1.0, 0.5, -0.5], [1, 0, 0, 1])
    assert float(ref.lovasz_hinge(x, y)) == pytest.approx(1.0, rel=1e-15)
    # the pixels in reverse order: the same sorted sequence, so the same float
    assert ref.lovasz_hinge(x[:, ::-1], y[:, ::-1]) == ref.lovasz_hinge(x, y)
    np.testing.assert_array_equal(
        seg.lovasz_grad(np.array([1.0, 0.0, 0.0, 1.0])), [1 / 2, 1 / 6, 1 / 12, 1 / 4]
    )


def test_lovasz_softmax_by_hand() -> None:
    """Two classes, logits [0, log 3], [0, -log 3], [0, 0]: p_1 = [3/4, 1/4, 1/2]; y = [1, 0, 0].
    Class 1: fg = {0}, errors |fg - p_1| = [1/4, 1/4, 1/2]. Decreasing: pixel 2 (bg), then
    pixels 0 (fg) and 1 (bg) tied at 1/4. Delta_J: {2} -> 1/2, {2, 0} -> 2/2, {2, 0, 1} -> 1;
    loss_1 = 1/2 * 1/2 + 1/4 * 1/2 + 1/4 * 0 = 3/8 (the other tie order:
    {2, 1} -> 2/3, then 1: 1/4 + 1/4 (1/6) + 1/4 (1/3) = 3/8).
    Class 0: p_0 = 1 - p_1 gives the same errors, fg = {1, 2}: {2} -> 1/2, {2, 1} -> 1,
    {2, 1, 0} -> 1; loss_0 = 3/8. Both present: mean 3/8."""
    log3 = np.log(3.0)
    x = np.array([[[0.0, 0.0, 0.0], [log3, -log3, 0.0]]])
    y = np.array([[1, 0, 0]])
    assert float(ref.lovasz_softmax(x, y)) == pytest.approx(3 / 8, rel=1e-15)
    assert float(ref.lovasz_softmax(x, y, classes=[1])) == pytest.approx(3 / 8, rel=1e-15)


def test_dice_ce_by_hand() -> None:
    """Logits 0 everywhere over C = 2 classes: p = 1/2, CE = log 2 per pixel; labels [0, 1]:
    per class I = 1/2, P = 1, G = 1, Dice = 1/2, loss 1/2. lambda 2 and 3:
    2 * 1/2 + 3 log 2."""
    x = np.zeros((1, 2, 2))
    y = np.array([[0, 1]])
    got = ref.dice_ce_loss(x, y, 2.0, 3.0)
    assert float(got) == pytest.approx(1 + 3 * np.log(2), rel=1e-15)


# ---------------------------------------------------------------------------
# misuse


X = np.zeros((2, 3, 4))
Y = np.zeros((2, 4), dtype=np.int64)

MISUSE: list[tuple[str, Callable[[], object]]] = [
    ("input without class axis", lambda: ref.soft_dice_loss(np.zeros(4), np.zeros(4))),
    ("label map shape", lambda: ref.soft_dice_loss(X, np.zeros((2, 5), dtype=np.int64))),
    ("mask shape", lambda: ref.soft_jaccard_loss(X, np.zeros((2, 3, 5)))),
    ("label out of range", lambda: ref.soft_dice_loss(X, Y + 3)),
    ("negative label", lambda: ref.tversky_loss(X, Y - 1)),
    ("ignore_index on a mask", lambda: ref.soft_dice_loss(X, np.zeros(X.shape), ignore_index=0)),
    ("mask above 1", lambda: ref.soft_dice_loss(X, np.full(X.shape, 1.5))),
    ("mask nan", lambda: ref.soft_dice_loss(X, np.full(X.shape, np.nan))),
    ("string target", lambda: ref.soft_dice_loss(X, np.full((2, 4), "a"))),
    ("reduction", lambda: ref.soft_dice_loss(X, Y, reduction="avg")),
    ("activation", lambda: ref.soft_jaccard_loss(X, Y, activation="relu")),
    ("form", lambda: ref.soft_dice_loss(X, Y, form="cubed")),
    ("classes string", lambda: ref.soft_dice_loss(X, Y, classes="some")),
    ("class id", lambda: ref.soft_dice_loss(X, Y, classes=[0, 3])),
    ("class id float", lambda: ref.soft_dice_loss(X, Y, classes=[0.5])),
    ("negative smooth", lambda: ref.soft_dice_loss(X, Y, smooth=-1.0)),
    ("negative alpha", lambda: ref.tversky_loss(X, Y, alpha=-0.1)),
    ("kept_entries classes", lambda: seg.kept_entries(X, Y, classes="most")),
    ("dice_ce mask", lambda: ref.dice_ce_loss(X, np.zeros(X.shape))),
    ("dice_ce label", lambda: ref.dice_ce_loss(X, Y + 5)),
    ("lovasz_grad range", lambda: seg.lovasz_grad(np.array([0.0, 2.0]))),
    ("lovasz_grad 0-d", lambda: seg.lovasz_grad(np.array(1.0))),
    ("hinge target", lambda: ref.lovasz_hinge(np.zeros((1, 3)), np.array([[0, 1, 2]]))),
    ("hinge shape", lambda: ref.lovasz_hinge(np.zeros((1, 3)), np.zeros((1, 4)))),
    ("hinge 0-d", lambda: ref.lovasz_hinge(np.array(1.0), np.array(1))),
    ("softmax label", lambda: ref.lovasz_softmax(X, Y + 3)),
    ("softmax shape", lambda: ref.lovasz_softmax(X, np.zeros((2, 3), dtype=np.int64))),
    ("softmax float target", lambda: ref.lovasz_softmax(X, np.zeros((2, 4)))),
    ("softmax classes", lambda: ref.lovasz_softmax(X, Y, classes="most")),
    ("softmax class id", lambda: ref.lovasz_softmax(X, Y, classes=[5])),
    ("jaccard pred range", lambda: ref.jaccard_index(Y + 3, Y, 3)),
    ("jaccard shape", lambda: ref.jaccard_index(Y, np.zeros((2, 5), dtype=np.int64), 3)),
    ("jaccard float pred", lambda: ref.jaccard_index(np.zeros((2, 4)), Y, 3)),
    ("jaccard classes", lambda: ref.jaccard_index(Y, Y, 0)),
    ("one_hot range", lambda: seg.one_hot(Y + 3, 3)),
]


@pytest.mark.parametrize("call", [c for _, c in MISUSE], ids=[n for n, _ in MISUSE])
def test_misuse_raises_value_error(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()


def test_reference_does_not_import_torch() -> None:
    code = "import sys, reference.segmentation; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("per_image", [True, False])
def test_long_runs_of_ties_give_one_float(per_image: bool) -> None:
    """60 pixels, foreground and background, all with the hinge error 1 - 0.9 and then all
    with 1 + 0.9: summing their grads in different orders would round differently, so this
    checks that the sort order is a function of the values alone."""
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, size=(2, 60))
    x = np.where(y == 1, 0.9, -0.9)
    x[:, ::2] *= -1  # half the pixels wrong: a second tied run, with error 1.9
    results = set()
    for _ in range(20):
        perm = rng.permutation(60)
        results.add(float(ref.lovasz_hinge(x[:, perm], y[:, perm], per_image=per_image)))
    assert len(results) == 1
    assert results.pop() == pytest.approx(float(exact_hinge(x, y, per_image, None)), rel=1e-14)


def test_random_tie_orders_of_the_definition_agree_with_reference() -> None:
    """Many shuffles of one image with heavy ties: the reference is the same float every
    time, and equals the exact extension."""
    rng = random.Random(7)
    x = [1.0, 1.0, -1.0, 0.0, 0.0, 1.0, -1.0]
    y = [1, 0, 0, 1, 0, 1, 1]
    want = exact_hinge(*hinge_case(x, y), True, None)
    results = set()
    for _ in range(20):
        order = list(range(7))
        rng.shuffle(order)
        xs, ys = hinge_case([x[i] for i in order], [y[i] for i in order])
        results.add(float(ref.lovasz_hinge(xs, ys)))
    assert results == {float(want)}
