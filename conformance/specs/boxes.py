"""Bounding-box losses and metrics, (x1, y1, x2, y2) boxes, torchvision.ops' calls.

Edge regimes and what the specs say for each:
- identical boxes, a box inside another, shared centres, touching and distant boxes: finite
  values in every loss (eps keeps the denominators positive);
- zero-area boxes: finite in the eps losses (IoU = 0 / (0 + eps) = 0). At eps = 0 a pair whose
  union is empty (two zero-area boxes) has IoU = 0 / 0: no value is owed, the pair is outside
  the losses' domain (libraries return NaN, 0 or 1 there). The pairwise metrics have no eps:
  two empty boxes give 0 / 0 = NaN, a declared NaN;
- CIoU's aspect term atan(w / h) needs positive width and height: its domain keeps every box,
  as the target sees it (rounded to the tested dtype), at positive sides. At eps = 0 its alpha
  = v / (1 - IoU + v) is 0 / 0 for identical boxes (a declared NaN) and is no better than
  rounding noise for boxes whose 1 - IoU + v is within the dtype's rule of 0 (nearly identical
  boxes): those pairs are outside its domain at eps = 0;
- every domain is judged on the case as the target sees it, after rounding to the tested
  dtype: a box that bfloat16 rounds to zero width is a zero-width box;
- scale invariance and "identical boxes give 0" hold for eps = 0 only, so those relations pass
  eps=0.0 explicitly: an implementation that ignores its eps argument or hides a larger
  constant is what they catch, at scales from 2^-10 to 2^13. At the drawn eps, the target's
  default included, an absolute eps makes the loss depend on the coordinates' unit (boxes of
  side 1e-3 have areas of 1e-6, of which eps = 1e-7 is a tenth): the loss may change with the
  unit by as much as the spec's does and no more. Translation changes nothing at any eps;
- degenerate boxes (zero width, zero height, a point) are drawn: the eps losses owe their
  finite values, CIoU's domain leaves them out (atan(w / h)).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from conformance import domains as dom
from conformance.case import Case
from conformance.elements import Integers, Law, Power10, Uniform
from conformance.empty import no_boxes
from conformance.guard import OutsideDomain, PropertyFailure, gradient
from conformance.invalid import inverted_box
from conformance.properties.base import Context, Property
from conformance.properties.relation import Relation, reference, target
from conformance.spec import Family, LossSpec, each_box
from conformance.specs.common import GENERIC, choice, maybe, params, zero_loss
from conformance.tolerance import DEFAULT_RULE
from reference import boxes as ref
from reference.reduction import reduce

# The specs this family declares, read by conformance.catalog.
SPECS = Family()

MIN_SIDE = 1e-3
REGIMES = ("overlap", "identical", "inside", "shared_centre", "touching", "distant", "random")


SIDES = Uniform(0.1, 10.0) | Power10(-3.0, 4.0)
COORDINATES = Uniform(-20.0, 20.0) | Power10(-3.0, 4.0, signed=True)


@st.composite
def _boxes(draw: st.DrawFn, allow_empty: bool, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n pairs (A, B), each pair in one of REGIMES; every quantity is drawn for all n pairs at
    once (conformance.elements)."""

    def many(law: Law) -> np.ndarray:
        return draw(dom.array((n,), law))

    cx, cy, w, h = many(COORDINATES), many(COORDINATES), many(SIDES), many(SIDES)
    if allow_empty:  # now and then a box of zero width, of zero height, or a point
        degenerate = many(Integers(0, 14))
        w = np.where((degenerate == 14) | (degenerate == 12), 0.0, w)
        h = np.where((degenerate == 13) | (degenerate == 12), 0.0, h)
    a = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)
    regime = many(Integers(0, len(REGIMES) - 1)).astype(int)
    k, gap = many(Uniform(1.0, 4.0)), many(Uniform(1.0, 1e4))
    fx, fy = many(Uniform(-1.0, 1.0)), many(Uniform(-1.0, 1.0))
    cx2, cy2, w2, h2 = many(COORDINATES), many(COORDINATES), many(SIDES), many(SIDES)
    x1, y1, x2, y2 = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
    b_of = {
        "overlap": [x1 + fx * w, y1 + fy * h, x2 + fx * w, y2 + fy * h],
        "identical": [x1, y1, x2, y2],
        "inside": [cx - k * w / 2, cy - k * h / 2, cx + k * w / 2, cy + k * h / 2],
        "shared_centre": [cx - w2 / 2, cy - h2 / 2, cx + w2 / 2, cy + h2 / 2],
        "touching": [x2, y1, x2 + w2, y1 + h2],
        "distant": [x2 + gap, y2 + gap, x2 + gap + w, y2 + gap + h],
        "random": [cx2 - w2 / 2, cy2 - h2 / 2, cx2 + w2 / 2, cy2 + h2 / 2],
    }
    every = np.stack([np.stack(b_of[name], axis=-1) for name in REGIMES])  # (regimes, n, 4)
    return a, every[regime, np.arange(n)]


