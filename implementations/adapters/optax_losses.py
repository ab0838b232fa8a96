"""optax.losses (JAX) under the canonical torch calls: a port outside torch, values and gradients.

The bridge. Each call hands the torch tensors to JAX as arrays of the same dtype (bfloat16 by
way of float32, which NumPy lacks), calls the optax function, and returns its result as a torch
tensor of the dtype JAX computed, on the input's device. Nothing is cast to hide what optax
computes: were it to return float32 for float16 inputs, the target would too. Gradients come
from optax as well: the backward pass is `jax.vjp` of the same function, taken with respect to
the floating inputs that require grad (integer labels get none).

The mapping (names, layouts and parameter spellings only; optax computes the value):

- sigmoid_focal_loss -> optax.losses.sigmoid_focal_loss(logits, labels, alpha=, gamma=). A
  disabled alpha is torchvision's negative alpha and optax's None.
- binary_cross_entropy_with_logits -> optax.losses.sigmoid_binary_cross_entropy. optax has no
  weight or pos_weight.
- cross_entropy -> optax.losses.softmax_cross_entropy (probability targets) or
  softmax_cross_entropy_with_integer_labels (class indices). torch puts the classes on axis 1
  ((N, C, d1, ...)), or axis 0 for an unbatched (C,) input; optax on the last axis, so the class
  axis is moved to the end on the JAX side, and the per-sample output has torch's shape. optax
  has no class weights and no ignore_index; its label smoothing (optax.smooth_labels) is a
  separate step on the targets, not part of the loss, so it is not composed here.
- huber_loss -> optax.losses.huber_loss(predictions, targets, delta=): 0.5 e^2 for
  |e| <= delta, delta (|e| - 0.5 delta) beyond, torch's definition.
- mse_loss -> optax.losses.squared_error, (p - t)^2. optax.losses.l2_loss is half of that
  (0.5 (p - t)^2, Bishop's convention), so it is not torch's mse_loss.
- kl_div -> optax.losses.kl_divergence(log_predictions, targets, axis=) (log_target=True:
  kl_divergence_with_log_targets). optax sums the pointwise terms p (log p - log q) over `axis`:
  axis=None sums every axis, which is torch's reduction 'sum', and axis=() sums none, which is
  torch's pointwise 'none'. 'mean' and 'batchmean' would be a division by the adapter.
- soft_dice_loss, soft_jaccard_loss, tversky_loss -> optax.losses.dice_loss, which scores
  (I + s) / (I + alpha (P - I) + beta (G - I) + s) per class:
  Tversky is alpha, beta and s as they are; Jaccard is alpha = beta = 1; Dice is
  alpha = beta = 1/2 with s = smooth / 2, since (I + s/2) / ((P + G) / 2 + s/2) =
  (2 I + smooth) / (P + G + smooth). optax wants (N, *spatial, C) one-hot targets: the class
  axis 1 goes to the end and a label map is one-hot encoded over C (the spec's own reading of
  a label map). `axis` is the summed axes: the batch and space (per_image=False) or space only
  (per_image=True). optax reduces over classes only, so per_image=True has 'none' alone.
  optax applies softmax over C > 1 channels and a sigmoid to a single channel, so 'softmax' on
  one channel and 'sigmoid' on several are not applicable. ignore_background is
  include_background=False on 2+ channels; optax has no ignore_index, no classes='present' or
  class lists (other than every class in order), and no squared Dice form.

Not mapped: optax.losses.hinge_loss is max(0, 1 - y x) with y in {-1, 1}; no spec here is that
loss (hinge_embedding_loss is x or max(0, margin - x); margin_ranking_loss needs x1 - x2 formed
by the adapter). optax has no softmax focal loss, no L1 or smooth-L1 loss, and no NLL loss.

JAX runs on the CPU, with 64-bit types enabled for the whole process (see below).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from conformance.guard import NotApplicable
from implementations.sources import LibraryMissing

for _name in ("jax", "optax"):
    if importlib.util.find_spec(_name) is None:
        raise LibraryMissing(f"{_name} is not installed")

import jax  # noqa: E402

# Without x64, JAX silently computes float64 (and int64) input in 32 bits: float64 cases
# would check float32 arithmetic. This flag is process-wide.
jax.config.update("jax_enable_x64", True)
# The CPU only: never look for (or initialize) an accelerator. Arrays are also placed on the
# CPU device explicitly, in case another module initialized JAX's backends first.
jax.config.update("jax_platforms", "cpu")

import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

_CPU = jax.devices("cpu")[0]


# --------------------------------------------------------------------------- the bridge


def _to_jax(tensor: torch.Tensor) -> Any:
    """The tensor as a JAX array on the CPU, of the same dtype."""
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        # NumPy has no bfloat16; float32 holds every bfloat16 value exactly.
        return jax.device_put(tensor.float().numpy(), _CPU).astype(jnp.bfloat16)
    return jax.device_put(tensor.numpy(), _CPU)


def _to_torch(array: Any, device: torch.device) -> torch.Tensor:
    """The JAX array as a torch tensor of the same dtype on `device`."""
    if array.dtype == jnp.bfloat16:
        return torch.from_numpy(np.array(array.astype(jnp.float32))).to(device, torch.bfloat16)
    return torch.from_numpy(np.array(array)).to(device)


class _OptaxCall(torch.autograd.Function):
    """fn(*arrays) in JAX as a torch op; backward is the vector-Jacobian product of fn."""

    @staticmethod
    def forward(ctx: Any, fn: Callable[..., Any], *tensors: torch.Tensor) -> torch.Tensor:
        arrays = [_to_jax(t) for t in tensors]
        ctx.fn, ctx.arrays, ctx.device = fn, arrays, tensors[0].device
        return _to_torch(fn(*arrays), tensors[0].device)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        arrays = ctx.arrays
        wanted = [i for i in range(len(arrays)) if ctx.needs_input_grad[i + 1]]
        grads: list[torch.Tensor | None] = [None] * len(arrays)
        if not wanted:
            return (None, *grads)

        def of_wanted(*chosen: Any) -> Any:
            args = list(arrays)
            for i, array in zip(wanted, chosen, strict=True):
                args[i] = array
            return ctx.fn(*args)

        _, pullback = jax.vjp(of_wanted, *(arrays[i] for i in wanted))
        for i, grad in zip(wanted, pullback(_to_jax(grad_output)), strict=True):
            grads[i] = _to_torch(grad, ctx.device)
        return (None, *grads)


def _call(fn: Callable[..., Any], *tensors: torch.Tensor) -> torch.Tensor:
    return _OptaxCall.apply(fn, *tensors)


def _elementwise_call(fn: Callable[..., Any], *tensors: torch.Tensor) -> torch.Tensor:
    """fn of an elementwise optax loss, on inputs of one shape flattened and padded with zeros
    to a power-of-two length. JAX compiles anew for every input shape (about a second a shape
    on a 2-core machine, three quarters of the matrix's time); padded shapes reuse compiled
    code. Padding and slicing are torch ops, so the real elements' values and gradients are
    optax's own and the padding gets no gradient. Inputs of different shapes go to optax as
    they are: its broadcasting is its own."""
    shape = tensors[0].shape
    if any(t.shape != shape for t in tensors):
        return _call(fn, *tensors)
    n = tensors[0].numel()
    size = 1 << max(0, n - 1).bit_length()
    padded = [torch.nn.functional.pad(t.reshape(-1), (0, size - n)) for t in tensors]
    return _call(fn, *padded)[:n].reshape(shape)


def _elementwise_only(reduction: str, name: str) -> None:
    if reduction != "none":
        raise NotApplicable(f"optax's {name} is elementwise: it has no reduction {reduction!r}")


# --------------------------------------------------------------------------- classification


def sigmoid_focal_loss(inputs: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25,
                       gamma: float = 2.0, reduction: str = "none") -> torch.Tensor:
    _elementwise_only(reduction, "sigmoid_focal_loss")
    # torchvision disables alpha with a negative value, optax with None.
    a = None if alpha < 0 else alpha
    return _elementwise_call(
        lambda x, y: optax.losses.sigmoid_focal_loss(x, y, alpha=a, gamma=gamma), inputs, targets)


def binary_cross_entropy_with_logits(input: torch.Tensor, target: torch.Tensor,
                                     weight: torch.Tensor | None = None, reduction: str = "mean",
                                     pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    _elementwise_only(reduction, "sigmoid_binary_cross_entropy")
    if weight is not None or pos_weight is not None:
        raise NotApplicable("optax's sigmoid_binary_cross_entropy has no weight or pos_weight")
    return _elementwise_call(optax.losses.sigmoid_binary_cross_entropy, input, target)


def cross_entropy(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                  ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> torch.Tensor:
    _elementwise_only(reduction, "softmax cross-entropy")
    if weight is not None:
        raise NotApplicable("optax's softmax cross-entropy has no class weights")
    if label_smoothing:
        raise NotApplicable("optax's label smoothing (optax.smooth_labels) is a separate step,"
                            " not part of its cross-entropy")
    axis = 0 if input.dim() == 1 else 1  # torch's class axis; optax's is the last

    if target.is_floating_point():
        return _call(lambda x, p: optax.losses.softmax_cross_entropy(
            jnp.moveaxis(x, axis, -1), jnp.moveaxis(p, axis, -1)), input, target)
    if bool((target == ignore_index).any()):
        raise NotApplicable("optax's softmax cross-entropy has no ignore_index")
    return _call(lambda x, y: optax.losses.softmax_cross_entropy_with_integer_labels(
        jnp.moveaxis(x, axis, -1), y), input, target)


def kl_div(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean",
           log_target: bool = False) -> torch.Tensor:
    # optax sums the pointwise terms over `axis`: every axis is 'sum', no axis is 'none'.
    if reduction not in ("none", "sum"):
        raise NotApplicable(f"optax's kl_divergence sums over axes: no reduction {reduction!r}")
    kl = (optax.losses.kl_divergence_with_log_targets if log_target
          else optax.losses.kl_divergence)
    if reduction == "none":  # pointwise: the padded layout changes nothing
        return _elementwise_call(lambda log_q, p: kl(log_q, p, axis=()), input, target)
    # A sum over padding would reorder optax's own summation: as it is.
    return _call(lambda log_q, p: kl(log_q, p, axis=None), input, target)


# --------------------------------------------------------------------------- regression


def huber_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean",
               delta: float = 1.0) -> torch.Tensor:
    _elementwise_only(reduction, "huber_loss")
    return _elementwise_call(lambda p, t: optax.losses.huber_loss(p, t, delta=delta), input,
                             target)


def mse_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    _elementwise_only(reduction, "squared_error")
    return _elementwise_call(optax.losses.squared_error, input, target)


# --------------------------------------------------------------------------- segmentation


def _region(input: torch.Tensor, target: torch.Tensor, activation: str, smooth: float,
            alpha: float, beta: float, include_background: bool, classes: object,
            per_image: bool, ignore_index: int | None, reduction: str) -> torch.Tensor:
    num_classes = input.shape[1]
    if per_image and reduction != "none":
        raise NotApplicable("optax's dice_loss reduces over classes only: per image it has"
                            f" reduction 'none' alone, not {reduction!r}")
    if (activation == "softmax") != (num_classes > 1):
        raise NotApplicable("optax's dice_loss applies softmax to 2+ channels and a sigmoid to"
                            f" one: not {activation!r} on {num_classes}")
    if isinstance(classes, str):
        if classes != "all":
            raise NotApplicable(f"optax's dice_loss has no classes={classes!r}")
        drop_background = not include_background
        if drop_background and num_classes == 1:
            raise NotApplicable("optax's dice_loss keeps the only class of one channel")
    elif list(classes) == list(range(num_classes)):  # type: ignore[call-overload]
        drop_background = False  # a list is not filtered by include_background
    else:
        raise NotApplicable("optax's dice_loss has no class selection")
    label_map = not target.is_floating_point()
    if label_map and ignore_index is not None and bool((target == ignore_index).any()):
        raise NotApplicable("optax's dice_loss has no ignore_index")
    summed = tuple(range(1 if per_image else 0, input.dim() - 1))  # in the (N, *spatial, C) layout

    def loss(x: Any, y: Any) -> Any:
        x = jnp.moveaxis(x, 1, -1)
        y = jax.nn.one_hot(y, num_classes, dtype=x.dtype) if label_map else jnp.moveaxis(y, 1, -1)
        return optax.losses.dice_loss(
            x, y, smooth=smooth, alpha=alpha, beta=beta, apply_softmax=True,
            reduction=reduction, ignore_background=drop_background, axis=summed)

    return _call(loss, input, target)


def soft_dice_loss(input: torch.Tensor, target: torch.Tensor, activation: str = "softmax",
                   form: str = "standard", smooth: float = 0.0,
                   include_background: bool = True, classes: object = "all",
                   per_image: bool = False, ignore_index: int | None = None,
                   reduction: str = "mean") -> torch.Tensor:
    if form != "standard":
        raise NotApplicable("optax's dice_loss has no squared form")
    return _region(input, target, activation, smooth / 2, 0.5, 0.5, include_background,
                   classes, per_image, ignore_index, reduction)


def soft_jaccard_loss(input: torch.Tensor, target: torch.Tensor, activation: str = "softmax",
                      smooth: float = 0.0, include_background: bool = True,
                      classes: object = "all", per_image: bool = False,
                      ignore_index: int | None = None, reduction: str = "mean") -> torch.Tensor:
    return _region(input, target, activation, smooth, 1.0, 1.0, include_background, classes,
                   per_image, ignore_index, reduction)


def tversky_loss(input: torch.Tensor, target: torch.Tensor, activation: str = "softmax",
                 alpha: float = 0.5, beta: float = 0.5, smooth: float = 0.0,
                 include_background: bool = True, classes: object = "all",
                 per_image: bool = False, ignore_index: int | None = None,
                 reduction: str = "mean") -> torch.Tensor:
    return _region(input, target, activation, smooth, alpha, beta, include_background, classes,
                   per_image, ignore_index, reduction)


for _fn in (sigmoid_focal_loss, binary_cross_entropy_with_logits, cross_entropy, huber_loss,
            mse_loss):
    _fn.conformance_reductions = ("none",)  # type: ignore[attr-defined]
kl_div.conformance_reductions = ("none", "sum")  # type: ignore[attr-defined]
