"""Deliberately wrong loss implementations: each property must reject at least one.

Two kinds: wrappers that break any conforming loss in one generic way (dtype, in-place edits,
reductions, sign), and hand-written bugs of the kind found in real loss code (several from the
seed documents).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from implementations import balanced, focal
from implementations.reduction import reduce_loss

Loss = Callable[..., torch.Tensor]


# --------------------------------------------------------------------------- generic wrappers


def returns_float64(fn: Loss) -> Loss:
    """Computes in float64 and returns float64 whatever the input dtype."""

    @functools.wraps(fn)
    def wrong(*args, **kwargs):
        widen = [a.double() if a.is_floating_point() else a for a in args]
        kw = {k: v.double() if isinstance(v, torch.Tensor) and v.is_floating_point() else v
              for k, v in kwargs.items()}
        return fn(*widen, **kw)

    return wrong


def edits_first_input(fn: Loss) -> Loss:
    """Correct value, but changes its first argument in place afterwards."""

    @functools.wraps(fn)
    def wrong(*args, **kwargs):
        out = fn(*args, **kwargs)
        if args[0].is_floating_point():
            args[0].mul_(0.5)
        else:
            args[0].add_(1)
        return out

    return wrong


def mean_is_sum(fn: Loss) -> Loss:
    """'mean' forgets to divide."""

    @functools.wraps(fn)
    def wrong(*args, reduction="mean", **kwargs):
        return fn(*args, reduction="sum" if reduction == "mean" else reduction, **kwargs)

    return wrong


def none_keeps_a_dim(fn: Loss) -> Loss:
    """'none' returns the elementwise loss with an extra leading dimension."""

    @functools.wraps(fn)
    def wrong(*args, reduction="mean", **kwargs):
        out = fn(*args, reduction=reduction, **kwargs)
        return out.unsqueeze(0) if reduction == "none" else out

    return wrong


def shifted_down(fn: Loss) -> Loss:
    """Subtracts a constant (a log-normaliser applied twice, say): the loss goes negative."""

    @functools.wraps(fn)
    def wrong(*args, **kwargs):
        return fn(*args, **kwargs) - 1.0

    return wrong


def _elementwise(fn: Loss, modify: Callable) -> Loss:
    """Apply `modify(elementwise loss, args)` before reducing (pairwise metrics: no reduction)."""

    @functools.wraps(fn)
    def wrong(*args, reduction=None, **kwargs):
        if reduction is None:
            return modify(fn(*args, **kwargs), args)
        return reduce_loss(modify(fn(*args, reduction="none", **kwargs), args), reduction)

    return wrong


def _first_coordinate(out: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    if first.shape == out.shape:
        return first
    if first.dim() == 2 and out.dim() == 2 and first.shape[-1] == 4:  # pairwise (N, M)
        return first[:, :1]
    return first[..., 0]  # boxes (..., 4) -> (...)


def position_weighted(fn: Loss) -> Loss:
    """Weights each element by where its first argument lies: order- and position-dependent."""
    return _elementwise(fn, lambda out, args: out * (
        1 + 0.5 * torch.sigmoid(_first_coordinate(out, args[0]))))


def constant_floor(fn: Loss) -> Loss:
    """Adds 1e-3 to every element (a smoothing term that never vanishes)."""
    return _elementwise(fn, lambda out, args: out + 1e-3)


def larger_hidden_eps(fn: Loss) -> Loss:
    """Uses eps = max(eps, 1e-6) whatever it is given: visible at small scales only."""

    @functools.wraps(fn)
    def wrong(*args, eps=1e-7, **kwargs):
        return fn(*args, eps=max(eps, 1e-6), **kwargs)

    return wrong


def pixel_widths(fn: Loss) -> Loss:
    """The legacy pixel convention, width = x2 - x1 + 1 (both boxes' x2 and y2 moved out by
    one unit): translation invariant, and the loss of boxes a few units wide depends on the
    unit far more than the spec's eps makes it."""
    one = torch.tensor([0.0, 0.0, 1.0, 1.0])

    @functools.wraps(fn)
    def wrong(boxes1, boxes2, *args, **kwargs):
        return fn(boxes1 + one.to(boxes1), boxes2 + one.to(boxes2), *args, **kwargs)

    return wrong


def _default(fn: Loss, name: str):
    import inspect

    return inspect.signature(fn).parameters[name].default


def forgets_ignore_index(fn: Loss) -> Loss:
    """Treats ignored pixels as class 0 instead of leaving them out."""

    @functools.wraps(fn)
    def wrong(input, target, *args, ignore_index=None, **kwargs):
        if ignore_index is not None:
            target = torch.where(target == ignore_index, torch.zeros_like(target), target)
        return fn(input, target, *args, **kwargs)

    return wrong


def per_image_forgets_ignore_index(fn: Loss) -> Loss:
    """The per_image branch drops ignore_index (one branch of two forgets an argument)."""
    forgetful = forgets_ignore_index(fn)

    @functools.wraps(fn)
    def wrong(*args, **kwargs):
        per_image = kwargs.get("per_image", _default(fn, "per_image"))
        return (forgetful if per_image else fn)(*args, **kwargs)

    return wrong


def position_weighted_pixels(fn: Loss) -> Loss:
    """Scales logits by a ramp over pixel positions (a 'border weighting' gone wrong)."""

    @functools.wraps(fn)
    def wrong(input, target, *args, **kwargs):
        spatial = target.shape[1:]
        ramp = torch.linspace(1.0, 1.5, max(target[0].numel(), 1), dtype=input.dtype)
        ramp = ramp.reshape(spatial) if len(spatial) else ramp.reshape(())
        return fn(input * ramp, target, *args, **kwargs)

    return wrong


def log_of_score(fn: Loss) -> Loss:
    """-log(score) instead of 1 - score: unbounded above."""
    return _elementwise(fn, lambda out, args: -torch.log1p(-out + 1e-7) * 3)