@st.composite
def _loss_cases(draw: st.DrawFn, allow_empty: bool = True) -> Case:
    n = draw(st.integers(1, 5))
    b1, b2 = draw(_boxes(allow_empty, n))
    if draw(st.booleans()):
        b1, b2 = b2, b1
    if n == 1 and draw(st.booleans()):
        b1, b2 = b1[0], b2[0]  # a single (4,) pair
    eps = draw(maybe(choice(1e-7, 0.0, 1e-3)))
    return Case({"boxes1": b1, "boxes2": b2}, params(eps=eps))


def _box_magnitude(case: Case, loss: np.ndarray) -> np.ndarray:
    """|loss| + 4 + 4 max|coordinate| / min side: a coordinate rounded at its magnitude moves
    the overlap of a small box by that much (relations compare rounded, transformed boxes)."""
    b = np.stack([case.inputs["boxes1"], case.inputs["boxes2"]])
    coords = np.max(np.abs(b), axis=(0, -1))
    sides = np.concatenate([b[..., 2:] - b[..., :2]], axis=-1)
    smallest = np.maximum(np.min(sides, axis=(0, -1)), MIN_SIDE)
    return np.abs(loss) + 4.0 + 4.0 * coords / smallest


def _widen(b: np.ndarray) -> np.ndarray:
    b = b.copy()
    b[..., 2] = np.maximum(b[..., 2], b[..., 0] + MIN_SIDE)
    b[..., 3] = np.maximum(b[..., 3], b[..., 1] + MIN_SIDE)
    return b


def _without_empty_boxes(case: Case) -> Case:
    """Zero-width boxes widened to the smallest side: the gradient property's domain (at zero
    width the loss is non-smooth along directions a one-coordinate slice does not see)."""
    return case.with_inputs(boxes1=_widen(case.inputs["boxes1"]),
                            boxes2=_widen(case.inputs["boxes2"]))


def _positive_area(case: Case) -> Case:
    """Widen zero-width boxes to the smallest side, and set eps = 0."""
    return _without_empty_boxes(case).with_params(eps=0.0)


def _at_a_positive_eps(case: Case) -> Case | None:
    """The drawn case with its zero-width boxes widened, unless it sets eps = 0, which
    scale_invariant checks without the spec's allowance."""
    return None if case.params.get("eps") == 0 else _without_empty_boxes(case)


def _swap(case: Case) -> Case:
    return case.with_inputs(boxes1=case.inputs["boxes2"], boxes2=case.inputs["boxes1"])


def _scaled(factor: float):
    def apply(case: Case) -> Case:
        return case.with_inputs(boxes1=case.inputs["boxes1"] * factor,
                                boxes2=case.inputs["boxes2"] * factor)

    return apply


def _translated(case: Case) -> Case:
    shift = np.array([96.0, -40.0, 96.0, -40.0])
    return case.with_inputs(boxes1=case.inputs["boxes1"] + shift,
                            boxes2=case.inputs["boxes2"] + shift)


def _second_contains_first(case: Case) -> Case:
    b1, b2 = case.inputs["boxes1"], case.inputs["boxes2"]
    outer = np.concatenate([np.minimum(b1[..., :2], b2[..., :2]),
                            np.maximum(b1[..., 2:], b2[..., 2:])], axis=-1)
    return case.with_inputs(boxes2=outer)


