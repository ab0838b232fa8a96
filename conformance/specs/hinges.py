"""Hinge losses on class scores: the multi-class and the multi-label margin losses.

Both have torch.nn.functional's calls. Scores are (N, C), or one sample (C,). A sample's loss
is a sum of hinges max(0, m - x[j] + x[i]) over the pairs of a listed class j (the target
class; the multi-label target's listed classes) and a class i that is not listed, over C.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from conformance import domains as dom
from conformance.case import Case
from conformance.elements import Integers, Uniform, Values
from conformance.empty import no_samples
from conformance.invalid import batch_of_one, label_out_of_range, weight_too_long
from conformance.properties.relation import Relation, reference, target
from conformance.spec import Family, LossSpec
from conformance.specs.common import (
    GENERIC,
    choice,
    maybe,
    near_a_kink,
    number,
    overflow_only,
    params,
)
from conformance.specs.transforms import LOGIT_SHIFT_INVARIANCE
from conformance.variants import Variant
from reference import ranking as ref

# The specs this family declares, read by conformance.catalog.
SPECS = Family()

# Offsets of a score from the first class's: differences of scores land on the margins (1,
# the default) exactly, near them, or anywhere.
OFFSETS = Uniform(-3.0, 3.0) | Values((0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0))


@dataclass(frozen=True)
class Hinges:
    """A case's hinges as (N, S, C) arrays: z[n, s, i] = margin - x[n, listed[n, s]] + x[n, i],
    counted where the pair enters the loss; each sample's class weight w (N,)."""

    x: np.ndarray  # (N, C)
    listed: np.ndarray  # (N, S) class indices (any value where not counted)
    counted: np.ndarray  # (N, S, C)
    margin: float
    weight: np.ndarray  # (N,)

    @property
    def own(self) -> np.ndarray:
        return np.take_along_axis(self.x, self.listed, axis=1)[:, :, None]

    @property
    def z(self) -> np.ndarray:
        return self.margin - self.own + self.x[:, None, :]

    def listed_classes(self, n: int) -> np.ndarray:
        """Sample n's classes that some counted hinge is listed for (its target class, or its
        listed labels with a class not listed against them)."""
        return np.unique(self.listed[n][np.any(self.counted[n], axis=1)])

    @property
    def sizes(self) -> np.ndarray:
        """The terms each hinge's argument sums, |m| + |x[j]| + |x[i]|: its rounding scale."""
        return abs(self.margin) + np.abs(self.own) + np.abs(self.x[:, None, :])


def _rows(x: np.ndarray) -> np.ndarray:
    return x.reshape(-1, x.shape[-1])


def _multi_class_hinges(case: Case) -> Hinges:
    x = _rows(case.inputs["input"])
    y = np.asarray(case.inputs["target"]).reshape(-1)
    counted = np.ones((x.shape[0], 1, x.shape[1]), dtype=bool)
    counted[np.arange(x.shape[0]), 0, y] = False
    weight = case.params.get("weight")
    weight = np.ones(x.shape[1]) if weight is None else np.asarray(weight, dtype=float)
    return Hinges(x, y[:, None], counted, case.params.get("margin", 1.0), weight[y])


def _multi_label_hinges(case: Case) -> Hinges:
    x = _rows(case.inputs["input"])
    y = _rows(np.asarray(case.inputs["target"]))
    listed = np.cumsum(y == -1, axis=1) == 0  # the prefix before a row's first -1
    classes = np.where(listed, y, 0)
    is_target = np.zeros(x.shape, dtype=bool)
    for s in range(y.shape[1]):
        is_target[np.arange(x.shape[0]), classes[:, s]] |= listed[:, s]
    counted = listed[:, :, None] & ~is_target[:, None, :]
    return Hinges(x, classes, counted, 1.0, np.ones(x.shape[0]))


def _hinge_magnitude(hinges_of: Callable[[Case], Hinges]) -> Callable:
    """|loss| plus each counted hinge's argument's rounding scale times its slope, over C:
    w for p = 1, 2 |z| w max(1, w) for p = 2 (the weight inside the square or out)."""

    def magnitude(case: Case, loss: np.ndarray) -> np.ndarray:
        h = hinges_of(case)
        w = np.abs(h.weight)[:, None, None]
        slope = w if case.params.get("p", 1) == 1 else 2 * np.abs(h.z) * w * np.maximum(w, 1)
        spread = np.sum(np.where(h.counted, slope * h.sizes, 0.0), axis=(1, 2))
        return np.abs(loss) + (spread / h.x.shape[1]).reshape(np.shape(loss))

    return magnitude


