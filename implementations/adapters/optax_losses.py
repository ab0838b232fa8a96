"""optax.losses (JAX) under the canonical torch calls: a port outside torch, values and gradients.

The bridge is conformance.bridges' JAX bridge, the one `check(fn, spec, framework="jax")`
uses. Each call hands the torch tensors to JAX as arrays of the same dtype (bfloat16 by
way of float32, which NumPy lacks), calls the optax function under jax.jit (as the training
steps that use optax call it), and returns its result as a torch tensor of the dtype JAX
computed, on the input's device. Nothing is cast to hide what optax computes: were it to return
float32 for float16 inputs, the target would too. Gradients come from optax as well: the
backward pass is `jax.vjp` of the same function, jitted too, taken with respect to the floating
inputs that require grad (integer labels get none). Per-sample losses run on their samples laid
out as rows padded to one of a few counts, so that the many shapes drawn share a few compiled
programs; padding and slicing are torch ops, so no gradient reaches the padding.

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
  alpha = beta = 1/2 with s as it is: (I + s) / ((P + G) / 2 + s), the soft_dice_loss variant
  smoothing='tversky', which the adapter declares (conformance.variants). optax wants
  (N, *spatial, C) one-hot targets: the class axis 1 goes to the end and a label map is
  one-hot encoded over C (the spec's own reading of a label map). `axis` is the summed axes:
  the batch and space (per_image=False) or space only (per_image=True). optax reduces over
  classes only, so per_image=True has 'none' alone.
  optax applies softmax over C > 1 channels and a sigmoid to a single channel, so 'softmax' on
  one channel and 'sigmoid' on several are not applicable. ignore_background is
  include_background=False on 2+ channels; optax has no ignore_index, no classes='present' or
  class lists (other than every class in order), and no squared Dice form.

Not mapped: optax.losses.hinge_loss is max(0, 1 - y x) with y in {-1, 1}; no spec here is that
loss (hinge_embedding_loss is x or max(0, margin - x); margin_ranking_loss needs x1 - x2 formed
by the adapter). optax has no softmax focal loss, no L1 or smooth-L1 loss, and no NLL loss.

A parameter the caller leaves out is left out of optax's call (LIBRARY_DEFAULT): optax's
defaults are what is checked (dice_loss's smooth 1.0 and per-image axes, sigmoid_focal_loss's
alpha=None; implementations/deviations.toml records each difference).

JAX runs on the CPU, with 64-bit types enabled around each call only (conformance.bridges).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

import torch

from conformance.bridges import jax_call, jax_modules
from conformance.guard import NotApplicable
from implementations.adapters import LIBRARY_DEFAULT, adapts, given
from implementations.adapters.padding import bucket, padded_rows
from implementations.adapters.region_call import RegionCall, region_adapter
from implementations.sources import LibraryMissing, installed

_LIBRARY = {"library": "optax", "requires": ("jax", "optax")}


@functools.cache
def _optax() -> Any:
    """optax.losses, imported on the first call of an adapter."""
    for name in _LIBRARY["requires"]:
        if not installed(name):
            raise LibraryMissing(f"{name} is not installed")
    return importlib.import_module("optax").losses


def _call(fn: Callable[..., Any], *tensors: torch.Tensor, static: dict[str, Any] | None = None,
          **dynamic: Any) -> torch.Tensor:
    """fn(*tensors, **static, **dynamic) computed by JAX under jax.jit, as the training steps
    that use optax call it: jitting compiles a call once for each input shape, where JAX's
    op-by-op mode compiles each primitive of the forward and of the backward anew (three to
    four times the cost here). `fn` is a module-level function (the compiled code is cached
    on it), `static` its parameters that change the computation's structure, `dynamic` its
    numbers (traced: a new value reuses the code). The bridge is conformance.bridges'."""
    return jax_call(fn, *tensors, static=static, jit=True, **dynamic)


def _elementwise_call(fn: Callable[..., Any], *tensors: torch.Tensor,
                      static: dict[str, Any] | None = None, **dynamic: Any) -> torch.Tensor:
    """fn of an elementwise optax loss, on inputs of one shape flattened and padded with zeros
    to one of a few lengths (`bucket`), so that the many shapes drawn share a few compiled
    programs.
    Inputs of different shapes go to optax as they are: its broadcasting is its own."""
    shape = tensors[0].shape
    if any(t.shape != shape for t in tensors):
        return _call(fn, *tensors, static=static, **dynamic)
    n = tensors[0].numel()
    padded = [padded_rows(t.reshape(-1), bucket(n)) for t in tensors]
    return _call(fn, *padded, static=static, **dynamic)[:n].reshape(shape)


