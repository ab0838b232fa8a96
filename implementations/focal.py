"""Focal losses in torch: sigmoid (torchvision semantics), softmax (per-class alpha), quality.

Each is written so that |logits| up to 1e4 stay finite in every float dtype: probabilities are
never formed and then subtracted from 1; the modulating factors are computed from log-space.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from implementations.reduction import reduce_loss


def sigmoid_focal_loss(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
) -> torch.Tensor:
    """Lin et al. (2017) focal loss on logits, with torchvision.ops.sigmoid_focal_loss's call.

    FL = alpha_t * (1 - p_t)^gamma * BCE(x, y); a negative alpha disables alpha_t.
    """
    ce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    # log(1 - p_t) = log(y * sigmoid(-x) + (1 - y) * sigmoid(x)), summed in log space so that
    # saturated logits neither cancel to 0 nor give 0 ** gamma.
    log_miss = torch.logaddexp(
        torch.log(targets) + F.logsigmoid(-inputs),
        torch.log1p(-targets) + F.logsigmoid(inputs),
    )
    loss = ce * torch.exp(gamma * log_miss)
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return reduce_loss(loss, reduction)


def _safe_pow(base: torch.Tensor, exponent: float) -> torch.Tensor:
    """base ** exponent for base >= 0, whose gradient at base = 0 is 0 instead of inf * 0.

    At p_t = 1 (or |y - sigma| = 0) the loss is 0 and flat along the modulating factor; autograd
    through a plain pow would multiply its infinite slope by a zero and give NaN.
    """
    tiny = torch.finfo(base.dtype).tiny
    safe = torch.where(base > 0, base, torch.full_like(base, tiny))
    return torch.where(base > 0, safe**exponent, torch.zeros_like(base) if exponent > 0
                       else torch.ones_like(base))


def _class_dim(input: torch.Tensor) -> int:
    return 0 if input.dim() == 1 else 1


def softmax_focal_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    alpha: torch.Tensor | None = None,
    gamma: float = 2.0,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> torch.Tensor:
    """Multi-class focal loss: -alpha[y] * (1 - p_y)^gamma * log p_y over a softmax.

    Layouts and ignore_index as F.cross_entropy; 'mean' averages over non-ignored elements
    (alpha weights the terms but not the count).
    """
    dim = _class_dim(input)
    log_p = F.log_softmax(input, dim=dim)
    valid = target != ignore_index
    safe = torch.where(valid, target, torch.zeros_like(target))
    log_pt = log_p.gather(dim, safe.unsqueeze(dim)).squeeze(dim)
    miss = -torch.expm1(log_pt)  # 1 - p_t, exact when p_t is close to 1
    loss = -(_safe_pow(miss, gamma)) * log_pt
    if alpha is not None:
        loss = alpha.to(loss.dtype)[safe] * loss
    loss = torch.where(valid, loss, torch.zeros_like(loss))
    return reduce_loss(loss, reduction, valid.sum())


def quality_focal_loss(
    input: torch.Tensor, target: torch.Tensor, beta: float = 2.0, reduction: str = "mean"
) -> torch.Tensor:
    """Quality Focal Loss (Li et al. 2020, Generalized Focal Loss), elementwise form:
    QFL = |y - sigmoid(x)|^beta * BCE(x, y) for soft quality targets y in [0, 1].

    Half inputs are computed in float32 and the loss returned in their dtype: in float16,
    sigmoid(-17) is the smallest subnormal, the slope of |y - sigma|^beta there (beta < 1)
    overflows, and BCE has underflowed to 0, so the backward pass made 0 * inf = NaN."""
    compute = torch.promote_types(input.dtype, torch.float32)
    x, y = input.to(compute), target.to(compute)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    # y - sigma = y * (1 - sigma) - (1 - y) * sigma, with 1 - sigma = sigmoid(-x) (no cancellation)
    distance = (y * torch.sigmoid(-x) - (1 - y) * torch.sigmoid(x)).abs()
    return reduce_loss(ce * _safe_pow(distance, beta), reduction).to(input.dtype)