def _hinge_intermediates(hinges_of: Callable[[Case], Hinges]) -> Callable:
    """Each counted hinge w max(0, z)^p and each sample's sum of them, before the division by
    C: past a dtype's range they overflow though the loss fits (float16: 36 hinges of 2e4)."""

    def intermediates(case: Case) -> np.ndarray:
        h = hinges_of(case)
        p = case.params.get("p", 1)
        w = np.abs(h.weight)[:, None, None] * np.maximum(np.abs(h.weight)[:, None, None], 1)
        terms = np.where(h.counted, w * np.maximum(h.z, 0.0) ** p, 0.0)
        return overflow_only(np.concatenate([terms.reshape(-1), terms.sum(axis=(1, 2))]))

    return intermediates


def _off_the_kinks(hinges_of: Callable[[Case], Hinges]) -> Callable[[Case], Case]:
    """Moves every listed class's score of a sample by one amount s, chosen so that no counted
    hinge's argument is nonzero yet closer to 0 than a dtype resolves (`near_a_kink`): each
    argument moves by -s, so the pairs stay as they were relative to each other. Exact kinks
    stay where no move is needed (the spec's subgradient interval applies there)."""

    def domain(case: Case) -> Case:
        h = hinges_of(case)
        near, band = near_a_kink(h.z, h.margin, h.own, h.x[:, None, :])
        rows = np.flatnonzero(np.any(near & h.counted, axis=(1, 2)))
        if not rows.size:
            return case
        x = h.x.copy()
        for n in rows:
            step = 2.5 * float(np.max(band[n]))
            for k in (1, -1, 2, -2, 3, -3, 4, -4, 6, -6, 8, -8, 12, -12, 16, -16, 24, -24):
                s = k * step
                z = h.z[n] - s
                near_n, _ = near_a_kink(z, h.margin, h.own[n] + s, h.x[n][None, :])
                if not np.any(near_n & h.counted[n]):
                    x[n, h.listed_classes(n)] += s
                    break
        return case.with_inputs(input=x.reshape(case.inputs["input"].shape))

    return domain


def _each_sample(case: Case, name: str) -> tuple[int, ...]:
    """A sample's loss reads its own C scores."""
    return (dom.class_axis(case.inputs[name].shape),)


def _every_margin_met(hinges_of: Callable[[Case], Hinges]) -> Callable[[Case], Case]:
    """Every listed class's score set 2 + |margin| above the sample's highest score."""

    def adapt(case: Case) -> Case:
        h = hinges_of(case)
        x = h.x.copy()
        lead = np.max(x, axis=1) + 2.0 + abs(h.margin)
        for n in range(x.shape[0]):
            x[n, h.listed_classes(n)] = lead[n]
        return case.with_inputs(input=x.reshape(case.inputs["input"].shape))

    return adapt


def _no_loss(input: np.ndarray, *_: object, reduction: str = "mean", **__: object) -> np.ndarray:
    """0 for every sample ((N,), 0-d for one (C,) sample), or 0 once reduced."""
    return np.zeros(np.shape(input)[:-1] if reduction == "none" else ())


def _zero_when_met(hinges_of: Callable[[Case], Hinges], what: str) -> Relation:
    return Relation(
        name="zero_when_every_margin_is_met",
        description=f"loss == 0 when {what} by more than the margin",
        lhs=target(label="loss(x with the margins met)"),
        rhs=reference(_no_loss, label="0"),
        adapt=_every_margin_met(hinges_of),
    )


@st.composite
def _scores(draw: st.DrawFn) -> np.ndarray:
    """(N, C) or (C,) scores; about half are the first class's score plus an offset."""
    classes = draw(st.integers(1, 6))
    batch = draw(st.sampled_from((0, 1, 2, 4)))  # 0: one sample, (C,)
    shape = (batch, classes) if batch else (classes,)
    x = draw(dom.array(shape, dom.logits()))
    offsets = draw(dom.array(shape, OFFSETS))
    near = draw(dom.array(shape, dom.booleans(), np.bool_))
    return np.where(near, x[..., :1] + offsets, x)


# --------------------------------------------------------------------------- multi-class


@st.composite
def _multi_class_cases(draw: st.DrawFn) -> Case:
    x = draw(_scores())
    classes = x.shape[-1]
    y = draw(dom.array(x.shape[:-1], Integers(0, classes - 1), np.int64))
    weight = draw(maybe(dom.array((classes,), dom.positive_weights())))
    return Case({"input": x, "target": y}, params(
        p=draw(maybe(choice(1, 2))), margin=draw(maybe(number((1.0, 0.0, 0.5, 2.0), -1.0, 5.0))),
        weight=weight))


