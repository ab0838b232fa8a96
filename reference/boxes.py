"""Bounding-box overlap metrics and losses in float64, written from their papers.

Boxes are (x1, y1, x2, y2) with x1 <= x2 and y1 <= y2; coordinates may have either sign.
IoU and GIoU follow Rezatofighi et al. 2019 (Generalized Intersection over Union), DIoU
and CIoU Zheng et al. 2020 (Distance-IoU Loss). Argument names, defaults and the place of
eps follow torchvision.ops:

- the losses (``*_loss``: elementwise over boxes1[..., :] and boxes2[..., :] of one shape
  (..., 4), reduction='none' by default) put eps in their denominators: union + eps,
  area_c + eps, c^2 + eps, 1 - IoU + v + eps. Their 'mean' over zero boxes is 0 (torchvision
  returns 0.0 * loss.sum() there), not the 0/0 = nan of the other references;
- the pairwise metrics (boxes1 (N, 4) against boxes2 (M, 4) -> (N, M)) have no eps in IoU
  or GIoU, so two zero-area boxes give 0/0 = nan there; distance_box_iou and
  complete_box_iou add eps to c^2 and to alpha's denominator only.

Notation: A = boxes1, B = boxes2, C the smallest box enclosing both, |.| an area,
rho the distance between the centres of A and B, c the diagonal of C, w, h widths and
heights (w_gt, h_gt of boxes2, the ground truth of the CIoU loss).

Degenerate boxes. Zero-width or zero-height boxes are allowed: they have area 0, and with
eps > 0 every loss stays finite except where CIoU's aspect ratio is undefined. Inverted
boxes (x2 < x1 or y2 < y1) and infinite coordinates raise ValueError; NaN coordinates give
NaN. The aspect angle atan(w / h) is evaluated as arctan2(w, h): for w, h > 0 it is within
an ulp of atan(fl(w / h)) and nearer the exact value (w / h is not rounded first); for h = 0,
w > 0 it is pi / 2, torchvision's atan(inf); for w = h = 0 (a point) the angle is
undefined and is NaN, as torchvision's atan(0 / 0) is, so CIoU involving a point box is NaN.

Accuracy. The four x coordinates of a pair, sorted, split the x extent of C into three
intervals, and likewise in y; C is the union of the 3 x 3 cells, and each cell lies wholly
inside or outside A and inside or outside B. So |A n B|, |A \\ B|, |B \\ A| and
|C \\ (A u B)| are each a sum of cell areas, every one a product of two once-rounded
coordinate differences: all non-negative, nothing cancels. The losses are written on these
pieces, e.g. 1 - IoU = (|A \\ B| + |B \\ A| + eps) / (|A u B| + eps), so identical, nested,
touching and distant boxes at coordinates from 1e-3 to 1e4 keep their relative accuracy.
Where a metric is itself a difference (GIoU, DIoU and CIoU as IoU minus a penalty), it is
known to a few ulps of the larger of the two terms, as for any float64 evaluation. The one
limit is underflow: an area below ~1e-308 (coordinate differences under ~1e-154, far
outside any image) loses digits or becomes 0, and with eps = 0 such boxes can give 0/0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reference.reduction import check_reduction, reduce

__all__ = [
    "box_area",
    "box_iou",
    "box_pair_giou",
    "box_pair_iou",
    "complete_box_iou",
    "complete_box_iou_loss",
    "distance_box_iou",
    "distance_box_iou_loss",
    "generalized_box_iou",
    "generalized_box_iou_loss",
    "iou_loss",
]

_FOUR_OVER_PI_SQUARED = 4.0 / np.pi**2


# ---------------------------------------------------------------------------
# checks


def _corners(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x1, y1, x2, y2 of (..., 4) boxes."""
    return boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]


