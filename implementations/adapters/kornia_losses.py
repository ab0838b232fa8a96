"""kornia.losses under the canonical calls.

- binary_focal_loss_with_logits is the sigmoid focal loss; it spells a disabled alpha as None
  (torchvision: a negative alpha) and requires a (B, C, *) layout, so inputs with fewer than two
  dimensions are given a leading batch dimension, and 'none' outputs lose it again.
- focal_loss is the softmax focal loss on (B, C, *) logits and (B, *) labels. The spec's
  per-class alpha is kornia's `weight` (kornia's scalar alpha is the per-class vector
  [1 - alpha, alpha, ..., alpha]); its 'none' is a (B, C, *) map whose target slice holds the
  loss and whose other slices are 0, read back as the (B, *) losses by a sum over the classes.
  Its 'mean', which divides by every element of that map, is passed on as it is: the declared
  convention mean_over='elements'.
- lovasz_hinge_loss scores one logit channel (B, 1, H, W) against labels (B, H, W) per image;
  it has no ignore_index and no batch-wide form (NotApplicable), and other spatial layouts are
  given as (B, 1, 1, pixels).
- lovasz_softmax_loss scores logits (B, C, H, W), C > 1, against labels (B, H, W): softmax over
  C inside, each image on its own, the mean over all C classes. It has no parameters for
  either (its behaviour is what an omitted `per_image` or `classes` gets here; 'present' or
  a list of classes, per_image=False, ignore_index and C = 1 are NotApplicable), and other
  spatial layouts are given as (B, C, 1, pixels).
"""

from __future__ import annotations

import torch

from conformance.guard import NotApplicable
from implementations.adapters import LIBRARY_DEFAULT, adapts, alpha_or_none, given
from implementations.sources import Sources

_KORNIA = Sources("kornia.losses", ("focal", "lovasz_hinge", "lovasz_softmax"))


# kornia weighs each class term of a fractional target on its own (documented).
@adapts("sigmoid_focal_loss", library="kornia", conventions={"soft_targets": "per_term"})
def sigmoid_focal_loss(inputs: torch.Tensor, targets: torch.Tensor,
                       alpha: float = LIBRARY_DEFAULT, gamma: float = LIBRARY_DEFAULT,
                       reduction: str = LIBRARY_DEFAULT) -> torch.Tensor:
    shape = inputs.shape
    if inputs.dim() < 2:
        inputs, targets = inputs.reshape(1, -1), targets.reshape(1, -1)
    alpha = alpha_or_none(alpha)
    out = _KORNIA["focal"].binary_focal_loss_with_logits(
        inputs, targets, **given(alpha=alpha, gamma=gamma, reduction=reduction))
    return out.reshape(shape) if out.shape == inputs.shape else out  # 'none' its shape back


# kornia's 'mean' divides by every element of its (B, C, *) map (its Convention block).
@adapts("softmax_focal_loss", library="kornia", conventions={"mean_over": "elements"})
def softmax_focal_loss(input: torch.Tensor, target: torch.Tensor,
                       alpha: torch.Tensor | None = LIBRARY_DEFAULT,
                       gamma: float = LIBRARY_DEFAULT, ignore_index: int = LIBRARY_DEFAULT,
                       reduction: str = LIBRARY_DEFAULT) -> torch.Tensor:
    unbatched = input.dim() == 1
    if unbatched:  # kornia takes (B, C, *): one sample becomes a batch of one
        input, target = input.unsqueeze(0), target.unsqueeze(0)
    # kornia's own alpha (a scalar) has no default and is not the spec's per-class alpha,
    # which is kornia's weight.
    out = _KORNIA["focal"].focal_loss(input, target, alpha=None, **given(
        gamma=gamma, reduction=reduction, weight=alpha, ignore_index=ignore_index))
    if reduction != "none":
        return out
    out = out.sum(1)
    return out.squeeze(0) if unbatched else out


@adapts("lovasz_hinge", library="kornia")
def lovasz_hinge(input: torch.Tensor, target: torch.Tensor, per_image: bool = True,
                 ignore_index: int | None = None) -> torch.Tensor:
    if not per_image:
        raise NotApplicable("kornia's lovasz_hinge_loss scores each image (per_image=True) only")
    if ignore_index is not None:
        raise NotApplicable("kornia's lovasz_hinge_loss has no ignore_index")
    if input.dim() < 2:
        raise NotApplicable("kornia's lovasz_hinge_loss takes a batch of images")
    if input.dim() != 3:  # (B, *spatial) as (B, 1, 1, pixels): the loss reads pixels only
        input, target = input.flatten(1).unsqueeze(1), target.flatten(1).unsqueeze(1)
    return _KORNIA["lovasz_hinge"].lovasz_hinge_loss(input.unsqueeze(1), target)


@adapts("lovasz_softmax", library="kornia")
def lovasz_softmax(input: torch.Tensor, target: torch.Tensor, classes: str = LIBRARY_DEFAULT,
                   per_image: bool = LIBRARY_DEFAULT, ignore_index: int | None = None,
                   ) -> torch.Tensor:
    if classes not in (LIBRARY_DEFAULT, "all"):
        raise NotApplicable("kornia's lovasz_softmax_loss averages over every class"
                            " (classes='all') only")
    if per_image not in (LIBRARY_DEFAULT, True):
        raise NotApplicable("kornia's lovasz_softmax_loss scores each image (per_image=True)"
                            " only")
    if ignore_index is not None:
        raise NotApplicable("kornia's lovasz_softmax_loss has no ignore_index")
    if input.dim() < 3 or input.shape[1] < 2:
        raise NotApplicable("kornia's lovasz_softmax_loss takes a batch of images with C > 1")
    if input.dim() != 4:  # (B, C, *spatial) as (B, C, 1, pixels): the loss reads pixels only
        input, target = input.flatten(2).unsqueeze(2), target.flatten(1).unsqueeze(1)
    return _KORNIA["lovasz_softmax"].lovasz_softmax_loss(input, target)