SPECS.declare(LossSpec(
    name="multi_margin_loss",
    empty=(no_samples(min_ndim=2),),
    invalid=(label_out_of_range(), weight_too_long(), batch_of_one("target")),
    separable=_each_sample,
    family="classification",
    summary="multi-class hinge: the target class should score a margin above every other",
    signature=("multi_margin_loss(input, target, p=1, margin=1.0, weight=None,"
               " reduction='mean')"),
    reference=ref.multi_margin_loss,
    cases=_multi_class_cases,
    magnitude=_hinge_magnitude(_multi_class_hinges),
    intermediates=_hinge_intermediates(_multi_class_hinges),
    gradient_domain=_off_the_kinks(_multi_class_hinges),
    properties=(
        *GENERIC,
        LOGIT_SHIFT_INVARIANCE,
        _zero_when_met(_multi_class_hinges, "the target class leads every other class"),
    ),
    edge_cases=(
        Case({"input": np.array([[0.0, 1.0, 0.5], [2.0, 1.0, 3.0]]), "target": np.array([1, 2])},
             label="scores exactly a margin below the target's (hinges at their kink)"),
        Case({"input": np.array([[0.1, 0.2, 0.4, 0.8]]), "target": np.array([3])},
             {"p": 2, "weight": np.array([1.0, 2.0, 3.0, 4.0])},
             label="p = 2 with class weights: torch weighs the squared hinge (0.61), its"
                   " documentation squares the weighted one (2.44)"),
        Case({"input": np.array([[2.0], [-1.0]]), "target": np.array([0, 0])},
             label="one class: no other class to beat, loss 0"),
    ),
    implementations=("torch.nn.functional:multi_margin_loss",),
    variants=(Variant("weight_placement", "outside", {
        "outside": "w[y] max(0, margin - x[y] + x[i])^p (torch's kernels)",
        "inside": "max(0, w[y] (margin - x[y] + x[i]))^p (torch's documentation): differs for"
                  " p = 2 and for a negative weight"}),),
    conventions=("l_n = (1/C) sum over i != y_n of w[y_n] max(0, margin - x[y_n] + x[i])^p,"
                 " p in {1, 2}: the target class is left out of the sum but not out of C;"
                 " 'none' is (N,), 0-d for one (C,) sample; mean = sum / N (NaN over a batch"
                 " of 0). At a hinge's kink any derivative between the one-sided ones."),
))


# --------------------------------------------------------------------------- multi-label


@st.composite
def _multi_label_cases(draw: st.DrawFn) -> Case:
    """Targets list distinct classes from the front, then -1, then anything: a repeat of a
    listed class, another -1, an index. Sometimes no class (a leading -1), sometimes all."""
    x = draw(_scores())
    rows, classes = _rows(x).shape
    y = np.empty((rows, classes), dtype=np.int64)
    for n in range(rows):
        order = draw(st.permutations(range(classes)))
        count = draw(st.integers(0, classes))
        tail = draw(st.lists(st.integers(-1, classes - 1), min_size=classes, max_size=classes))
        y[n] = list(order[:count]) + [-1, *tail][:classes - count]
    if draw(st.booleans()) and classes >= 2 and y[0, 0] >= 0:
        y[0, 1] = y[0, 0]  # a class listed twice (or the tail's first entry a repeat)
    return Case({"input": x, "target": y.reshape(x.shape)})


SPECS.declare(LossSpec(
    name="multilabel_margin_loss",
    empty=(no_samples(min_ndim=2),),
    invalid=(label_out_of_range(), batch_of_one("target", min_ndim=2)),
    separable=_each_sample,
    family="classification",
    summary="multi-label hinge: each listed class should score 1 above every class not listed",
    signature="multilabel_margin_loss(input, target, reduction='mean')",
    reference=ref.multilabel_margin_loss,
    cases=_multi_label_cases,
    magnitude=_hinge_magnitude(_multi_label_hinges),
    intermediates=_hinge_intermediates(_multi_label_hinges),
    gradient_domain=_off_the_kinks(_multi_label_hinges),
    properties=(
        *GENERIC,
        LOGIT_SHIFT_INVARIANCE,
        _zero_when_met(_multi_label_hinges, "every listed class leads every class not listed"),
    ),
    edge_cases=(
        Case({"input": np.array([[0.1, 0.2, 0.4, 0.8]]), "target": np.array([[3, 0, -1, 1]])},
             label="classes listed up to the first -1, the rest ignored (loss 0.85)"),
        Case({"input": np.array([[0.1, 0.2], [0.3, 0.4]]), "target": np.array([[-1, 0], [0, 1]])},
             label="no class listed, and every class listed (loss 0 both)"),
        Case({"input": np.array([0.1, 0.2, 0.4, 0.8]), "target": np.array([3, 3, -1, 1])},
             label="one (C,) sample listing a class twice: it counts twice (0.65)"),
    ),
    implementations=("torch.nn.functional:multilabel_margin_loss",),
    conventions=("target lists class indices from the front up to the first -1; l_n = (1/C)"
                 " sum over listed j and classes i not listed of max(0, 1 - x[y_j] + x[i]);"
                 " a class listed twice counts twice; 'none' is (N,), 0-d for one (C,) sample;"
                 " mean = sum / N (NaN over a batch of 0). At a hinge's kink"
                 " any derivative between the one-sided ones."),
))