def _rowwise_call(fn: Callable[..., Any], input: torch.Tensor, target: torch.Tensor,
                  class_axis: int) -> torch.Tensor:
    """fn of a per-sample optax loss with the classes on its last axis, on torch's layout with
    the classes on `class_axis`: every sample becomes a row of a (rows, C) matrix padded to one of a
    few row counts (`bucket`) (each row's loss is its own), and the output gets torch's
    per-sample shape back. A target whose samples do not line up with the input's goes to optax
    as it is, broadcast by optax's own rules."""
    logits = input.movedim(class_axis, -1)
    per_sample = logits.shape[:-1]
    dense = target.is_floating_point()
    labels = target.movedim(class_axis, -1) if dense else target
    if labels.shape != (logits.shape if dense else per_sample):
        return _call(fn, logits, labels)
    n = per_sample.numel()
    rows = [padded_rows(t.reshape(n, *t.shape[len(per_sample):]), bucket(n))
            for t in (logits, labels)]
    return _call(fn, *rows)[:n].reshape(per_sample)


def _elementwise_only(reduction: str, name: str) -> None:
    if reduction != "none":
        raise NotApplicable(f"optax's {name} is elementwise: it has no reduction {reduction!r}")


# --------------------------------------------------------------------------- classification


@adapts("sigmoid_focal_loss", reductions=("none",), **_LIBRARY)
def sigmoid_focal_loss(inputs: torch.Tensor, targets: torch.Tensor,
                       alpha: float = LIBRARY_DEFAULT, gamma: float = LIBRARY_DEFAULT,
                       reduction: str = "none") -> torch.Tensor:
    _elementwise_only(reduction, "sigmoid_focal_loss")
    # torchvision disables alpha with a negative value, optax with None.
    if alpha is not LIBRARY_DEFAULT and alpha < 0:
        return _elementwise_call(_optax().sigmoid_focal_loss, inputs, targets,
                                 static={"alpha": None}, **given(gamma=gamma))
    return _elementwise_call(_optax().sigmoid_focal_loss, inputs, targets,
                             **given(alpha=alpha, gamma=gamma))