class _HalfGradient(torch.autograd.Function):
    """Identity forward; backward passes only half the gradient."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * 0.5


def wrong_backward(fn: Loss) -> Loss:
    """A correct forward whose custom backward halves the gradient of the first input."""

    @functools.wraps(fn)
    def wrong(first, *args, **kwargs):
        return fn(_HalfGradient.apply(first), *args, **kwargs)

    return wrong


def answers_anything(fn: Loss) -> Loss:
    """Never refuses an input: where the loss raises it returns 0, where it is NaN, 0."""

    @functools.wraps(fn)
    def wrong(*args, **kwargs):
        try:
            out = fn(*args, **kwargs)
        except Exception:
            return args[0].new_zeros(())
        return out.nan_to_num(0.0)

    return wrong


def empty_is_a_fresh_zero(fn: Loss) -> Loss:
    """On an input with no element returns a new scalar 0: the wrong shape for 'none', a
    number where a mean over nothing is NaN, and nothing a backward can run through."""

    @functools.wraps(fn)
    def wrong(*args, **kwargs):
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        if any(t.numel() == 0 for t in tensors):
            floats = [t.dtype for t in tensors if t.is_floating_point()]
            return torch.zeros((), dtype=floats[0] if floats else torch.float64)
        return fn(*args, **kwargs)

    return wrong


def sums_by_default(fn: Loss) -> Loss:
    """Called without a reduction, sums (a library whose default is not the canonical one)."""

    @functools.wraps(fn)
    def wrong(*args, **kwargs):
        kwargs.setdefault("reduction", "sum")
        return fn(*args, **kwargs)

    return wrong


def differs_on_accelerator(fn: Loss) -> Loss:
    """Right on the CPU; on any other device a fused kernel that drops 1% of the loss."""

    @functools.wraps(fn)
    def wrong(*args, **kwargs):
        out = fn(*args, **kwargs)
        return out if out.device.type == "cpu" else out * 0.99

    return wrong


def ignores_strides(fn: Loss) -> Loss:
    """Reads every tensor's memory as if it were contiguous, as a kernel that takes `data_ptr`
    without checking strides does: right on contiguous input, garbage on a slice."""

    def as_contiguous_memory(t):
        if not isinstance(t, torch.Tensor) or t.is_contiguous():
            return t
        strides, step = [], 1
        for size in reversed(t.shape):
            strides.insert(0, step)
            step *= size
        return torch.as_strided(t, t.shape, strides, t.storage_offset())

    @functools.wraps(fn)
    def wrong(*args, **kwargs):
        return fn(*map(as_contiguous_memory, args),
                  **{k: as_contiguous_memory(v) for k, v in kwargs.items()})

    return wrong


GENERIC_MUTANTS: dict[str, Callable[[Loss], Loss]] = {
    "accepts_non_contiguous_input": ignores_strides,
    "output_dtype": returns_float64,
    "no_input_mutation": edits_first_input,
    "reduction_consistency": none_keeps_a_dim,
    "nonnegative": shifted_down,
    "matches_reference": mean_is_sum,
    # shared relations, one wrapper each, applied to every spec that declares them
    "symmetric_in_input_and_target": position_weighted,
    "symmetric_in_the_two_boxes": position_weighted,
    "pairwise_symmetric": position_weighted,
    "translation_invariant": position_weighted,
    "zero_when_input_equals_target": constant_floor,
    "identical_boxes_give_zero": constant_floor,
    "scale_invariant": larger_hidden_eps,
    "unit_dependence_at_most_the_specs": pixel_widths,
    "ignored_pixels_change_nothing": forgets_ignore_index,
    "per_image_equals_batch_for_one_image": per_image_forgets_ignore_index,
    "pixel_permutation_invariance": position_weighted_pixels,
    "zero_at_a_perfect_prediction": constant_floor,
    "at_most_one": log_of_score,
    "gradient_matches_reference": wrong_backward,
    "gradient_matches_own_values": wrong_backward,
    "rejects_invalid_input": answers_anything,
    "handles_empty_input": empty_is_a_fresh_zero,
    "default_reduction_is_the_specs": sums_by_default,
    "agrees_with_cpu": differs_on_accelerator,  # needs CUDA to run; see test_mutants
}


# --------------------------------------------------------------------------- BCE family


def bce_clamped_probabilities(input, target, weight=None, reduction="mean"):
    """Clamps p to [1e-7, 1 - 1e-7] instead of clamping the log at -100."""
    p = input.clamp(1e-7, 1 - 1e-7)
    loss = -(target * torch.log(p) + (1 - target) * torch.log1p(-p))
    if weight is not None:
        loss = loss * weight
    return reduce_loss(loss, reduction)


def bce_logits_unstable(input, target, weight=None, reduction="mean", pos_weight=None):
    """log(sigmoid(x)) formed directly: -inf once sigmoid underflows."""
    p = torch.sigmoid(input)
    pw = 1.0 if pos_weight is None else pos_weight
    loss = -(pw * target * torch.log(p) + (1 - target) * torch.log(1 - p))
    if weight is not None:
        loss = loss * weight
    return reduce_loss(loss, reduction)


def bce_logits_weight_on_positives_only(input, target, weight=None, reduction="mean",
                                        pos_weight=None):
    """Applies `weight` to the positive term only."""
    log_p, log_q = F.logsigmoid(input), F.logsigmoid(-input)
    w = 1.0 if weight is None else weight
    pw = 1.0 if pos_weight is None else pos_weight
    loss = -(w * pw * target * log_p + (1 - target) * log_q)
    return reduce_loss(loss, reduction)


# --------------------------------------------------------------------------- cross entropy


def _class_dim(x: torch.Tensor) -> int:
    return 0 if x.dim() == 1 else 1


def ce_smoothing_over_other_classes(input, target, weight=None, ignore_index=-100,
                                    reduction="mean", label_smoothing=0.0):
    """Label smoothing spread over the C - 1 wrong classes instead of all C."""
    if target.is_floating_point() or label_smoothing == 0:
        return F.cross_entropy(input, target, weight=weight, ignore_index=ignore_index,
                               reduction=reduction, label_smoothing=label_smoothing)
    classes = input.shape[_class_dim(input)]
    valid = target != ignore_index
    safe = torch.where(valid, target, torch.zeros_like(target))
    onehot = F.one_hot(safe, classes).movedim(-1, _class_dim(input)).to(input.dtype)
    off = label_smoothing / max(classes - 1, 1)
    soft = onehot * (1 - label_smoothing) + (1 - onehot) * off
    log_p = F.log_softmax(input, dim=_class_dim(input))
    w = torch.ones(classes, dtype=input.dtype) if weight is None else weight
    shape = [1] * input.dim()
    shape[_class_dim(input)] = classes
    loss = -(soft * log_p * w.view(shape)).sum(_class_dim(input))
    loss = torch.where(valid, loss, torch.zeros_like(loss))
    return reduce_loss(loss, reduction, w[safe][valid].sum())


def ce_falsy_smoothing_default(input, target, weight=None, ignore_index=-100, reduction="mean",
                               label_smoothing=None):
    """`label_smoothing or 0.1`: an explicit 0.0 is falsy and turns into 0.1."""
    eps = 0.0 if label_smoothing is None else (label_smoothing or 0.1)
    return F.cross_entropy(input, target, weight=weight, ignore_index=ignore_index,
                           reduction=reduction, label_smoothing=eps)


def ce_clamped_logits(input, target, weight=None, ignore_index=-100, reduction="mean",
                      label_smoothing=0.0):
    """Clamps logits to [-30, 30] 'for stability': no longer shift invariant."""
    return F.cross_entropy(input.clamp(-30, 30), target, weight=weight,
                           ignore_index=ignore_index, reduction=reduction,
                           label_smoothing=label_smoothing)


def ce_probability_targets_ignore_weight(input, target, weight=None, ignore_index=-100,
                                         reduction="mean", label_smoothing=0.0):
    """The probability-target path drops the class weights."""
    if target.is_floating_point():
        weight = None
    return F.cross_entropy(input, target, weight=weight, ignore_index=ignore_index,
                           reduction=reduction, label_smoothing=label_smoothing)


def ce_log_of_softmax(input, target, weight=None, ignore_index=-100, reduction="mean",
                      label_smoothing=0.0):
    """log(softmax(x)) in two steps: -inf for classes whose probability underflows."""
    log_p = torch.log(torch.softmax(input, dim=_class_dim(input)))
    if target.is_floating_point():
        return F.cross_entropy(input, target, weight=weight, reduction=reduction,
                               label_smoothing=label_smoothing)
    loss = F.nll_loss(log_p, target, weight=weight, ignore_index=ignore_index,
                      reduction=reduction)
    if label_smoothing:
        return F.cross_entropy(input, target, weight=weight, ignore_index=ignore_index,
                               reduction=reduction, label_smoothing=label_smoothing)
    return loss


def ce_mean_over_all_targets(input, target, weight=None, ignore_index=-100, reduction="mean",
                             label_smoothing=0.0):
    """'mean' divides by every target, ignored and unweighted ones included."""
    loss = F.cross_entropy(input, target, weight=weight, ignore_index=ignore_index,
                           reduction="none", label_smoothing=label_smoothing)
    return loss.mean() if reduction == "mean" else reduce_loss(loss, reduction)


# --------------------------------------------------------------------------- KL


def kl_negated(input, target, reduction="mean", log_target=False):
    """Pointwise term with the sign flipped: q log(q/p) confused with p log(p/q)."""
    return -F.kl_div(input, target, reduction=reduction, log_target=log_target)


def kl_smoothed_log_target(input, target, reduction="mean", log_target=False):
    """log(p + 1e-8) instead of log p: KL(p || p) is no longer 0 where p is small."""
    if log_target:
        return F.kl_div(input, target, reduction=reduction, log_target=True)
    loss = target * (torch.log(target + 1e-8) - input)
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.dim() else 1)
    return reduce_loss(loss, reduction)


# --------------------------------------------------------------------------- focal family


def focal_alpha_on_wrong_class(inputs, targets, alpha=0.25, gamma=2.0, reduction="none"):
    """alpha applied to the negatives and 1 - alpha to the positives."""
    swapped = 1 - alpha if alpha >= 0 else alpha
    return focal.sigmoid_focal_loss(inputs, targets, swapped, gamma, reduction)


def focal_negative_alpha_not_disabled(inputs, targets, alpha=0.25, gamma=2.0, reduction="none"):
    """Uses alpha_t even for alpha < 0 (torchvision's 'disable' convention missed)."""
    ce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p = torch.sigmoid(inputs)
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = (alpha * targets + (1 - alpha) * (1 - targets)) * ce * (1 - p_t) ** gamma
    return reduce_loss(loss, reduction)


def focal_one_plus_alpha_typo(inputs, targets, alpha=0.25, gamma=2.0, reduction="none"):
    """`(1 + alpha)` typed for `(1 - alpha)`: negatives weigh more than plain BCE."""
    ce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p = torch.sigmoid(inputs)
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 + alpha) * (1 - targets)) * loss
    return reduce_loss(loss, reduction)


def softmax_focal_clamped_logits(input, target, alpha=None, gamma=2.0, ignore_index=-100,
                                 reduction="mean"):
    """Clamps logits to [-30, 30] before the softmax: no longer shift invariant."""
    return focal.softmax_focal_loss(input.clamp(-30, 30), target, alpha, gamma, ignore_index,
                                    reduction)