SYMMETRIC = Relation(
    name="symmetric_in_the_two_boxes",
    description="loss(a, b) == loss(b, a)",
    lhs=target(_swap, label="loss(b, a)"), rhs=target(label="loss(a, b)"),
)
SCALE_INVARIANT = Relation(
    name="scale_invariant",
    description="with eps=0, scaling both boxes by 2^-10 or by 2^13 gives the same loss",
    lhs=target(_scaled(2.0**-10), label="loss(a / 1024, b / 1024)"),
    rhs=target(_scaled(2.0**13), label="loss(8192 a, 8192 b)"),
    adapt=_positive_area,
)
UNIT_DEPENDENCE_AT_MOST_THE_SPECS = Relation(
    name="unit_dependence_at_most_the_specs",
    description=("at a positive drawn eps (the target's default where omitted), scaling both"
                 " boxes by 2^-10 or by 2^13 changes the loss by no more than it changes the"
                 " spec's: an absolute eps makes a box loss depend on the coordinates' unit, by"
                 " as much as the spec declares and no more (eps elsewhere, a larger default,"
                 " +1 pixel widths fail)"),
    lhs=target(_scaled(2.0**-10), label="loss(a / 1024, b / 1024)"),
    rhs=target(_scaled(2.0**13), label="loss(8192 a, 8192 b)"),
    adapt=_at_a_positive_eps,
    up_to_the_spec=True,
)
TRANSLATION_INVARIANT = Relation(
    name="translation_invariant",
    description=("at the drawn eps (the target's default where omitted), translating both boxes"
                 " by the same offset leaves the loss unchanged (up to what rounding the"
                 " translated coordinates changes in the spec's own value)"),
    lhs=target(_translated, label="loss(a + t, b + t)"), rhs=target(label="loss(a, b)"),
    adapt=_without_empty_boxes,
    up_to_the_spec=True,
)
def _zero_per_pair(boxes1: np.ndarray, boxes2: np.ndarray, reduction: str = "none",
                   **_: object) -> np.ndarray:
    return zero_loss(np.zeros(np.shape(boxes1)[:-1]), reduction=reduction)


IDENTICAL_IS_ZERO = Relation(
    name="identical_boxes_give_zero",
    description="with eps=0, loss(a, a) == 0",
    lhs=target(label="loss(a, a)"), rhs=reference(_zero_per_pair, label="0"),
    adapt=lambda c: _positive_area(c).with_inputs(boxes2=_positive_area(c).inputs["boxes1"]),
)


def _separated(case: Case) -> Case:
    """Move boxes2 to the right of and above boxes1 (gap of half a side): disjoint, finite."""
    b1, b2 = _positive_area(case).inputs["boxes1"], _positive_area(case).inputs["boxes2"]
    w2, h2 = b2[..., 2] - b2[..., 0], b2[..., 3] - b2[..., 1]
    x0 = b1[..., 2] + (b1[..., 2] - b1[..., 0]) / 2
    y0 = b1[..., 3] + (b1[..., 3] - b1[..., 1]) / 2
    return case.with_inputs(boxes1=b1, boxes2=np.stack([x0, y0, x0 + w2, y0 + h2], axis=-1))


RESOLUTION = ("no pair is disjoint once rounded, with centres far enough apart for the dtype"
              " to tell (64 of its ulps at the coordinates' size)")


def _resolved_apart(b1: np.ndarray, b2: np.ndarray, offset: np.ndarray,
                    dtype: torch.dtype) -> np.ndarray:
    """The pairs this property judges, on the rounded case: still disjoint (moved apart by
    half a side in float64, a box one ulp wide at x = 8260 touches its neighbour once rounded
    to float32), and with centres at least 64 ulps of the coordinates' size apart. Closer
    centres round to the same value in the dtype ((x1 + x2) / 2 of a one-ulp box), and no
    correct computation there can say which way the boxes lie."""
    apart = (b2[..., 0] > b1[..., 2]) & (b2[..., 1] > b1[..., 3])
    size = np.maximum(np.max(np.abs(b1), axis=-1), np.max(np.abs(b2), axis=-1))
    ulp = torch.finfo(dtype).eps * np.maximum(size, torch.finfo(dtype).tiny)
    return apart & (np.hypot(offset[..., 0], offset[..., 1]) >= 64 * ulp)