@adapts("binary_cross_entropy_with_logits", reductions=("none",), **_LIBRARY)
def binary_cross_entropy_with_logits(input: torch.Tensor, target: torch.Tensor,
                                     weight: torch.Tensor | None = None, reduction: str = "mean",
                                     pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    _elementwise_only(reduction, "sigmoid_binary_cross_entropy")
    if weight is not None or pos_weight is not None:
        raise NotApplicable("optax's sigmoid_binary_cross_entropy has no weight or pos_weight")
    return _elementwise_call(_optax().sigmoid_binary_cross_entropy, input, target)


@adapts("cross_entropy", reductions=("none",), **_LIBRARY)
def cross_entropy(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                  ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> torch.Tensor:
    _elementwise_only(reduction, "softmax cross-entropy")
    if weight is not None:
        raise NotApplicable("optax's softmax cross-entropy has no class weights")
    if label_smoothing:
        raise NotApplicable("optax's label smoothing (optax.smooth_labels) is a separate step,"
                            " not part of its cross-entropy")
    class_axis = 0 if input.dim() == 1 else 1  # torch's; optax's is the last
    if target.is_floating_point():
        return _rowwise_call(_optax().softmax_cross_entropy, input, target, class_axis)
    if bool((target == ignore_index).any()):
        raise NotApplicable("optax's softmax cross-entropy has no ignore_index")
    return _rowwise_call(_optax().softmax_cross_entropy_with_integer_labels, input, target,
                         class_axis)


@adapts("kl_div", reductions=("none", "sum"), **_LIBRARY)
def kl_div(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean",
           log_target: bool = False) -> torch.Tensor:
    # optax sums the pointwise terms over `axis`: every axis is 'sum', no axis is 'none'.
    if reduction not in ("none", "sum"):
        raise NotApplicable(f"optax's kl_divergence sums over axes: no reduction {reduction!r}")
    kl = (_optax().kl_divergence_with_log_targets if log_target
          else _optax().kl_divergence)
    if reduction == "none":  # pointwise: the padded layout changes nothing
        return _elementwise_call(kl, input, target, static={"axis": ()})
    if input.shape == target.shape:
        # Its sum over every axis, taken over the elements laid out as one axis, so that
        # inputs of one size share compiled code.
        input, target = input.reshape(-1), target.reshape(-1)
    return _call(kl, input, target, static={"axis": None})


# --------------------------------------------------------------------------- regression


@adapts("huber_loss", reductions=("none",), **_LIBRARY)
def huber_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean",
               delta: float = LIBRARY_DEFAULT) -> torch.Tensor:
    _elementwise_only(reduction, "huber_loss")
    return _elementwise_call(_optax().huber_loss, input, target, **given(delta=delta))


@adapts("mse_loss", reductions=("none",), **_LIBRARY)
def mse_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    _elementwise_only(reduction, "squared_error")
    return _elementwise_call(_optax().squared_error, input, target)


# --------------------------------------------------------------------------- segmentation


def _region(call: RegionCall) -> torch.Tensor:
    input, target, classes, per_image = call.input, call.target, call.classes, call.per_image
    num_classes = input.shape[1]
    if call.form != "standard":
        raise NotApplicable("optax's dice_loss has no squared form")
    if per_image is True and call.reduction != "none":
        raise NotApplicable("optax's dice_loss reduces over classes only: per image it has"
                            f" reduction 'none' alone, not {call.reduction!r}")
    if call.activation is not LIBRARY_DEFAULT and (
            (call.activation == "softmax") != (num_classes > 1)):
        raise NotApplicable("optax's dice_loss applies softmax to 2+ channels and a sigmoid to"
                            f" one: not {call.activation!r} on {num_classes}")
    if isinstance(classes, str):
        if classes != "all":
            raise NotApplicable(f"optax's dice_loss has no classes={classes!r}")
        drop_background = (LIBRARY_DEFAULT if call.include_background is LIBRARY_DEFAULT
                           else not call.include_background)
        if drop_background is True and num_classes == 1:
            raise NotApplicable("optax's dice_loss keeps the only class of one channel")
    elif list(classes) == list(range(num_classes)):
        drop_background = False  # a list is not filtered by include_background
    else:
        raise NotApplicable("optax's dice_loss has no class selection")
    label_map = not target.is_floating_point()
    if label_map and call.ignore_index is not None and bool((target == call.ignore_index).any()):
        raise NotApplicable("optax's dice_loss has no ignore_index")
    target_space = 1 if label_map else 2  # where the target's spatial axes start
    if input.shape[2:] == target.shape[target_space:]:
        # The spatial axes as one (a layout: optax sums over them all the same), so that images
        # of one pixel count share compiled code. Mismatched shapes go to optax as they are.
        input, target = _pixels_as_one(input, 2), _pixels_as_one(target, target_space)
    # The summed axes in the (N, *spatial, C) layout; left out, optax's default (space only).
    summed = (LIBRARY_DEFAULT if per_image is LIBRARY_DEFAULT
              else tuple(range(1 if per_image else 0, input.dim() - 1)))
    return _call(_dice_loss_on_torch_layout, input, target,
                 static={"num_classes": num_classes if label_map else None,
                         **given(reduction=call.reduction, ignore_background=drop_background,
                                 axis=summed)},
                 **given(smooth=call.smooth, alpha=call.alpha, beta=call.beta))


def _pixels_as_one(tensor: torch.Tensor, first: int) -> torch.Tensor:
    """The axes from `first` on as one axis (a new one of length 1 where there are none)."""
    return tensor.flatten(first) if tensor.dim() > first else tensor.unsqueeze(-1)


def _dice_loss_on_torch_layout(x: Any, y: Any, num_classes: int | None, **options: Any) -> Any:
    """optax's dice_loss of torch's (N, C, *spatial) scores and (N, C, *spatial) targets or
    (N, *spatial) label map (one-hot encoded over num_classes, the spec's own reading)."""
    jax, jnp = jax_modules().jax, jax_modules().jnp
    x = jnp.moveaxis(x, 1, -1)
    y = jnp.moveaxis(y, 1, -1) if num_classes is None else jax.nn.one_hot(y, num_classes,
                                                                           dtype=x.dtype)
    return _optax().dice_loss(x, y, **options)


# optax's dice_loss defaults these itself (its Tversky weights too).
_DICE_DEFAULTS = ("activation", "smooth", "include_background", "per_image", "reduction")
# optax's dice_loss is the Tversky index, smoothing included: its Dice smooths the halved form.
# It divides as written: a 0 / 0 score (smooth 0) is NaN.
soft_dice_loss = region_adapter(
    "soft_dice_loss", library_defaults=_DICE_DEFAULTS,
    conventions={"smoothing": "tversky", "empty_score": "nan"}, **_LIBRARY)(_region)
soft_jaccard_loss = region_adapter("soft_jaccard_loss", library_defaults=_DICE_DEFAULTS,
                                   conventions={"empty_score": "nan"}, **_LIBRARY)(_region)
tversky_loss = region_adapter("tversky_loss", library_defaults=(*_DICE_DEFAULTS, "alpha", "beta"),
                              conventions={"empty_score": "nan"}, **_LIBRARY)(_region)
