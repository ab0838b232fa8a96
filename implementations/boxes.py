"""Box overlap metrics and losses in torch, with torchvision.ops' calls and conventions.

Boxes are (x1, y1, x2, y2). The losses compare boxes1[i] with boxes2[i] and default to
reduction='none'; eps sits in the union and enclosing-box denominators as torchvision puts it.
The pairwise metrics compare every box of boxes1 with every box of boxes2. A pair holding an
inverted box (x2 < x1 or y2 < y1) scores NaN.
"""

from __future__ import annotations

import math

import torch

from implementations.reduction import reduce_loss


def _reduce_boxes(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """The mean of no box is 0 (torchvision's convention: a batch without objects trains
    on), still connected to the boxes so that its backward runs."""
    if reduction == "mean" and loss.numel() == 0:
        return loss.sum()
    return reduce_loss(loss, reduction)


def _corners(boxes: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]


def _intersection_union(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    ax1, ay1, ax2, ay2 = _corners(a)
    bx1, by1, bx2, by2 = _corners(b)
    w = (torch.minimum(ax2, bx2) - torch.maximum(ax1, bx1)).clamp(min=0)
    h = (torch.minimum(ay2, by2) - torch.maximum(ay1, by1)).clamp(min=0)
    inter = w * h
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    # An inverted box (x2 < x1 or y2 < y1) has no area: every metric of a pair holding one is
    # NaN, not a number that looks like an overlap. Valid pairs keep their values and
    # gradients (where's backward sends nothing to the other branch).
    valid = (ax2 >= ax1) & (ay2 >= ay1) & (bx2 >= bx1) & (by2 >= by1)
    return inter, torch.where(valid, union, torch.nan)


def _enclosing(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Width and height of the smallest box enclosing both."""
    ax1, ay1, ax2, ay2 = _corners(a)
    bx1, by1, bx2, by2 = _corners(b)
    return torch.maximum(ax2, bx2) - torch.minimum(ax1, bx1), (
        torch.maximum(ay2, by2) - torch.minimum(ay1, by1))


def _iou(a: torch.Tensor, b: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    inter, union = _intersection_union(a, b)
    return inter / (union + eps), union


def _giou(a: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:
    iou, union = _iou(a, b, eps)
    cw, ch = _enclosing(a, b)
    area_c = cw * ch
    return iou - (area_c - union) / (area_c + eps)


def _diou_loss(a: torch.Tensor, b: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    iou, _ = _iou(a, b, eps)
    cw, ch = _enclosing(a, b)
    diagonal2 = cw**2 + ch**2 + eps
    ax1, ay1, ax2, ay2 = _corners(a)
    bx1, by1, bx2, by2 = _corners(b)
    # Centre offsets as half-sums of differences: exact for huge coordinates with small offsets.
    dx = ((ax1 - bx1) + (ax2 - bx2)) / 2
    dy = ((ay1 - by1) + (ay2 - by2)) / 2
    return 1 - iou + (dx**2 + dy**2) / diagonal2, iou


def iou_loss(
    boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: str = "none", eps: float = 1e-7
) -> torch.Tensor:
    """1 - IoU, IoU = |A n B| / (|A u B| + eps)."""
    iou, _ = _iou(boxes1, boxes2, eps)
    return _reduce_boxes(1 - iou, reduction)


def generalized_box_iou_loss(
    boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: str = "none", eps: float = 1e-7
) -> torch.Tensor:
    """1 - GIoU (Rezatofighi et al. 2019): GIoU = IoU - |C - (A u B)| / |C|."""
    return _reduce_boxes(1 - _giou(boxes1, boxes2, eps), reduction)


def distance_box_iou_loss(
    boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: str = "none", eps: float = 1e-7
) -> torch.Tensor:
    """1 - IoU + rho^2 / c^2 (Zheng et al. 2020): centre distance over enclosing diagonal."""
    loss, _ = _diou_loss(boxes1, boxes2, eps)
    return _reduce_boxes(loss, reduction)


def _aspect_angle(w: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """atan(w / h) as atan2(w, h): the same angle (pi/2 at h = 0), but its gradient
    (h, -w) / (w^2 + h^2) does not pass through w / h, whose square overflows float16 for a box
    1000 times wider than high. A point box (w = h = 0) has no angle: NaN, as atan(0/0)."""
    angle = torch.atan2(w, h)
    return torch.where((w == 0) & (h == 0), torch.full_like(angle, math.nan), angle)


def complete_box_iou_loss(
    boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: str = "none", eps: float = 1e-7
) -> torch.Tensor:
    """DIoU loss + alpha v, v = 4/pi^2 (atan(w_gt/h_gt) - atan(w/h))^2, alpha = v/(1-IoU+v+eps);
    boxes1 is the prediction, boxes2 the ground truth; alpha carries no gradient."""
    loss, iou = _diou_loss(boxes1, boxes2, eps)
    x1, y1, x2, y2 = _corners(boxes1)
    gx1, gy1, gx2, gy2 = _corners(boxes2)
    v = (4 / math.pi**2) * (_aspect_angle(gx2 - gx1, gy2 - gy1)
                            - _aspect_angle(x2 - x1, y2 - y1)) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return _reduce_boxes(loss + alpha * v, reduction)


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU, (N, 4) x (M, 4) -> (N, M); no eps (0/0 for two empty boxes is NaN)."""
    inter, union = _intersection_union(boxes1[:, None, :], boxes2[None, :, :])
    return inter / union


def generalized_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Pairwise GIoU, (N, 4) x (M, 4) -> (N, M); no eps."""
    return _giou(boxes1[:, None, :], boxes2[None, :, :], 0.0)