def _boxes(boxes: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(boxes, dtype=np.float64)
    if array.ndim == 0 or array.shape[-1] != 4:
        raise ValueError(f"{name} must have shape (..., 4) as (x1, y1, x2, y2), got {array.shape}")
    if np.any(np.isinf(array)):
        raise ValueError(f"{name} must have finite coordinates")
    x1, y1, x2, y2 = _corners(array)
    if np.any(x2 < x1) or np.any(y2 < y1):
        raise ValueError(f"{name} holds an inverted box (x2 < x1 or y2 < y1)")
    return array


def _elementwise(boxes1: np.ndarray, boxes2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = _boxes(boxes1, "boxes1"), _boxes(boxes2, "boxes2")
    if a.shape != b.shape:
        raise ValueError(f"boxes2 shape {b.shape} must equal boxes1 shape {a.shape}")
    return a, b


def _pairwise(boxes1: np.ndarray, boxes2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every box of boxes1 (N, 4) against every box of boxes2 (M, 4), as (N, M, 4) pairs."""
    a, b = _boxes(boxes1, "boxes1"), _boxes(boxes2, "boxes2")
    for name, array in (("boxes1", a), ("boxes2", b)):
        if array.ndim != 2:
            raise ValueError(
                f"{name} must have shape (N, 4) for a pairwise metric, got {array.shape}"
            )
    pairs = np.broadcast_arrays(a[:, None, :], b[None, :, :])
    return pairs[0], pairs[1]


def _check_eps(eps: float) -> None:
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps}")


# ---------------------------------------------------------------------------
# geometry of a pair


@dataclass(frozen=True)
class _Pair:
    """The pieces every metric is built from, for boxes A and B (elementwise)."""

    inter: np.ndarray  # |A n B|
    only_a: np.ndarray  # |A \ B|
    only_b: np.ndarray  # |B \ A|
    gap: np.ndarray  # |C \ (A u B)|
    hull_w: np.ndarray  # width and height of C
    hull_h: np.ndarray
    centre_dx: np.ndarray  # centre of A minus centre of B
    centre_dy: np.ndarray
    w_a: np.ndarray
    h_a: np.ndarray
    w_b: np.ndarray
    h_b: np.ndarray

    @property
    def union(self) -> np.ndarray:
        return self.inter + self.only_a + self.only_b

    @property
    def hull_area(self) -> np.ndarray:
        return self.hull_w * self.hull_h


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """s = fl(a + b) and its rounding error e, so that a + b = s + e exactly (Knuth)."""
    s = a + b
    b_part = s - a
    return s, (a - (s - b_part)) + (b - b_part)


def _accurate_sum(*terms: np.ndarray) -> np.ndarray:
    """sum(terms) as accurate as if summed in triple precision and rounded once.

    The centre offset (x1 + x2) / 2 - (x1' + x2') / 2 of boxes that (nearly) share a
    centre cancels, and it is the whole DIoU penalty when the boxes do not overlap, so
    it must not be left to the roundings of x1 + x2 or x1 - x1'. SumK with K = 3 (Ogita,
    Rump & Oishi 2005: two error-free passes, then a plain sum) leaves an error of
    about one rounding of the result plus u^3 * sum |terms| (u = 2^-53). A non-zero sum
    is a multiple of the ulp of the smallest term, so that is far below it unless the
    coordinates differ in magnitude by more than ~1e30.
    """
    parts = list(terms)
    for _ in range(2):
        for i in range(1, len(parts)):
            parts[i], parts[i - 1] = _two_sum(parts[i], parts[i - 1])
    return sum(parts[:-1], np.zeros_like(parts[-1])) + parts[-1]


def _split(
    lo_a: np.ndarray, hi_a: np.ndarray, lo_b: np.ndarray, hi_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The hull of [lo_a, hi_a] and [lo_b, hi_b] cut at the four ends into three intervals:
    their lengths and whether each lies inside a and inside b (shape (..., 3) each)."""
    ends = np.sort(np.stack([lo_a, hi_a, lo_b, hi_b], axis=-1), axis=-1)
    left, right = ends[..., :-1], ends[..., 1:]
    in_a = (lo_a[..., None] <= left) & (right <= hi_a[..., None])
    in_b = (lo_b[..., None] <= left) & (right <= hi_b[..., None])
    return right - left, in_a, in_b


def _pair(a: np.ndarray, b: np.ndarray) -> _Pair:
    ax1, ay1, ax2, ay2 = _corners(a)
    bx1, by1, bx2, by2 = _corners(b)
    len_x, a_x, b_x = _split(ax1, ax2, bx1, bx2)
    len_y, a_y, b_y = _split(ay1, ay2, by1, by2)
    cells = len_x[..., :, None] * len_y[..., None, :]
    in_a = a_x[..., :, None] & a_y[..., None, :]
    in_b = b_x[..., :, None] & b_y[..., None, :]
    # sorting and comparing lose a NaN instead of propagating it, so put it back
    undefined = np.isnan(a).any(axis=-1) | np.isnan(b).any(axis=-1)

    def area(mask: np.ndarray) -> np.ndarray:
        return np.where(undefined, np.nan, np.sum(np.where(mask, cells, 0.0), axis=(-2, -1)))

    return _Pair(
        inter=area(in_a & in_b),
        only_a=area(in_a & ~in_b),
        only_b=area(in_b & ~in_a),
        gap=area(~in_a & ~in_b),
        hull_w=np.maximum(ax2, bx2) - np.minimum(ax1, bx1),
        hull_h=np.maximum(ay2, by2) - np.minimum(ay1, by1),
        centre_dx=_accurate_sum(ax1, ax2, -bx1, -bx2) / 2,
        centre_dy=_accurate_sum(ay1, ay2, -by1, -by2) / 2,
        w_a=ax2 - ax1,
        h_a=ay2 - ay1,
        w_b=bx2 - bx1,
        h_b=by2 - by1,
    )


def _iou(p: _Pair, eps: float) -> np.ndarray:
    """|A n B| / (|A u B| + eps)."""
    return p.inter / (p.union + eps)


def _iou_distance(p: _Pair, eps: float) -> np.ndarray:
    """1 - |A n B| / (|A u B| + eps) = (|A \\ B| + |B \\ A| + eps) / (|A u B| + eps)."""
    return (p.only_a + p.only_b + eps) / (p.union + eps)


def _hull_penalty(p: _Pair, eps: float) -> np.ndarray:
    """GIoU's |C \\ (A u B)| / (|C| + eps)."""
    return p.gap / (p.hull_area + eps)


def _centre_penalty(p: _Pair, eps: float) -> np.ndarray:
    """DIoU's rho^2 / (c^2 + eps)."""
    rho_squared = p.centre_dx**2 + p.centre_dy**2
    return rho_squared / (p.hull_w**2 + p.hull_h**2 + eps)


def _aspect_angle(w: np.ndarray, h: np.ndarray) -> np.ndarray:
    """atan(w / h) as arctan2(w, h), NaN for a point (see the module docstring)."""
    return np.where((w == 0) & (h == 0), np.nan, np.arctan2(w, h))


def _aspect_penalty(p: _Pair) -> np.ndarray:
    """CIoU's v = (4 / pi^2) (atan(w_b / h_b) - atan(w_a / h_a))^2."""
    return _FOUR_OVER_PI_SQUARED * (_aspect_angle(p.w_b, p.h_b) - _aspect_angle(p.w_a, p.h_a)) ** 2


def _ciou_alpha(v: np.ndarray, iou_distance: np.ndarray, eps: float) -> np.ndarray:
    """CIoU's trade-off alpha = v / (1 - IoU + v + eps)."""
    return v / (iou_distance + v + eps)


def _reduce_box_loss(loss: np.ndarray, reduction: str) -> np.ndarray:
    # torchvision returns 0.0 * loss.sum() for the mean of no boxes: a denominator of at
    # least 1 gives that 0 instead of 0/0
    return reduce(loss, reduction, denominator=max(loss.size, 1))


# ---------------------------------------------------------------------------
# areas and elementwise metrics


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Area (x2 - x1) (y2 - y1) of boxes (..., 4) -> (...) (torchvision.ops.box_area)."""
    x1, y1, x2, y2 = _corners(_boxes(boxes, "boxes"))
    return (x2 - x1) * (y2 - y1)


def box_pair_iou(boxes1: np.ndarray, boxes2: np.ndarray, eps: float = 0.0) -> np.ndarray:
    """IoU of boxes1[...] with boxes2[...] (shapes (..., 4) -> (...)).

        IoU = |A n B| / (|A u B| + eps)

    eps = 0 is box_iou's convention (two zero-area boxes give 0/0 = nan); eps = 1e-7 that
    of the torchvision losses, so iou_loss = 1 - box_pair_iou(eps=1e-7) up to rounding.
    """
    _check_eps(eps)
    p = _pair(*_elementwise(boxes1, boxes2))
    with np.errstate(invalid="ignore"):
        return _iou(p, eps)


def box_pair_giou(boxes1: np.ndarray, boxes2: np.ndarray, eps: float = 0.0) -> np.ndarray:
    """GIoU of boxes1[...] with boxes2[...] (shapes (..., 4) -> (...)).

        GIoU = IoU - |C \\ (A u B)| / (|C| + eps),   IoU = |A n B| / (|A u B| + eps)

    In [-1, 1] and at most IoU. eps = 0 is generalized_box_iou's convention (nan when A
    and B both have zero area); eps = 1e-7 that of generalized_box_iou_loss.
    """
    _check_eps(eps)
    p = _pair(*_elementwise(boxes1, boxes2))
    with np.errstate(invalid="ignore"):
        return _iou(p, eps) - _hull_penalty(p, eps)


# ---------------------------------------------------------------------------
# pairwise metrics (N, 4) x (M, 4) -> (N, M)


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """Pairwise IoU (torchvision.ops.box_iou), (N, 4) x (M, 4) -> (N, M).

        IoU = |A n B| / |A u B|

    No eps, as in torchvision: two zero-area boxes give 0/0 = nan.
    """
    p = _pair(*_pairwise(boxes1, boxes2))
    with np.errstate(invalid="ignore"):
        return _iou(p, 0.0)


def generalized_box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """Pairwise GIoU (Rezatofighi et al. 2019, Alg. 1; torchvision.ops.generalized_box_iou).

        GIoU = IoU - |C \\ (A u B)| / |C|

    No eps, as in torchvision: nan where both boxes have zero area (IoU is 0/0).
    """
    p = _pair(*_pairwise(boxes1, boxes2))
    with np.errstate(invalid="ignore"):
        return _iou(p, 0.0) - _hull_penalty(p, 0.0)


def distance_box_iou(boxes1: np.ndarray, boxes2: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Pairwise DIoU (Zheng et al. 2020, eq. 6; torchvision.ops.distance_box_iou).

        DIoU = IoU - rho^2 / (c^2 + eps),   IoU = |A n B| / |A u B|  (no eps)

    nan where both boxes have zero area.
    """
    _check_eps(eps)
    p = _pair(*_pairwise(boxes1, boxes2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return _iou(p, 0.0) - _centre_penalty(p, eps)


def complete_box_iou(boxes1: np.ndarray, boxes2: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Pairwise CIoU (Zheng et al. 2020, eqs. 9-11; torchvision.ops.complete_box_iou).

        CIoU  = DIoU - alpha v
        v     = (4 / pi^2) (atan(w_B / h_B) - atan(w_A / h_A))^2
        alpha = v / (1 - IoU + v + eps),   IoU = |A n B| / |A u B|  (no eps)

    nan where both boxes have zero area or either is a point (see the module docstring).
    """
    _check_eps(eps)
    p = _pair(*_pairwise(boxes1, boxes2))
    with np.errstate(invalid="ignore", divide="ignore"):
        v = _aspect_penalty(p)
        alpha = _ciou_alpha(v, _iou_distance(p, 0.0), eps)
        return _iou(p, 0.0) - _centre_penalty(p, eps) - alpha * v


# ---------------------------------------------------------------------------
# elementwise losses


def iou_loss(
    boxes1: np.ndarray, boxes2: np.ndarray, reduction: str = "none", eps: float = 1e-7
) -> np.ndarray:
    """IoU loss, 1 - IoU, with the torchvision losses' conventions (our own spec).

        l = 1 - |A n B| / (|A u B| + eps)

    Two zero-area boxes give l = 1 (0 / eps). 'mean' over zero boxes is 0.
    """
    check_reduction(reduction)
    _check_eps(eps)
    p = _pair(*_elementwise(boxes1, boxes2))
    with np.errstate(invalid="ignore"):
        loss = _iou_distance(p, eps)
    return _reduce_box_loss(loss, reduction)


def generalized_box_iou_loss(
    boxes1: np.ndarray, boxes2: np.ndarray, reduction: str = "none", eps: float = 1e-7
) -> np.ndarray:
    """GIoU loss (Rezatofighi et al. 2019; torchvision.ops.generalized_box_iou_loss).

        l = 1 - GIoU = 1 - IoU + |C \\ (A u B)| / (|C| + eps),   IoU = |A n B| / (|A u B| + eps)

    In [0, 2]; symmetric in boxes1 and boxes2. 'mean' over zero boxes is 0.
    """
    check_reduction(reduction)
    _check_eps(eps)
    p = _pair(*_elementwise(boxes1, boxes2))
    with np.errstate(invalid="ignore"):
        loss = _iou_distance(p, eps) + _hull_penalty(p, eps)
    return _reduce_box_loss(loss, reduction)


def distance_box_iou_loss(
    boxes1: np.ndarray, boxes2: np.ndarray, reduction: str = "none", eps: float = 1e-7
) -> np.ndarray:
    """DIoU loss (Zheng et al. 2020, eq. 6; torchvision.ops.distance_box_iou_loss).

        l = 1 - IoU + rho^2 / (c^2 + eps),   IoU = |A n B| / (|A u B| + eps)

    rho is the distance between the box centres, c the diagonal of the enclosing box C.
    Symmetric in boxes1 and boxes2. 'mean' over zero boxes is 0.
    """
    check_reduction(reduction)
    _check_eps(eps)
    p = _pair(*_elementwise(boxes1, boxes2))
    with np.errstate(invalid="ignore"):
        loss = _iou_distance(p, eps) + _centre_penalty(p, eps)
    return _reduce_box_loss(loss, reduction)


def complete_box_iou_loss(
    boxes1: np.ndarray, boxes2: np.ndarray, reduction: str = "none", eps: float = 1e-7
) -> np.ndarray:
    """CIoU loss (Zheng et al. 2020, eqs. 9-11; torchvision.ops.complete_box_iou_loss).

        l     = 1 - IoU + rho^2 / (c^2 + eps) + alpha v
        v     = (4 / pi^2) (atan(w_gt / h_gt) - atan(w / h))^2
        alpha = v / (1 - IoU + v + eps),   IoU = |A n B| / (|A u B| + eps)

    boxes1 is the prediction (w, h) and boxes2 the ground truth (w_gt, h_gt); the value is
    symmetric in them. alpha is a constant for gradients (the paper's trade-off
    parameter; torchvision computes it under no_grad), which matters to autograd only:
    this reference gives values. h = 0 counts as an angle of pi / 2; a point box (w = h = 0)
    has no aspect ratio and gives nan (see the module docstring). 'mean' over zero boxes
    is 0.
    """
    check_reduction(reduction)
    _check_eps(eps)
    p = _pair(*_elementwise(boxes1, boxes2))
    with np.errstate(invalid="ignore"):
        iou_distance = _iou_distance(p, eps)
        v = _aspect_penalty(p)
        loss = iou_distance + _centre_penalty(p, eps) + _ciou_alpha(v, iou_distance, eps) * v
    return _reduce_box_loss(loss, reduction)