def softmax_focal_seed004(input, target, alpha=None, gamma=2.0, ignore_index=-100,
                          reduction="mean"):
    """Seed 004's FocalLoss: alpha folded into CE's weights, so p_t = exp(-alpha * ce)."""
    weighted_ce = F.cross_entropy(input, target, weight=alpha, ignore_index=ignore_index,
                                  reduction="none")
    p_t = torch.exp(-weighted_ce)
    loss = (1 - p_t) ** gamma * weighted_ce
    valid = target != ignore_index
    return reduce_loss(loss, reduction, valid.sum())


def softmax_focal_alpha_by_prediction(input, target, alpha=None, gamma=2.0, ignore_index=-100,
                                      reduction="mean"):
    """alpha indexed by the predicted class (argmax) instead of the target class."""
    if alpha is None:
        return focal.softmax_focal_loss(input, target, None, gamma, ignore_index, reduction)
    plain = focal.softmax_focal_loss(input, target, None, gamma, ignore_index, "none")
    predicted = input.argmax(dim=_class_dim(input))
    loss = alpha.to(plain.dtype)[predicted] * plain
    valid = target != ignore_index
    return reduce_loss(loss, reduction, valid.sum())


def softmax_focal_mean_counts_ignored(input, target, alpha=None, gamma=2.0, ignore_index=-100,
                                      reduction="mean"):
    """'mean' divides by every target, ignored ones included."""
    loss = focal.softmax_focal_loss(input, target, alpha, gamma, ignore_index, "none")
    return loss.mean() if reduction == "mean" else reduce_loss(loss, reduction)


def qfl_hard_labels_in_bce(input, target, beta=2.0, reduction="mean"):
    """The BCE part uses binarised targets (y > 0.5) while the modulation uses soft ones."""
    ce = F.binary_cross_entropy_with_logits(input, (target > 0.5).to(input.dtype),
                                            reduction="none")
    distance = (target - torch.sigmoid(input)).abs()
    return reduce_loss(ce * distance**beta, reduction)


def qfl_missing_abs(input, target, beta=2.0, reduction="mean"):
    """(y - sigmoid(x)) ** beta without abs: NaN for a negative base and a fractional beta."""
    ce = F.binary_cross_entropy_with_logits(input, target, reduction="none")
    return reduce_loss(ce * (target - torch.sigmoid(input)) ** beta, reduction)


def balanced_bce_beta_over_batch(input, target, reduction="mean"):
    """beta computed over the whole batch instead of per sample."""
    beta = 1 - target.mean()
    weight = beta * target + (1 - beta) * (1 - target)
    return F.binary_cross_entropy_with_logits(input, target, weight=weight, reduction=reduction)


def balanced_bce_swapped_beta(input, target, reduction="mean"):
    """beta on the negatives: the rare class is down-weighted instead of up-weighted."""
    per_sample = tuple(range(1, input.dim()))
    beta = 1 - target.mean(dim=per_sample, keepdim=True)
    weight = (1 - beta) * target + beta * (1 - target)
    return F.binary_cross_entropy_with_logits(input, target, weight=weight, reduction=reduction)


# --------------------------------------------------------------------------- regression, ranking


def l1_as_charbonnier(input, target, reduction="mean"):
    """sqrt(d^2 + 1e-6) as a 'smooth' L1: no longer 0 when input equals target."""
    return reduce_loss(torch.sqrt((input - target) ** 2 + 1e-6), reduction)


def mse_through_sqrt(input, target, reduction="mean"):
    """The distance as sqrt(d^2), squared again: right values, NaN gradient at d = 0."""
    return reduce_loss(torch.sqrt((input - target) ** 2) ** 2, reduction)


class _AbsRightDerivative(torch.autograd.Function):
    """|d| whose backward takes the right-hand derivative (+1) at d = 0."""

    @staticmethod
    def forward(ctx, d):
        ctx.save_for_backward(d)
        return d.abs()

    @staticmethod
    def backward(ctx, grad):
        (d,) = ctx.saved_tensors
        return grad * torch.where(d >= 0, 1.0, -1.0).to(grad.dtype)


def l1_right_derivative_at_zero(input, target, reduction="mean"):
    """Right value; at input == target its gradient is +1, not sign(0) = 0."""
    return reduce_loss(_AbsRightDerivative.apply(input - target), reduction)


def mse_mean_as_sum_over_n(input, target, reduction="mean"):
    """'mean' as sum / n in the input dtype: the sum overflows float16 where the mean fits."""
    squares = (input - target) ** 2
    if reduction == "mean":
        return squares.sum() / squares.numel()
    return reduce_loss(squares, reduction)


def mse_relative(input, target, reduction="mean"):
    """Squared error normalised by the target's size: not symmetric in its arguments."""
    return reduce_loss((input - target) ** 2 / (target.abs() + 1), reduction)


def smooth_l1_le_beta(input, target, reduction="mean", beta=1.0):
    """`d <= beta` for `d < beta`: 0/0 at d = 0 when beta = 0."""
    d = (input - target).abs()
    return reduce_loss(torch.where(d <= beta, 0.5 * d**2 / beta, d - 0.5 * beta), reduction)


def huber_offset_without_delta(input, target, reduction="mean", delta=1.0):
    """Linear branch delta * (d - 0.5) instead of delta * (d - 0.5 * delta)."""
    d = (input - target).abs()
    return reduce_loss(torch.where(d < delta, 0.5 * d**2, delta * (d - 0.5)), reduction)


def margin_ranking_missing_parentheses(input1, input2, target, margin=0.0, reduction="mean"):
    """-y * x1 + x2 typed for -y * (x1 - x2)."""
    return reduce_loss((-target * input1 + input2 + margin).clamp(min=0), reduction)


def soft_margin_weighted_positives(input, target, reduction="mean"):
    """A positive-class weight of 2 slipped in (pos_weight habits from BCE): no longer a
    function of the margin y x alone."""
    loss = F.softplus(-target * input) * torch.where(target > 0, 2.0, 1.0).to(input.dtype)
    return reduce_loss(loss, reduction)


def soft_margin_as_bce_of_signs(input, target, reduction="mean"):
    """The +-1 labels handed to BCE with logits as they are, instead of (1 + y) / 2."""
    return F.binary_cross_entropy_with_logits(input, target, reduction=reduction)


def multilabel_positive_weight(input, target, weight=None, reduction="mean"):
    """A positive-label weight of 2 (BCE's pos_weight) inside each class term."""
    terms = F.binary_cross_entropy_with_logits(
        input, target, weight=weight, reduction="none",
        pos_weight=torch.full(input.shape[-1:], 2.0, dtype=input.dtype))
    return reduce_loss(terms.mean(-1), reduction)


def multilabel_class_sum(input, target, weight=None, reduction="mean"):
    """Sums the classes where the loss averages them."""
    terms = F.binary_cross_entropy_with_logits(input, target, reduction="none")
    if weight is not None:
        terms = terms * weight
    return reduce_loss(terms.sum(-1), reduction)


def poisson_counts_plus_one(input, target, log_input=True, full=False, eps=1e-8,
                            reduction="mean"):
    """log(y + 1)-style habits: the counts shifted by one, so the best rate is y + 1."""
    return F.poisson_nll_loss(input, target + 1, log_input=log_input, full=full, eps=eps,
                              reduction=reduction)


def poisson_log_input_ignored(input, target, log_input=True, full=False, eps=1e-8,
                              reduction="mean"):
    """Reads every input as a log-rate, whatever log_input says."""
    return F.poisson_nll_loss(input, target, log_input=True, full=full, eps=eps,
                              reduction=reduction)