class DisjointGradientPullsTogether(Property):
    name = "disjoint_gradient_pulls_boxes_together"
    description = ("for disjoint boxes IoU's gradient is 0, but this loss's gradient must still"
                   " move boxes1 toward boxes2: the derivative along the centre offset is < 0")

    def prepare(self, spec, case: Case) -> Case:
        return _separated(case).with_params(eps=1e-7)

    def check(self, ctx: Context, case: Case) -> float:
        b1, b2 = case.inputs["boxes1"], case.inputs["boxes2"]
        offset = (b2[..., :2] + b2[..., 2:] - b1[..., :2] - b1[..., 2:]) / 2
        judged = _resolved_apart(b1, b2, offset, ctx.dtype)
        if not np.any(judged):
            raise OutsideDomain(RESOLUTION)
        loss, args, _ = ctx.target(case, ctx.dtype, ctx.device, grad_inputs=("boxes1",),
                                   reduction="sum")
        grad = gradient(loss, args[0], ctx.target.timeout)
        direction = np.concatenate([offset, offset], axis=-1)  # translate the whole box
        g = grad.detach().to("cpu", torch.float64).numpy()
        slope = np.sum(g * direction, axis=-1)
        bad = judged & (~np.isfinite(slope) | (slope >= 0))
        if np.any(bad):
            i = tuple(int(k) for k in np.argwhere(np.atleast_1d(bad))[0])
            raise PropertyFailure(
                f"for disjoint boxes the gradient does not pull boxes1 toward boxes2: the"
                f" derivative along the centre offset is {np.atleast_1d(slope)[i]!r} at pair"
                f" {i} (must be < 0)", reduction="sum")
        return 0.0


PULLS_TOGETHER = DisjointGradientPullsTogether()


def _at_least_iou_loss(name: str) -> Relation:
    return Relation(
        name=f"{name}_at_least_iou_loss",
        description=f"the {name} loss adds a non-negative penalty to 1 - IoU",
        lhs=reference(ref.iou_loss, label="1 - IoU"), rhs=target(label=f"{name} loss"), op="le",
    )


def _ciou_nan(case: Case, reduction: str | None) -> bool | np.ndarray:
    """Where CIoU is NaN by torchvision's formula: with eps = 0, identical boxes, whose alpha
    is 0 / 0."""
    b1, b2 = case.inputs["boxes1"], case.inputs["boxes2"]
    nan = np.zeros(np.shape(b1)[:-1], dtype=bool)
    if case.params.get("eps", 1e-7) == 0:
        nan = np.all(b1 == b2, axis=-1)
    return nan if reduction == "none" else bool(np.any(nan))


def _empty_union_at_eps_zero(case: Case, dtype: torch.dtype) -> str | None:
    """The IoU-family losses' domain: at eps = 0, no pair may have an empty union (0 / 0)."""
    if case.params.get("eps", 1e-7) != 0:
        return None
    b1, b2 = case.inputs["boxes1"], case.inputs["boxes2"]
    if np.any((ref.box_area(b1) == 0) & (ref.box_area(b2) == 0)):
        return "at eps = 0, a pair of zero-area boxes has IoU = 0 / 0"
    return None


def _ciou_domain(case: Case, dtype: torch.dtype) -> str | None:
    """CIoU's domain: positive sides (atan(w / h)); at eps = 0, alpha's 1 - IoU + v either 0
    (identical boxes, a declared NaN) or above what the dtype's rule lets it be confused with."""
    b1, b2 = case.inputs["boxes1"], case.inputs["boxes2"]
    sides = np.concatenate([b1[..., 2:] - b1[..., :2], b2[..., 2:] - b2[..., :2]], axis=-1)
    if np.any(sides <= 0):
        return "a box without positive width and height (CIoU's aspect angle atan(w / h))"
    if case.params.get("eps", 1e-7) != 0:
        return None
    with np.errstate(all="ignore"):
        denominator = 1 - ref.box_pair_iou(b1, b2) + _aspect_term(b1, b2)
    noise = DEFAULT_RULE.allowed(_box_magnitude(case, np.zeros(np.shape(denominator))),
                                 dtype, 1)
    identical = np.all(b1 == b2, axis=-1)
    if np.any(~identical & (denominator <= noise)):
        return ("at eps = 0, nearly identical boxes: CIoU's alpha = v / (1 - IoU + v) is"
                " 0 / 0 within the dtype's rounding")
    return None