def gaussian_unhalved_error(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """(log v) / 2 + (x - y)^2 / v: the one-half dropped from the squared term."""
    v = (var if isinstance(var, torch.Tensor) else torch.full_like(input, var)).clamp(min=eps)
    if v.shape != input.shape and v.shape == input.shape[:-1]:
        v = v.unsqueeze(-1)
    loss = 0.5 * torch.log(v) + (input - target) ** 2 / v
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return reduce_loss(loss, reduction)


def gaussian_full_log_two_pi(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """full adds log(2 pi), not its half."""
    loss = F.gaussian_nll_loss(input, target, var, eps=eps, reduction="none")
    if full:
        loss = loss + math.log(2 * math.pi)
    return reduce_loss(loss, reduction)


def gaussian_eps_added(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """eps added to the variance, as F.gaussian_nll_loss's docstring words it, not clamped."""
    return F.gaussian_nll_loss(input, target, var + eps, full=full, eps=0.0,
                               reduction=reduction)


def gaussian_clamp_stops_gradient(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """A differentiable clamp: below eps the variance's gradient is 0, where the spec (and
    torch's documentation) passes it through."""
    if not isinstance(var, torch.Tensor):
        return F.gaussian_nll_loss(input, target, var, full=full, eps=eps, reduction=reduction)
    clamped = var.clamp(min=eps)
    return F.gaussian_nll_loss(input, target, clamped, full=full, eps=0.0,
                               reduction=reduction)


def multi_margin_counts_the_target_class(input, target, p=1, margin=1.0, weight=None,
                                         reduction="mean"):
    """The sum runs over every class, the target's own included: max(0, margin)^p more."""
    loss = F.multi_margin_loss(input, target, p=p, margin=margin, weight=weight,
                               reduction="none")
    w = 1.0 if weight is None else weight[target]
    return reduce_loss(loss + w * max(margin, 0.0) ** p / input.shape[-1], reduction)


def multi_margin_weight_inside(input, target, p=1, margin=1.0, weight=None, reduction="mean"):
    """torch's documented formula: the weight inside the power (weight_placement='inside')."""
    x = input if input.dim() == 2 else input.unsqueeze(0)
    y = target.reshape(-1)
    w = torch.ones(x.shape[1], dtype=x.dtype) if weight is None else weight
    own = x.gather(1, y[:, None])
    hinge = (w[y][:, None] * (margin - own + x)).clamp(min=0) ** p
    hinge = hinge.scatter(1, y[:, None], 0.0)
    loss = hinge.sum(1) / x.shape[1]
    return reduce_loss(loss if input.dim() == 2 else loss[0], reduction)


def multi_margin_clamped_scores(input, target, p=1, margin=1.0, weight=None, reduction="mean"):
    """Scores clamped to [-100, 100] "for stability": no longer a function of differences."""
    return F.multi_margin_loss(input.clamp(-100, 100), target, p=p, margin=margin,
                               weight=weight, reduction=reduction)


def multilabel_margin_counts_listed_classes(input, target, reduction="mean"):
    """Every other class counts against a listed one, listed classes included."""
    x = input if input.dim() == 2 else input.unsqueeze(0)
    y = target if target.dim() == 2 else target.unsqueeze(0)
    listed = (y == -1).cumsum(1) == 0
    own = x.gather(1, y.clamp(min=0))
    hinge = (1 - own[:, :, None] + x[:, None, :]).clamp(min=0)
    same = torch.arange(x.shape[1])[None, None, :] == y.clamp(min=0)[:, :, None]
    loss = (hinge * (listed[:, :, None] & ~same)).sum((1, 2)) / x.shape[1]
    return reduce_loss(loss if input.dim() == 2 else loss[0], reduction)


def multilabel_margin_clamped_scores(input, target, reduction="mean"):
    """Scores clamped to [-100, 100]: no longer a function of differences."""
    return F.multilabel_margin_loss(input.clamp(-100, 100), target, reduction=reduction)


def multilabel_margin_skips_minus_one(input, target, reduction="mean"):
    """-1 read as 'skip this entry' instead of 'the list ends here'."""
    y = target.clone()
    kept = y.sort(dim=-1, descending=True, stable=True).values  # listed first, -1s last
    return F.multilabel_margin_loss(input, kept, reduction=reduction)


# --------------------------------------------------------------------------- embedding

_COSINE_EPS = 1e-12


def _cosine_loss(cos, target, margin, reduction):
    """torch's branches on a given cosine: 1 - cos for y = 1, max(0, cos - margin) for -1."""
    out = torch.where(target == 1, 1 - cos, (cos - margin).clamp(min=0))
    return reduce_loss(out, reduction)


def cosine_projects_onto_the_first(input1, input2, target, margin=0, reduction="mean"):
    """x1 . x2 / (|x1|^2 + eps): the projection onto x1, not the cosine (right only where the
    two norms are equal)."""
    cos = (input1 * input2).sum(-1) / ((input1 * input1).sum(-1) + _COSINE_EPS)
    return _cosine_loss(cos, target, margin, reduction)


def cosine_dot_for_dissimilar(input1, input2, target, margin=0, reduction="mean"):
    """The dissimilar branch on the raw dot product, max(0, x1 . x2 - margin): the norms
    forgotten in one branch of two."""
    cos = F.cosine_similarity(input1, input2, dim=-1, eps=1e-8)
    dot = (input1 * input2).sum(-1)
    out = torch.where(target == 1, 1 - cos, (dot - margin).clamp(min=0))
    return reduce_loss(out, reduction)


def cosine_margin_added(input1, input2, target, margin=0, reduction="mean"):
    """max(0, cos + margin) for a dissimilar pair: the margin's sign flipped."""
    cos = F.cosine_similarity(input1, input2, dim=-1, eps=1e-8)
    return _cosine_loss(cos, target, -margin, reduction)


def cosine_clamped_norms(input1, input2, target, margin=0, reduction="mean"):
    """The loss built on F.cosine_similarity (each norm clamped at 1e-8): the spec's variant
    cosine_eps='clamped', not its canonical eps in the squared norms."""
    cos = F.cosine_similarity(input1, input2, dim=-1, eps=1e-8)
    return _cosine_loss(cos, target, margin, reduction)


def _hinge_of(d_positive, d_negative, margin, reduction, soft=False):
    z = margin + d_positive - d_negative
    return reduce_loss(F.softplus(z) if soft else z.clamp(min=0), reduction)


def triplet_soft_margin(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                        reduction="mean"):
    """The soft-margin triplet loss, log(1 + exp(z)) (Hermans et al. 2017), for the hinge:
    never 0, however far the negatives."""
    d_pos = F.pairwise_distance(anchor, positive, p, eps)
    d_neg = F.pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = torch.minimum(d_neg, F.pairwise_distance(positive, negative, p, eps))
    return _hinge_of(d_pos, d_neg, margin, reduction, soft=True)


def triplet_swap_takes_the_larger(anchor, positive, negative, margin=1.0, p=2, eps=1e-6,
                                  swap=False, reduction="mean"):
    """swap=True takes the larger of d(a, n) and d(p, n): the easier negative."""
    d_pos = F.pairwise_distance(anchor, positive, p, eps)
    d_neg = F.pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = torch.maximum(d_neg, F.pairwise_distance(positive, negative, p, eps))
    return _hinge_of(d_pos, d_neg, margin, reduction)


def triplet_squared_distance(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                             reduction="mean"):
    """p = 2 taken as the squared Euclidean distance (FaceNet's), the other p as torch."""
    if p != 2:
        return F.triplet_margin_loss(anchor, positive, negative, margin=margin, p=p, eps=eps,
                                     swap=swap, reduction=reduction)

    def d(x, y):
        return (x - y + eps).pow(2).sum(-1)

    d_neg = d(anchor, negative)
    if swap:
        d_neg = torch.minimum(d_neg, d(positive, negative))
    return _hinge_of(d(anchor, positive), d_neg, margin, reduction)


def _distances(distance_function, swap, anchor, positive, negative):
    d = distance_function or F.pairwise_distance
    d_neg = d(anchor, negative)
    if swap:
        d_neg = torch.minimum(d_neg, d(positive, negative))
    return d(anchor, positive), d_neg


def triplet_distance_soft_margin(anchor, positive, negative, *, distance_function=None,
                                 margin=1.0, swap=False, reduction="mean"):
    """The soft-margin triplet loss, log(1 + exp(z)), for the hinge."""
    d_pos, d_neg = _distances(distance_function, swap, anchor, positive, negative)
    return _hinge_of(d_pos, d_neg, margin, reduction, soft=True)


def triplet_distance_swap_takes_the_larger(anchor, positive, negative, *, distance_function=None,
                                           margin=1.0, swap=False, reduction="mean"):
    """swap=True takes the larger of d(a, n) and d(p, n)."""
    d = distance_function or F.pairwise_distance
    d_neg = d(anchor, negative)
    if swap:
        d_neg = torch.maximum(d_neg, d(positive, negative))
    return _hinge_of(d(anchor, positive), d_neg, margin, reduction)


def triplet_distance_squared_by_default(anchor, positive, negative, *, distance_function=None,
                                        margin=1.0, swap=False, reduction="mean"):
    """Without a distance_function, the squared Euclidean distance instead of torch's
    pairwise_distance."""
    def squared(x, y):
        return (x - y).pow(2).sum(-1)

    d_pos, d_neg = _distances(distance_function or squared, swap, anchor, positive, negative)
    return _hinge_of(d_pos, d_neg, margin, reduction)


def triplet_distance_ignores_the_function(anchor, positive, negative, *, distance_function=None,
                                          margin=1.0, swap=False, reduction="mean"):
    """Always torch's pairwise_distance, whatever distance_function is passed."""
    d_pos, d_neg = _distances(None, swap, anchor, positive, negative)
    return _hinge_of(d_pos, d_neg, margin, reduction)


# --------------------------------------------------------------------------- boxes


def _xyxy(b):
    return b[..., 0], b[..., 1], b[..., 2], b[..., 3]


def _inter_areas(a, b):
    ax1, ay1, ax2, ay2 = _xyxy(a)
    bx1, by1, bx2, by2 = _xyxy(b)
    w = (torch.minimum(ax2, bx2) - torch.maximum(ax1, bx1)).clamp(min=0)
    h = (torch.minimum(ay2, by2) - torch.maximum(ay1, by1)).clamp(min=0)
    return w * h, (ax2 - ax1) * (ay2 - ay1), (bx2 - bx1) * (by2 - by1)


def iou_loss_hardcoded_eps(boxes1, boxes2, reduction="none", eps=1e-7):
    """Ignores its eps argument and divides by union + 1e-6: breaks at small scales."""
    inter, a1, a2 = _inter_areas(boxes1, boxes2)
    return reduce_loss(1 - inter / (a1 + a2 - inter + 1e-6), reduction)


def iou_loss_union_without_subtracting(boxes1, boxes2, reduction="none", eps=1e-7):
    """Union as |A| + |B| (the intersection counted twice): identical boxes give 0.5."""
    inter, a1, a2 = _inter_areas(boxes1, boxes2)
    return reduce_loss(1 - inter / (a1 + a2 + eps), reduction)


def giou_loss_penalty_sign(boxes1, boxes2, reduction="none", eps=1e-7):
    """Adds the enclosing-box penalty to IoU instead of subtracting it."""
    from implementations.boxes import _enclosing

    inter, a1, a2 = _inter_areas(boxes1, boxes2)
    union = a1 + a2 - inter
    cw, ch = _enclosing(boxes1, boxes2)
    area_c = cw * ch
    return reduce_loss(1 - (inter / (union + eps) + (area_c - union) / (area_c + eps)), reduction)


def giou_loss_square_enclosure(boxes1, boxes2, reduction="none", eps=1e-7):
    """Enclosing area as width * width (y typed as x): a penalty even for nested boxes."""
    from implementations.boxes import _enclosing

    inter, a1, a2 = _inter_areas(boxes1, boxes2)
    union = a1 + a2 - inter
    cw, _ = _enclosing(boxes1, boxes2)
    area_c = cw * cw
    return reduce_loss(1 - (inter / (union + eps) - (area_c - union) / (area_c + eps)), reduction)


def giou_loss_unnormalised_penalty(boxes1, boxes2, reduction="none", eps=1e-7):
    """Forgets to divide the penalty by |C|: GIoU below -1."""
    from implementations.boxes import _enclosing

    inter, a1, a2 = _inter_areas(boxes1, boxes2)
    union = a1 + a2 - inter
    cw, ch = _enclosing(boxes1, boxes2)
    return reduce_loss(1 - (inter / (union + eps) - (cw * ch - union)), reduction)


def diou_loss_gt_diagonal(boxes1, boxes2, reduction="none", eps=1e-7):
    """Normalises the centre distance by the second box's diagonal, not the enclosing one's."""
    from implementations.boxes import iou_loss

    ax1, ay1, ax2, ay2 = _xyxy(boxes1)
    bx1, by1, bx2, by2 = _xyxy(boxes2)
    rho2 = ((ax1 + ax2 - bx1 - bx2) / 2) ** 2 + ((ay1 + ay2 - by1 - by2) / 2) ** 2
    diag2 = (bx2 - bx1) ** 2 + (by2 - by1) ** 2 + eps
    return reduce_loss(iou_loss(boxes1, boxes2, eps=eps) + rho2 / diag2, reduction)


def diou_loss_width_as_centre(boxes1, boxes2, reduction="none", eps=1e-7):
    """Centres taken as (x2 - x1) / 2: the loss moves when both boxes are translated."""
    from implementations.boxes import _enclosing, iou_loss

    ax1, ay1, ax2, ay2 = _xyxy(boxes1)
    bx1, by1, bx2, by2 = _xyxy(boxes2)
    rho2 = ((ax2 - ax1) / 2 - (bx1 + bx2) / 2) ** 2 + ((ay2 - ay1) / 2 - (by1 + by2) / 2) ** 2
    cw, ch = _enclosing(boxes1, boxes2)
    return reduce_loss(iou_loss(boxes1, boxes2, eps=eps) + rho2 / (cw**2 + ch**2 + eps),
                       reduction)


def diou_loss_penalty_sign(boxes1, boxes2, reduction="none", eps=1e-7):
    """Subtracts the distance penalty."""
    from implementations.boxes import distance_box_iou_loss, iou_loss

    d = distance_box_iou_loss(boxes1, boxes2, eps=eps)
    base = iou_loss(boxes1, boxes2, eps=eps)
    return reduce_loss(2 * base - d, reduction)


def ciou_loss_aspect_sign(boxes1, boxes2, reduction="none", eps=1e-7):
    """Subtracts alpha * v."""
    from implementations.boxes import complete_box_iou_loss, distance_box_iou_loss

    d = distance_box_iou_loss(boxes1, boxes2, eps=eps)
    return reduce_loss(2 * d - complete_box_iou_loss(boxes1, boxes2, eps=eps), reduction)


def box_iou_unclamped(boxes1, boxes2):
    """Intersection without clamping negative overlaps: disjoint boxes 'overlap'."""
    a, b = boxes1[:, None, :], boxes2[None, :, :]
    ax1, ay1, ax2, ay2 = _xyxy(a)
    bx1, by1, bx2, by2 = _xyxy(b)
    inter = (torch.minimum(ax2, bx2) - torch.maximum(ax1, bx1)) * (
        torch.minimum(ay2, by2) - torch.maximum(ay1, by1))
    return inter / ((ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter)


def box_iou_first_area_twice(boxes1, boxes2):
    """Union from the first box's area twice: asymmetric, and above 1 for a small first box."""
    inter, a1, _ = _inter_areas(boxes1[:, None, :], boxes2[None, :, :])
    return inter / (a1 + a1 - inter)


def generalized_box_iou_penalty_sign(boxes1, boxes2):
    """Adds the enclosing-box penalty: GIoU above IoU."""
    return giou_loss_penalty_sign(boxes1[:, None, :], boxes2[None, :, :], eps=0.0).neg() + 1


def giou_loss_detached_enclosure(boxes1, boxes2, reduction="none", eps=1e-7):
    """The enclosing box computed under no_grad: disjoint boxes get no pull toward each other."""
    from implementations.boxes import _enclosing

    inter, a1, a2 = _inter_areas(boxes1, boxes2)
    union = a1 + a2 - inter
    with torch.no_grad():
        cw, ch = _enclosing(boxes1, boxes2)
    area_c = cw * ch
    return reduce_loss(1 - (inter / (union + eps) - (area_c - union) / (area_c + eps)), reduction)


def diou_loss_detached_distance(boxes1, boxes2, reduction="none", eps=1e-7):
    """The centre-distance penalty detached from the graph."""
    from implementations.boxes import distance_box_iou_loss, iou_loss

    base = iou_loss(boxes1, boxes2, eps=eps)
    penalty = (distance_box_iou_loss(boxes1, boxes2, eps=eps) - base).detach()
    return reduce_loss(base + penalty, reduction)


def ciou_loss_detached_distance(boxes1, boxes2, reduction="none", eps=1e-7):
    """CIoU whose DIoU part is detached: only the aspect term has a gradient."""
    from implementations.boxes import complete_box_iou_loss, distance_box_iou_loss

    d = distance_box_iou_loss(boxes1, boxes2, eps=eps)
    return reduce_loss(complete_box_iou_loss(boxes1, boxes2, eps=eps) - d + d.detach(),
                       reduction)


def ciou_loss_alpha_differentiated(boxes1, boxes2, reduction="none", eps=1e-7):
    """CIoU with alpha left in the graph: the right value, but the gradient the paper freezes
    alpha out of (the spec owes the frozen one)."""
    from implementations.boxes import _aspect_angle, _corners, _diou_loss

    loss, iou = _diou_loss(boxes1, boxes2, eps)
    x1, y1, x2, y2 = _corners(boxes1)
    gx1, gy1, gx2, gy2 = _corners(boxes2)
    v = (4 / torch.pi**2) * (_aspect_angle(gx2 - gx1, gy2 - gy1)
                             - _aspect_angle(x2 - x1, y2 - y1)) ** 2
    return reduce_loss(loss + v / (1 - iou + v + eps) * v, reduction)


def sigmoid_focal_detached_modulation(inputs, targets, alpha=0.25, gamma=2.0, reduction="none"):
    """The modulating factor (1 - p_t)^gamma computed under no_grad: right values, and a
    gradient that is BCE's scaled, as if the factor were a constant weight."""
    p = torch.sigmoid(inputs)
    ce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    with torch.no_grad():
        modulation = (1 - p_t) ** gamma
    loss = ce * modulation
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return reduce_loss(loss, reduction)


def giou_loss_other_eps(boxes1, boxes2, reduction="none", eps=1e-7):
    """GIoU with 1e-3 added to the union and the enclosing area instead of eps: another
    convention, with a backward true to it."""
    from implementations.boxes import generalized_box_iou_loss

    return generalized_box_iou_loss(boxes1, boxes2, reduction=reduction, eps=1e-3)


# --------------------------------------------------------------------------- segmentation


def _seg():
    from implementations import segmentation

    return segmentation


def dice_jaccard_denominator(input, target, activation="softmax", form="standard", smooth=0.0,
                             include_background=True, classes="all", per_image=False,
                             ignore_index=None, reduction="mean"):
    """2I / (P + G - I): Dice's numerator over Jaccard's union."""
    s = _seg()
    p, g, total = s._soft_counts(input, target, activation, per_image, ignore_index)
    i = total(p * g)
    score = s._ratio(2 * i + smooth, total(p) + total(g) - i + smooth)
    return s._reduce_selected(score, total(g) > 0, include_background, classes, reduction)


def dice_seed004_prediction_with_itself(input, target, activation="softmax", form="standard",
                                        smooth=0.0, include_background=True, classes="all",
                                        per_image=False, ignore_index=None, reduction="mean"):
    """Seed 004's DiceLoss: `target_flat = output.view(-1)`, the prediction against itself."""
    s = _seg()
    p, g, total = s._soft_counts(input, target, activation, per_image, ignore_index)
    score = s._ratio(2 * total(p * p) + smooth, 2 * total(p) + smooth)
    return s._reduce_selected(score, total(g) > 0, include_background, classes, reduction)


def tversky_without_tp(input, target, alpha=0.5, beta=0.5, activation="softmax", smooth=0.0,
                       include_background=True, classes="all", per_image=False,
                       ignore_index=None, reduction="mean"):
    """TP left out of the denominator: TP / (alpha FP + beta FN)."""
    s = _seg()
    p, g, total = s._soft_counts(input, target, activation, per_image, ignore_index)
    tp = total(p * g)
    score = s._ratio(tp + smooth, alpha * total(p * (1 - g))
                     + beta * total((1 - p) * g) + smooth)
    return s._reduce_selected(score.clamp(max=1), total(g) > 0, include_background, classes,
                              reduction)


def tversky_true_negatives(input, target, alpha=0.5, beta=0.5, activation="softmax",
                           smooth=0.0, include_background=True, classes="all", per_image=False,
                           ignore_index=None, reduction="mean"):
    """FN typed as (1 - p)(1 - g): true negatives in the denominator."""
    s = _seg()
    p, g, total = s._soft_counts(input, target, activation, per_image, ignore_index)
    _, mask = s._masks(input, target, ignore_index)
    tp = total(p * g)
    fp = total(p * (1 - g))
    tn = total((1 - p) * (1 - g) * mask)
    score = s._ratio(tp + smooth, tp + alpha * fp + beta * tn + smooth)
    return s._reduce_selected(score, total(g) > 0, include_background, classes, reduction)


def dice_ce_sigmoid_dice(input, target, lambda_dice=1.0, lambda_ce=1.0, smooth=0.0,
                         ignore_index=None):
    """The Dice part uses sigmoid probabilities although the CE part is a softmax."""
    s = _seg()
    dice = s.soft_dice_loss(input, target, activation="sigmoid", smooth=smooth,
                            ignore_index=ignore_index)
    ce = F.cross_entropy(input, target, ignore_index=-100 if ignore_index is None
                         else ignore_index)
    return lambda_dice * dice + lambda_ce * ce


def dice_ce_smoothed_ce(input, target, lambda_dice=1.0, lambda_ce=1.0, smooth=0.0,
                        ignore_index=None):
    """label_smoothing=0.1 left in the CE part from a training config."""
    s = _seg()
    dice = s.soft_dice_loss(input, target, smooth=smooth, ignore_index=ignore_index)
    ce = F.cross_entropy(input, target, ignore_index=-100 if ignore_index is None
                         else ignore_index, label_smoothing=0.1)
    return lambda_dice * dice + lambda_ce * ce


def dice_ce_weights_swapped(input, target, lambda_dice=1.0, lambda_ce=1.0, smooth=0.0,
                            ignore_index=None):
    """lambda_dice and lambda_ce applied to each other's term."""
    return _seg().dice_ce_loss(input, target, lambda_ce, lambda_dice, smooth, ignore_index)


def lovasz_softmax_present_by_identity(input, target, classes="present", per_image=False,
                                       ignore_index=None):
    """Seed 004's `classes is 'present'`: a non-interned 'present' averages over all classes."""
    chosen = "all" if classes == "present" else classes
    return _seg().lovasz_softmax(input, target, chosen, per_image, ignore_index)


def lovasz_softmax_ascending(input, target, classes="present", per_image=False,
                             ignore_index=None):
    """Errors sorted ascending: the Lovasz gradient meets the errors in the wrong order."""
    s = _seg()
    probs = torch.softmax(input, dim=1)
    num_classes = probs.shape[1]
    p = probs.movedim(1, -1).reshape(-1, num_classes)
    y = target.reshape(-1)
    if ignore_index is not None:
        p, y = p[y != ignore_index], y[y != ignore_index]
    losses = []
    for c in (range(num_classes) if isinstance(classes, str) else classes):
        fg = (y == c).to(p.dtype)
        if classes == "present" and not bool(fg.any()):
            continue
        errors, order = torch.sort((fg - p[:, c]).abs(), descending=False)
        losses.append(torch.dot(errors, s._lovasz_grad(fg[order])))
    return torch.stack(losses).mean() if losses else p.sum() * 0


def lovasz_hinge_undifferenced_grad(input, target, per_image=True, ignore_index=None):
    """Uses 1 - J at each rank as the weight instead of its increments."""

    def flat(x, y):
        if ignore_index is not None:
            x, y = x[y != ignore_index], y[y != ignore_index]
        if x.numel() == 0:
            return x.sum() * 0
        yf = y.to(x.dtype)
        errors, order = torch.sort(1 - x * (2 * yf - 1), descending=True)
        g = yf[order]
        total = g.sum()
        jaccard = 1 - (total - g.cumsum(0)) / (total + (1 - g).cumsum(0))
        return torch.dot(F.relu(errors), jaccard)

    if per_image:
        return torch.stack([flat(x.reshape(-1), y.reshape(-1))
                            for x, y in zip(input, target, strict=True)]).mean()
    return flat(input.reshape(-1), target.reshape(-1))


def jaccard_index_empty_is_zero(input, target, num_classes, ignore_index=None, per_image=False,
                                empty=1.0):
    """A class neither predicted nor present scores 0 instead of `empty`."""
    return _seg().jaccard_index(input, target, num_classes, ignore_index, per_image, 0.0)


def jaccard_index_recall(input, target, num_classes, ignore_index=None, per_image=False,
                         empty=1.0):
    """|pred n y| / |y| (recall) taken for IoU."""
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else (
        target != ignore_index)
    safe = torch.where(valid, target, torch.zeros_like(target))
    pred = F.one_hot(input, num_classes).bool() & valid[..., None]
    true = F.one_hot(safe, num_classes).bool() & valid[..., None]
    dims = tuple(range(1, input.dim())) if per_image else tuple(range(input.dim()))
    inter = (pred & true).sum(dims).double()
    size = true.sum(dims).double()
    iou = torch.where(size == 0, torch.full_like(size, empty), inter / size.clamp(min=1))
    return iou.mean(0) if per_image else iou


def jaccard_index_edits_labels(input, target, num_classes, ignore_index=None, per_image=False,
                               empty=1.0):
    """Clamps the predicted labels in place."""
    input.clamp_(max=max(num_classes - 2, 0))
    return _seg().jaccard_index(input, target, num_classes, ignore_index, per_image, empty)


# --------------------------------------------------------------------------- CTC


def _logaddexp3(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """log(e^a + e^b + e^c), -inf where all three are, with no NaN in its backward there."""
    top = torch.maximum(torch.maximum(a, b), c)
    top = torch.where(torch.isinf(top), torch.zeros_like(top), top)
    total = torch.exp(a - top) + torch.exp(b - top) + torch.exp(c - top)
    positive = total > 0
    logged = torch.log(torch.where(positive, total, torch.ones_like(total)))
    return torch.where(positive, logged, torch.full_like(total, -math.inf)) + top


def ctc_in_torch(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
                 zero_infinity=False, *, skip_repeats=False, renormalize=False,
                 every_step=False, blank_is_zero=False, mean_over_labels=False):
    """CTC written with torch operations (the forward recursion in log space, batched), so
    autograd gives the derivative of the value: a conforming gradient, unlike torch's
    ctc_loss. The keywords after the canonical ones are the mutants' bugs."""
    lp = log_probs.unsqueeze(1) if log_probs.dim() == 2 else log_probs
    if renormalize:
        lp = lp.log_softmax(-1)
    steps, batch, _ = lp.shape
    inputs = torch.as_tensor(input_lengths).reshape(-1).tolist()
    lengths = torch.as_tensor(target_lengths).reshape(-1).tolist()
    if every_step:
        inputs = [steps] * batch
    if len(inputs) != batch or len(lengths) != batch or not all(0 <= n <= steps for n in inputs):
        raise ValueError("one input length in [0, T] and one target length a sample")
    flat = targets.reshape(-1).tolist() if targets.dim() == 1 else None
    used = flat if flat is not None else [y for n, k in enumerate(lengths)
                                          for y in targets[n, :k].tolist()]
    if any(not 0 <= y < lp.shape[2] or y == blank for y in used):
        raise ValueError("target labels must be classes other than the blank")
    blank = 0 if blank_is_zero else int(blank)
    width = 2 * max(lengths, default=0) + 1
    extended = torch.full((batch, width), blank, dtype=torch.long)
    skip = torch.zeros((batch, width), dtype=torch.bool)
    start = 0
    for n, length in enumerate(lengths):
        labels = flat[start:start + length] if flat is not None else targets[n, :length].tolist()
        start += length if flat is not None else 0
        extended[n, 1:2 * length:2] = torch.tensor(labels, dtype=torch.long)
        for s in range(3, 2 * length, 2):
            skip[n, s] = skip_repeats or labels[s // 2] != labels[s // 2 - 1]
    emit = lp.gather(2, extended.unsqueeze(0).expand(steps, -1, -1))  # (T, N, 2S + 1)
    none = lp.new_full((batch, 1), -math.inf)
    alpha = torch.cat([emit[0, :, :2], none.expand(-1, width - 2)], 1) if width > 1 else (
        emit[0, :, :1])
    running = torch.tensor(inputs)
    for t in range(1, max(inputs, default=0)):
        previous = torch.cat([none, alpha[:, :-1]], 1)
        before = torch.where(skip, torch.cat([none, none, alpha[:, :-2]], 1)[:, :width],
                             torch.full_like(alpha, -math.inf))
        moved = _logaddexp3(alpha, previous, before) + emit[t]
        alpha = torch.where((t < running).unsqueeze(1), moved, alpha)
    index = torch.tensor(lengths).unsqueeze(1)
    last = alpha.gather(1, 2 * index).squeeze(1)
    label = alpha.gather(1, (2 * index - 1).clamp(min=0)).squeeze(1)
    label = torch.where(index.squeeze(1) > 0, label, torch.full_like(label, -math.inf))
    likelihood = _logaddexp3(last, label, torch.full_like(last, -math.inf))
    empty = torch.tensor([0.0 if length == 0 else -math.inf for length in lengths],
                         dtype=lp.dtype)
    losses = -torch.where(running > 0, likelihood, empty)
    if zero_infinity:
        losses = torch.where(torch.isinf(losses), torch.zeros_like(losses), losses)
    divisors = torch.tensor(lengths, dtype=lp.dtype).clamp(min=1)
    if reduction == "none":
        return losses[0] if log_probs.dim() == 2 else losses
    if reduction == "sum":
        return losses.sum()
    if mean_over_labels:
        return losses.sum() / divisors.sum()
    return (losses / divisors).mean()


def ctc_skips_between_repeats(log_probs, targets, input_lengths, target_lengths, blank=0,
                              reduction="mean", zero_infinity=False):
    """Lets a path skip the blank between two equal labels (the repeat rule forgotten): 'aa'
    also aligns as 'a a', which collapses to 'a'."""
    return ctc_in_torch(log_probs, targets, input_lengths, target_lengths, blank, reduction,
                        zero_infinity, skip_repeats=True)


def ctc_renormalizes(log_probs, targets, input_lengths, target_lengths, blank=0,
                     reduction="mean", zero_infinity=False):
    """Takes log_softmax of log_probs first: right on log-softmax rows, wrong on others."""
    return ctc_in_torch(log_probs, targets, input_lengths, target_lengths, blank, reduction,
                        zero_infinity, renormalize=True)


def ctc_reads_every_step(log_probs, targets, input_lengths, target_lengths, blank=0,
                         reduction="mean", zero_infinity=False):
    """Runs every sample over all T steps, its input length ignored."""
    return ctc_in_torch(log_probs, targets, input_lengths, target_lengths, blank, reduction,
                        zero_infinity, every_step=True)


def ctc_blank_is_zero(log_probs, targets, input_lengths, target_lengths, blank=0,
                      reduction="mean", zero_infinity=False):
    """Takes class 0 for the blank whatever `blank` says."""
    return ctc_in_torch(log_probs, targets, input_lengths, target_lengths, blank, reduction,
                        zero_infinity, blank_is_zero=True)


def ctc_mean_over_labels(log_probs, targets, input_lengths, target_lengths, blank=0,
                         reduction="mean", zero_infinity=False):
    """'mean' = the sum of the losses over the total target length (a mean per label, as
    some libraries normalize), not the mean of each loss over its own length."""
    return ctc_in_torch(log_probs, targets, input_lengths, target_lengths, blank, reduction,
                        zero_infinity, mean_over_labels=True)


# (spec, mutant, property that must reject it)
FAMILY_MUTANTS: list[tuple[str, Loss, str]] = [
    ("binary_cross_entropy", bce_clamped_probabilities, "matches_reference"),
    ("binary_cross_entropy_with_logits", bce_logits_unstable, "matches_reference"),
    ("binary_cross_entropy_with_logits", bce_logits_weight_on_positives_only,
     "equals_bce_of_sigmoid"),
    ("cross_entropy", ce_smoothing_over_other_classes, "matches_reference"),
    ("cross_entropy", ce_mean_over_all_targets, "reduction_consistency"),
    ("cross_entropy", ce_clamped_logits, "logit_shift_invariance"),
    ("cross_entropy", ce_falsy_smoothing_default, "label_smoothing_zero_is_plain"),
    ("cross_entropy", ce_probability_targets_ignore_weight, "one_hot_equals_index_targets"),
    ("cross_entropy", ce_log_of_softmax, "equals_nll_of_log_softmax"),
    ("kl_div", kl_negated, "nonnegative"),
    ("kl_div", kl_smoothed_log_target, "kl_of_a_distribution_with_itself_is_zero"),
    ("sigmoid_focal_loss", focal_alpha_on_wrong_class, "matches_reference"),
    ("sigmoid_focal_loss", focal_negative_alpha_not_disabled, "gamma0_alpha_off_is_bce"),
    ("sigmoid_focal_loss", focal_alpha_on_wrong_class, "gamma0_is_alpha_weighted_bce"),
    ("sigmoid_focal_loss", focal_one_plus_alpha_typo, "focal_at_most_bce"),
    ("softmax_focal_loss", softmax_focal_seed004, "matches_reference"),
    ("softmax_focal_loss", softmax_focal_clamped_logits, "logit_shift_invariance"),
    ("softmax_focal_loss", softmax_focal_mean_counts_ignored, "gamma0_is_cross_entropy"),
    ("softmax_focal_loss", softmax_focal_alpha_by_prediction,
     "gamma0_alpha_is_weighted_cross_entropy"),
    ("quality_focal_loss", qfl_hard_labels_in_bce, "beta0_is_bce"),
    ("quality_focal_loss", qfl_missing_abs, "qfl_at_most_bce"),
    ("balanced_binary_cross_entropy_with_logits", balanced_bce_swapped_beta, "matches_reference"),
    ("balanced_binary_cross_entropy_with_logits", balanced_bce_beta_over_batch,
     "equals_bce_with_balancing_weights"),
    ("l1_loss", l1_as_charbonnier, "zero_when_input_equals_target"),
    ("l1_loss", l1_right_derivative_at_zero, "gradient_matches_reference"),
    ("mse_loss", mse_relative, "symmetric_in_input_and_target"),
    ("mse_loss", mse_through_sqrt, "gradient_matches_reference"),
    ("smooth_l1_loss", smooth_l1_le_beta, "beta0_is_l1"),
    ("huber_loss", huber_offset_without_delta, "huber_is_delta_times_smooth_l1"),
    ("margin_ranking_loss", margin_ranking_missing_parentheses, "swap_inputs_and_negate_target"),
    ("soft_margin_loss", soft_margin_weighted_positives,
     "negating_input_and_target_changes_nothing"),
    ("soft_margin_loss", soft_margin_as_bce_of_signs, "equals_bce_with_logits_of_01_labels"),
    ("soft_margin_loss", soft_margin_as_bce_of_signs, "matches_reference"),
    ("multilabel_soft_margin_loss", multilabel_positive_weight,
     "negated_scores_and_flipped_labels_change_nothing"),
    ("multilabel_soft_margin_loss", multilabel_class_sum, "mean_equals_bce_with_logits_mean"),
    ("multilabel_soft_margin_loss", multilabel_class_sum, "matches_reference"),
    ("poisson_nll_loss", poisson_counts_plus_one, "minimum_at_the_log_of_the_target"),
    ("poisson_nll_loss", poisson_log_input_ignored, "a_zero_count_costs_the_rate"),
    ("poisson_nll_loss", poisson_log_input_ignored, "matches_reference"),
    ("gaussian_nll_loss", gaussian_unhalved_error, "half_squared_error_at_unit_variance"),
    ("gaussian_nll_loss", gaussian_full_log_two_pi, "full_adds_half_log_two_pi"),
    ("gaussian_nll_loss", gaussian_eps_added, "matches_reference"),
    ("gaussian_nll_loss", gaussian_clamp_stops_gradient, "gradient_matches_reference"),
    ("cosine_embedding_loss", cosine_projects_onto_the_first, "symmetric_in_the_two_inputs"),
    ("cosine_embedding_loss", cosine_dot_for_dissimilar, "positive_scaling_changes_nothing"),
    ("cosine_embedding_loss", cosine_margin_added, "negating_x2_swaps_the_branches"),
    ("cosine_embedding_loss", cosine_clamped_norms, "matches_reference"),
    ("triplet_margin_loss", triplet_soft_margin, "zero_when_the_margin_is_met"),
    ("triplet_margin_loss", triplet_swap_takes_the_larger, "swap_never_lowers_the_loss"),
    ("triplet_margin_loss", triplet_squared_distance, "p2_is_the_default_distance_loss"),
    ("triplet_margin_loss", triplet_squared_distance, "matches_reference"),
    ("triplet_margin_with_distance_loss", triplet_distance_soft_margin,
     "zero_when_the_margin_is_met"),
    ("triplet_margin_with_distance_loss", triplet_distance_swap_takes_the_larger,
     "swap_never_lowers_the_loss"),
    ("triplet_margin_with_distance_loss", triplet_distance_squared_by_default,
     "the_default_distance_is_pairwise_distance"),
    ("triplet_margin_with_distance_loss", triplet_distance_ignores_the_function,
     "matches_reference"),
    ("multi_margin_loss", multi_margin_counts_the_target_class, "zero_when_every_margin_is_met"),
    ("multi_margin_loss", multi_margin_weight_inside, "matches_reference"),
    ("multi_margin_loss", multi_margin_clamped_scores, "logit_shift_invariance"),
    ("multilabel_margin_loss", multilabel_margin_counts_listed_classes,
     "zero_when_every_margin_is_met"),
    ("multilabel_margin_loss", multilabel_margin_clamped_scores, "logit_shift_invariance"),
    ("multilabel_margin_loss", multilabel_margin_skips_minus_one, "matches_reference"),
    ("iou_loss", iou_loss_hardcoded_eps, "scale_invariant"),
    ("iou_loss", iou_loss_union_without_subtracting, "identical_boxes_give_zero"),
    ("generalized_box_iou_loss", giou_loss_penalty_sign, "giou_at_least_iou_loss"),
    ("generalized_box_iou_loss", giou_loss_square_enclosure,
     "giou_equals_iou_when_one_box_contains_the_other"),
    ("generalized_box_iou_loss", giou_loss_unnormalised_penalty, "giou_at_least_minus_one"),
    ("distance_box_iou_loss", diou_loss_gt_diagonal, "symmetric_in_the_two_boxes"),
    ("distance_box_iou_loss", diou_loss_width_as_centre, "translation_invariant"),
    ("distance_box_iou_loss", diou_loss_penalty_sign, "diou_at_least_iou_loss"),
    ("complete_box_iou_loss", ciou_loss_aspect_sign, "ciou_at_least_iou_loss"),
    ("box_iou", box_iou_unclamped, "matches_reference"),
    ("box_iou", box_iou_first_area_twice, "pairwise_symmetric"),
    ("box_iou", box_iou_first_area_twice, "iou_at_most_one"),
    ("generalized_box_iou", generalized_box_iou_penalty_sign, "giou_at_most_iou"),
    ("generalized_box_iou", generalized_box_iou_penalty_sign, "matches_reference"),
    ("generalized_box_iou_loss", giou_loss_detached_enclosure,
     "disjoint_gradient_pulls_boxes_together"),
    ("generalized_box_iou_loss", giou_loss_penalty_sign, "disjoint_boxes_have_negative_giou"),
    ("distance_box_iou_loss", diou_loss_detached_distance,
     "disjoint_gradient_pulls_boxes_together"),
    ("complete_box_iou_loss", ciou_loss_detached_distance,
     "disjoint_gradient_pulls_boxes_together"),
    ("soft_dice_loss", dice_jaccard_denominator, "dice_is_2j_over_1_plus_j_on_hard_masks"),
    ("soft_dice_loss", dice_seed004_prediction_with_itself, "matches_reference"),
    ("tversky_loss", tversky_without_tp, "tversky_half_is_dice"),
    ("tversky_loss", tversky_true_negatives, "tversky_one_is_jaccard"),
    ("dice_ce_loss", dice_ce_sigmoid_dice, "lambda_ce_zero_is_dice"),
    ("dice_ce_loss", dice_ce_smoothed_ce, "lambda_dice_zero_is_cross_entropy"),
    ("dice_ce_loss", dice_ce_weights_swapped, "matches_reference"),
    ("lovasz_softmax", lovasz_softmax_present_by_identity,
     "equals_one_minus_iou_on_one_hot_predictions"),
    ("lovasz_softmax", lovasz_softmax_ascending, "matches_reference"),
    ("lovasz_hinge", lovasz_hinge_undifferenced_grad, "equals_one_minus_iou_on_unit_errors"),
    ("lovasz_hinge", lovasz_hinge_undifferenced_grad, "matches_reference"),
    ("jaccard_index", jaccard_index_empty_is_zero, "matches_reference"),
    ("jaccard_index", jaccard_index_recall, "symmetric_without_ignored_pixels"),
    ("jaccard_index", jaccard_index_edits_labels, "no_input_mutation"),
    ("ctc_loss", ctc_skips_between_repeats, "the_shortest_alignment_is_the_only_one"),
    ("ctc_loss", ctc_skips_between_repeats, "matches_reference"),
    ("ctc_loss", ctc_renormalizes, "raising_a_step_lowers_the_loss_by_as_much"),
    ("ctc_loss", ctc_reads_every_step, "padding_changes_nothing"),
    ("ctc_loss", ctc_blank_is_zero, "renaming_the_blank_changes_nothing"),
    ("ctc_loss", ctc_mean_over_labels, "reduction_consistency"),
]

# Keep the names importable for reproducers (tests/ is on sys.path under pytest).
__all__ = [name for name in dir() if not name.startswith("_")]
_ = balanced


def ce_mean_over_every_target(input, target, weight=None, ignore_index=-100, reduction="mean",
                              label_smoothing=0.0):
    """Cross-entropy whose 'mean' divides by every target, ignored ones and weights aside:
    0 (not NaN) when every target is ignored, and a wrong mean wherever one is ignored or
    the classes are weighted. Two defects in one cell."""
    out = F.cross_entropy(input, target, weight=weight, ignore_index=ignore_index,
                          reduction="none", label_smoothing=label_smoothing)
    if reduction != "mean":
        return out if reduction == "none" else out.sum()
    return out.sum() / max(out.numel(), 1)


def ce_smooths_by_default(input, target, weight=None, ignore_index=-100, reduction="mean",
                          label_smoothing=0.1):
    """torch's cross-entropy with timm's default smoothing of 0.1: right whenever the caller
    passes label_smoothing, wrong whenever the caller leaves it out."""
    return F.cross_entropy(input, target, weight=weight, ignore_index=ignore_index,
                           reduction=reduction, label_smoothing=label_smoothing)