def _aspect_term(b1: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """CIoU's v = 4/pi^2 (atan(w_gt / h_gt) - atan(w / h))^2 (boxes2 is the ground truth)."""
    w, h = b1[..., 2] - b1[..., 0], b1[..., 3] - b1[..., 1]
    wg, hg = b2[..., 2] - b2[..., 0], b2[..., 3] - b2[..., 1]
    return 4 / np.pi**2 * (np.arctan2(wg, hg) - np.arctan2(w, h)) ** 2


def _ciou_with_frozen_alpha(base: Case):
    """CIoU with alpha held at its value at `base`: torchvision computes alpha under no_grad,
    so the spec's gradient is that of DIoU + alpha * v with alpha a constant."""
    eps = base.params.get("eps", 1e-7)
    b1, b2 = base.inputs["boxes1"], base.inputs["boxes2"]
    v = _aspect_term(b1, b2)
    with np.errstate(all="ignore"):
        alpha = v / (1 - ref.box_pair_iou(b1, b2, eps) + v + eps)

    def loss(case: Case, reduction: str | None) -> np.ndarray:
        p1, p2 = case.inputs["boxes1"], case.inputs["boxes2"]
        values = ref.distance_box_iou_loss(p1, p2, reduction="none", eps=eps)
        return reduce(values + alpha * _aspect_term(p1, p2), reduction or "none")

    return loss


def _box_products(b1: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """Areas of both boxes and of their enclosing box, and its squared diagonal: the products
    of coordinates every IoU-family loss forms, before any ratio brings them back to O(1)."""
    lo = np.minimum(b1[..., :2], b2[..., :2])
    hi = np.maximum(b1[..., 2:], b2[..., 2:])
    parts = [np.prod(b[..., 2:] - b[..., :2], axis=-1) for b in (b1, b2, np.concatenate(
        [lo, hi], axis=-1))]
    parts.append(np.sum((hi - lo) ** 2, axis=-1))
    return np.concatenate([np.ravel(p) for p in parts])


def _paired_products(case: Case) -> np.ndarray:
    return _box_products(case.inputs["boxes1"], case.inputs["boxes2"])


def _pairwise_products(case: Case) -> np.ndarray:
    return _box_products(case.inputs["boxes1"][:, None], case.inputs["boxes2"][None])


# An inverted box has no area: an error or NaN is owed, never a number (the reference raises).
INVERTED = (inverted_box("boxes1"), inverted_box("boxes2"))


def box_loss_spec(name: str, summary: str, reference_fn: Callable, relations: tuple,
                  implementations: tuple[str, ...], conventions: str, *,
                  allow_empty: bool = True, identical_is_zero: bool = True,
                  **fields: Any) -> LossSpec:
    """A loss of paired (..., 4) boxes with torchvision's call `name(boxes1, boxes2,
    reduction='none', eps=1e-7)`: the family's cases (zero-area boxes among them where
    `allow_empty`), error scale, domain, invalid and empty forms and invariants, plus
    `relations`; `identical_is_zero`: whether loss(b, b) == 0 is owed (not for CIoU, NaN
    there at eps = 0). `fields` sets any other LossSpec field, or replaces the family's
    (CIoU's declared NaN, domain and frozen-alpha gradient)."""
    family = dict(
        name=name,
        family="boxes",
        summary=summary,
        signature=f"{name}(boxes1, boxes2, reduction='none', eps=1e-7)",
        reference=reference_fn,
        cases=lambda: _loss_cases(allow_empty),
        magnitude=_box_magnitude,
        intermediates=_paired_products,
        separable=each_box,
        stacks=True,
        differentiable=("boxes1", "boxes2"),
        domain=_empty_union_at_eps_zero,
        gradient_domain=_without_empty_boxes,
        invalid=INVERTED,
        empty=(no_boxes("boxes1", "boxes2"),),
        properties=(*GENERIC, SYMMETRIC, SCALE_INVARIANT, UNIT_DEPENDENCE_AT_MOST_THE_SPECS,
                    TRANSLATION_INVARIANT,
                    *((IDENTICAL_IS_ZERO,) if identical_is_zero else ()), *relations),
        edge_cases=(
            Case({"boxes1": np.array([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0],
                                      [0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 5.0, 6.0]]),
                  "boxes2": np.array([[0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 2.0, 1.0],
                                      [0.5, 0.5, 1.5, 1.5], [5.0, 5.0, 5.0, 6.0]])},
                 label="identical, touching, nested with a shared centre, zero-width"
                 if allow_empty else "identical, touching, nested, shared centre"),
        ) if allow_empty else (
            Case({"boxes1": np.array([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0],
                                      [0.0, 0.0, 2.0, 2.0]]),
                  "boxes2": np.array([[0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 2.0, 1.0],
                                      [0.5, 0.5, 1.5, 1.5]])},
                 label="identical, touching, nested with a shared centre"),
        ),
        implementations=implementations,
        conventions=conventions,
    )
    return LossSpec(**{**family, **fields})


IOU_LOSS = box_loss_spec(
    "iou_loss", "1 - IoU of paired boxes (our spec; torchvision has no IoU loss)",
    ref.iou_loss, (), ("implementations.boxes:iou_loss",),
    "1 - |A n B| / (|A u B| + eps); a zero-area box has IoU 0. At eps = 0 two zero-area boxes"
    " (IoU = 0 / 0) are outside the domain.",
)
TORCHVISION = "implementations.adapters.torchvision_ops"

GIOU_LOSS = box_loss_spec(
    "generalized_box_iou_loss", "1 - GIoU (Rezatofighi et al. 2019)",
    ref.generalized_box_iou_loss,
    (_at_least_iou_loss("giou"), PULLS_TOGETHER,
     Relation(
         name="disjoint_boxes_have_negative_giou",
         description="disjoint boxes: IoU = 0 and GIoU < 0, so the loss exceeds 1",
         lhs=reference(lambda boxes1, boxes2, reduction="none", **_: zero_loss(
             np.zeros(np.shape(boxes1)[:-1]), reduction=reduction) + (
             1.0 if reduction != "sum" else float(np.size(boxes1) // 4)), label="1"),
         rhs=target(label="1 - GIoU"), op="le", adapt=_separated,
     ),
     Relation(
         name="giou_equals_iou_when_one_box_contains_the_other",
         description="if b contains a, the enclosing box is b and GIoU == IoU",
         lhs=target(label="1 - GIoU"), rhs=reference(ref.iou_loss, label="1 - IoU"),
         adapt=_second_contains_first,
     ),
     Relation(
         name="giou_at_least_minus_one",
         description="GIoU >= -1, so the loss is at most 2",
         lhs=target(label="1 - GIoU"),
         rhs=reference(lambda boxes1, boxes2, reduction="none", **_: 2.0 * np.ones(
             np.shape(boxes1)[:-1]) if reduction == "none" else np.asarray(
             2.0 * (np.size(boxes1) // 4 if reduction == "sum" else 1)), label="2"),
         op="le",
     )),
    ("implementations.boxes:generalized_box_iou_loss", f"{TORCHVISION}:generalized_box_iou_loss"),
    "IoU = inter / (union + eps); GIoU = IoU - (|C| - union) / (|C| + eps), C the enclosing box."
    " At eps = 0 two zero-area boxes (IoU = 0 / 0) are outside the domain.",
)
DIOU_LOSS = box_loss_spec(
    "distance_box_iou_loss", "1 - IoU + rho^2 / c^2 (DIoU, Zheng et al. 2020)",
    ref.distance_box_iou_loss, (_at_least_iou_loss("diou"), PULLS_TOGETHER),
    ("implementations.boxes:distance_box_iou_loss", f"{TORCHVISION}:distance_box_iou_loss"),
    "rho = distance between the centres; c^2 = squared enclosing diagonal + eps. At eps = 0 two"
    " zero-area boxes (IoU = 0 / 0) are outside the domain.",
)
CIOU_LOSS = box_loss_spec(
    "complete_box_iou_loss", "DIoU loss + alpha v (CIoU, Zheng et al. 2020)",
    ref.complete_box_iou_loss, (_at_least_iou_loss("ciou"), PULLS_TOGETHER),
    # torchvision's complete_box_iou_loss ignores eps in its DIoU part: docs/findings.md.
    ("implementations.boxes:complete_box_iou_loss",),
    "v = 4/pi^2 (atan(w_gt/h_gt) - atan(w/h))^2, alpha = v / (1 - IoU + v + eps) with no"
    " gradient; boxes1 is the prediction. Every box, as rounded to the tested dtype, has positive"
    " width and height (atan(w/h)); with eps = 0 identical boxes give alpha = 0/0 = NaN"
    " (declared), and nearly identical ones (1 - IoU + v within the dtype's rule of 0) are"
    " outside the domain.",
    allow_empty=False,
    identical_is_zero=False,  # alpha = 0 / 0 for identical boxes at eps = 0
    nan_expected=_ciou_nan,
    domain=_ciou_domain,
    gradient_reference=_ciou_with_frozen_alpha,
)
for _spec in (IOU_LOSS, GIOU_LOSS, DIOU_LOSS, CIOU_LOSS):
    SPECS.declare(_spec)


# --------------------------------------------------------------------------- pairwise metrics


@st.composite
def _pairwise_cases(draw: st.DrawFn) -> Case:
    n, m = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    a, b = draw(_boxes(True, max(n, m)))
    return Case({"boxes1": a[:n], "boxes2": b[:m]})


def _pairwise_magnitude(case: Case, values: np.ndarray) -> np.ndarray:
    b1, b2 = case.inputs["boxes1"], case.inputs["boxes2"]
    side = np.maximum(np.minimum(np.min(b1[:, 2:] - b1[:, :2], axis=-1)[:, None],
                                 np.min(b2[:, 2:] - b2[:, :2], axis=-1)[None, :]), MIN_SIDE)
    coords = np.maximum(np.max(np.abs(b1), axis=-1)[:, None], np.max(np.abs(b2), axis=-1)[None])
    return np.nan_to_num(np.abs(values)) + 4.0 + 4.0 * coords / side


def _both_empty(case: Case, reduction: str | None) -> np.ndarray:
    def empty(b: np.ndarray) -> np.ndarray:
        return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) == 0

    return empty(case.inputs["boxes1"])[:, None] & empty(case.inputs["boxes2"])[None, :]


def _transpose(values: np.ndarray) -> np.ndarray:
    return np.asarray(values).T


PAIRWISE_SYMMETRIC = Relation(
    name="pairwise_symmetric",
    description="metric(b, a) == metric(a, b).T",
    lhs=target(_swap, label="metric(b, a).T", output=_transpose), rhs=target(label="metric(a, b)"),
)

for _name, _summary, _fn, _bounds in (
    ("box_iou", "pairwise IoU, (N, 4) x (M, 4) -> (N, M)", ref.box_iou,
     Relation(name="iou_at_most_one", description="IoU <= 1",
              lhs=target(label="IoU"), rhs=reference(lambda boxes1, boxes2: np.ones(
                  (len(boxes1), len(boxes2))), label="1"), op="le")),
    ("generalized_box_iou", "pairwise GIoU, (N, 4) x (M, 4) -> (N, M)", ref.generalized_box_iou,
     Relation(name="giou_at_most_iou", description="-1 <= GIoU <= IoU",
              lhs=target(label="GIoU"), rhs=reference(ref.box_iou, label="IoU"), op="le")),
):
    SPECS.declare(LossSpec(
        name=_name,
        family="boxes",
        summary=_summary,
        signature=f"{_name}(boxes1, boxes2)",
        reference=_fn,
        cases=_pairwise_cases,
        reductions=(),
        magnitude=_pairwise_magnitude,
        intermediates=_pairwise_products,
        nan_expected=_both_empty,
        gradient_domain=_without_empty_boxes,
        invalid=INVERTED,
        empty=(no_boxes("boxes1"), no_boxes("boxes2"), no_boxes("boxes1", "boxes2")),
        differentiable=("boxes1", "boxes2"),
        properties=("output_dtype", "no_input_mutation", "gradient_matches_reference",
                    PAIRWISE_SYMMETRIC, _bounds),
        edge_cases=(Case({"boxes1": np.array([[0.0, 0.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0]]),
                          "boxes2": np.array([[0.0, 0.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0],
                                              [3.0, 0.0, 4.0, 1.0]])},
                         label="identical, empty (0/0 = NaN) and distant boxes"),),
        implementations=(f"implementations.boxes:{_name}",
                         f"implementations.adapters.torchvision_ops:{_name}"),
        conventions="No eps: the metric of two empty boxes is 0/0 = NaN (declared).",
    ))
