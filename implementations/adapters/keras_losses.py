"""keras.losses (Keras 3 on the JAX backend) under the canonical torch calls: values and gradients.

Each target calls one of Keras' loss classes the way a Keras training step does,
`keras.losses.X(reduction=..., dtype=..., **options)(y_true, y_pred)`, inside a JAX function
run by conformance.bridges' JAX bridge (jitted, compiled once per input shape; gradients are
`jax.vjp` of the same function). Three spellings carry over and nothing else:

- reduction: torch's 'none', 'sum' and 'mean' are Keras' None, 'sum' and
  'sum_over_batch_size' (the sum divided by the number of loss values, or by the number of
  unmasked ones where Keras masks, as with ignore_class).
- dtype: the tested dtype. A Keras loss computes in `dtype`, which defaults to
  `keras.config.floatx()` (float32) whatever the inputs are: a float64 case would otherwise
  check float32 arithmetic, and a float16 one would come back as float32. Passing the input's
  dtype is how a Keras user asks for that precision (docs/findings.md, 3v).
- layout: Keras' functional losses average over the last axis (one value per sample), where
  torch's elementwise losses keep every element. Every element becomes a sample of one
  (the inputs flattened to (n, 1)), so Keras' per-sample loss is torch's 'none' reshaped, and
  its 'sum_over_batch_size' is torch's 'mean' over the n elements. Keras' classes go on the last
  axis (channels last): torch's class axis 1 is moved there.

The mapping (names, layouts and parameter spellings; Keras computes every value):

- binary_cross_entropy -> BinaryCrossentropy(from_logits=False); binary_cross_entropy_with_logits
  -> BinaryCrossentropy(from_logits=True). Keras has no per-element weight or pos_weight (its
  sample_weight weighs samples of a batch) and no label smoothing in torch's signature.
- cross_entropy -> CategoricalCrossentropy(from_logits=True, label_smoothing=) for probability
  targets, SparseCategoricalCrossentropy(from_logits=True, ignore_class=ignore_index) for class
  indices. Keras has no class weights and no label smoothing of class indices.
- sigmoid_focal_loss -> BinaryFocalCrossentropy(from_logits=True, gamma=, alpha=,
  apply_class_balancing=): torchvision's alpha >= 0 is Keras' class balancing with that alpha, a
  negative alpha is apply_class_balancing=False.
- softmax_focal_loss -> CategoricalFocalCrossentropy(from_logits=True, gamma=, alpha=) on
  class indices one-hot encoded over C (the spec's own reading of a label). Keras' alpha is one
  number for every class: the spec's alpha=None is Keras' alpha=1.0, a per-class list with one
  value is that value, other lists are not applicable; there is no ignore_index.
- kl_div -> KLDivergence on probabilities: Keras takes q and p, torch log q (and log p with
  log_target), so they are exponentiated by keras.ops.exp inside the Keras computation, as a
  Keras user holding log-probabilities would. 'batchmean' is Keras' per-sample sum over the
  last axis of (N, rest) averaged over N.
- huber_loss -> Huber(delta=), l1_loss -> MeanAbsoluteError, mse_loss -> MeanSquaredError.
- poisson_nll_loss -> Poisson: y_pred - y_true log(y_pred + epsilon), torch's log_input=False,
  full=False with eps = keras.config.epsilon() (1e-7; other values are not applicable).
- soft_dice_loss -> Dice, tversky_loss -> Tversky(alpha=, beta=), soft_jaccard_loss ->
  Tversky(alpha=1, beta=1): Keras scores probabilities, so the spec's activation is
  keras.ops.softmax over the class axis or keras.ops.sigmoid, a Keras op, and its `axis` is the
  summed axes (batch and space, or space per image) in torch's layout. A label map is one-hot
  encoded over C. Keras has no smoothing term (it adds epsilon to the denominator, a convention
  recorded in implementations/deviations.toml), no class selection and no ignore_index.

Not mapped: Hinge and SquaredHinge are max(0, 1 - y x) (squared) with y in {-1, 1}, and
CategoricalHinge is max(0, 1 + max_{j != y} x_j - x_y); no spec here is either (torch's
hinge_embedding_loss is x or max(0, margin - x), its multi_margin_loss sums over the other
classes and divides by C). CosineSimilarity is -cos, not cosine_embedding_loss's 1 - cos.
keras.losses.CTC takes dense padded labels and no lengths: not ctc_loss's call. LogCosh,
MeanAbsolutePercentageError, MeanSquaredLogarithmicError, Circle and
CategoricalGeneralizedCrossEntropy have no spec.

A parameter the caller leaves out is left out of Keras' call (LIBRARY_DEFAULT): Keras' own
defaults are what is checked (BinaryFocalCrossentropy's apply_class_balancing=False).

Keras picks its backend at its first import; conformance.bridges.keras_backend sets
KERAS_BACKEND=jax where it is unset and refuses another backend.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch

from conformance.bridges import jax_call, jax_modules, keras_backend
from conformance.guard import NotApplicable
from implementations.adapters import LIBRARY_DEFAULT, adapts, given
from implementations.adapters.padding import bucket, padded_rows
from implementations.adapters.region_call import RegionCall, region_adapter
from implementations.sources import LibraryMissing, installed

_LIBRARY = {"library": "keras", "requires": ("jax", "keras")}
_REDUCTIONS = {"none": None, "sum": "sum", "mean": "sum_over_batch_size"}


@functools.cache
def _keras() -> Any:
    """Keras on the JAX backend, imported on the first call of an adapter."""
    for name in _LIBRARY["requires"]:
        if not installed(name):
            raise LibraryMissing(f"{name} is not installed")
    return keras_backend()


def _keras_loss(y_pred: Any, y_true: Any, *, loss: str, reduction: str | None,
                **options: Any) -> Any:
    """keras.losses.<loss>(reduction, dtype=y_pred's, **options)(y_true, y_pred) on JAX
    arrays. The loss object is built inside the traced function, as a Keras step builds it
    once and calls it on every batch: its numbers (delta, gamma, alpha) stay traced."""
    keras = _keras()
    instance = getattr(keras.losses, loss)(reduction=reduction, dtype=y_pred.dtype.name,
                                           **options)
    return instance(y_true, y_pred)


def _run(loss: str, y_pred: torch.Tensor, y_true: torch.Tensor, reduction: str,
         static: dict[str, Any] | None = None, **dynamic: Any) -> torch.Tensor:
    """One Keras loss call through the JAX bridge; `static` options change the computation's
    structure (compiled in: Keras branches on them in Python), `dynamic` are its numbers."""
    if reduction not in _REDUCTIONS:
        raise NotApplicable(f"Keras' losses have no reduction {reduction!r}")
    return jax_call(_keras_loss, y_pred, y_true, jit=True,
                    static={"loss": loss, "reduction": _REDUCTIONS[reduction], **(static or {})},
                    **dynamic)


def _per_sample(loss: str, y_pred: torch.Tensor, y_true: torch.Tensor, reduction: str,
                static: dict[str, Any] | None = None, **dynamic: Any) -> torch.Tensor:
    """A Keras loss of samples laid out as rows (y_pred (n, ...), y_true (n, ...)). Keras'
    per-sample losses ('none') run on rows padded to one of a few counts and sliced back;
    a reduction runs on the rows as they are (padding would enter Keras' sum and count)."""
    n = y_pred.shape[0]
    if reduction != "none" or y_true.shape[0] != n:
        return _run(loss, y_pred, y_true, reduction, static, **dynamic)
    rows = bucket(n)
    out = _run(loss, padded_rows(y_pred, rows), padded_rows(y_true, rows), reduction,
               static, **dynamic)
    return out[:n]


def _elementwise(loss: str, input: torch.Tensor, target: torch.Tensor, reduction: str,
                 static: dict[str, Any] | None = None, **dynamic: Any) -> torch.Tensor:
    """An elementwise torch loss as Keras' per-sample loss of samples of one element: Keras
    averages over the last axis, here of length 1. Inputs of different shapes go to Keras
    with that axis added, broadcast by Keras' own rules."""
    if input.shape != target.shape:
        return _run(loss, input.unsqueeze(-1), target.unsqueeze(-1), reduction, static,
                    **dynamic)
    out = _per_sample(loss, input.reshape(-1, 1), target.reshape(-1, 1), reduction, static,
                      **dynamic)
    return out.reshape(input.shape) if reduction == "none" else out


def _classes_last(tensor: torch.Tensor) -> torch.Tensor:
    """torch's class axis (1, or 0 for an unbatched (C,) input) moved to Keras' last axis."""
    return tensor.movedim(0 if tensor.dim() == 1 else 1, -1)


def _rowwise(loss: str, logits: torch.Tensor, labels: torch.Tensor, reduction: str,
             static: dict[str, Any] | None = None, **dynamic: Any) -> torch.Tensor:
    """A per-sample Keras loss with the classes on the last axis, of logits (..., C) and
    labels (...) or (..., C): the samples as rows of an (n, C) matrix, the output in torch's
    per-sample shape."""
    per_sample = logits.shape[:-1]
    dense = labels.is_floating_point()
    if labels.shape != (logits.shape if dense else per_sample):
        return _run(loss, logits, labels, reduction, static, **dynamic)
    n = per_sample.numel()
    out = _per_sample(loss, logits.reshape(n, logits.shape[-1]),
                      labels.reshape(n, *labels.shape[len(per_sample):]), reduction, static,
                      **dynamic)
    return out.reshape(per_sample) if reduction == "none" else out


def _no_weights(**weights: Any) -> None:
    for name, value in weights.items():
        if value is not None:
            raise NotApplicable(f"Keras' loss has no {name} (its sample_weight weighs the"
                                " samples of a batch)")


# --------------------------------------------------------------------------- classification


@adapts("binary_cross_entropy", **_LIBRARY)
def binary_cross_entropy(input: torch.Tensor, target: torch.Tensor,
                         weight: torch.Tensor | None = None,
                         reduction: str = "mean") -> torch.Tensor:
    _no_weights(weight=weight)
    return _elementwise("BinaryCrossentropy", input, target, reduction,
                        static={"from_logits": False})


@adapts("binary_cross_entropy_with_logits", **_LIBRARY)
def binary_cross_entropy_with_logits(input: torch.Tensor, target: torch.Tensor,
                                     weight: torch.Tensor | None = None, reduction: str = "mean",
                                     pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    _no_weights(weight=weight, pos_weight=pos_weight)
    return _elementwise("BinaryCrossentropy", input, target, reduction,
                        static={"from_logits": True})


@adapts("cross_entropy", **_LIBRARY)
def cross_entropy(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                  ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> torch.Tensor:
    _no_weights(weight=weight)
    logits = _classes_last(input)
    if target.is_floating_point():
        # Keras branches on label_smoothing in Python: it is compiled in.
        return _rowwise("CategoricalCrossentropy", logits, _classes_last(target), reduction,
                        static={"from_logits": True, "label_smoothing": float(label_smoothing)})
    if label_smoothing:
        raise NotApplicable("Keras' SparseCategoricalCrossentropy has no label smoothing")
    return _rowwise("SparseCategoricalCrossentropy", logits, target, reduction,
                    static={"from_logits": True, "ignore_class": int(ignore_index)})


@adapts("sigmoid_focal_loss", **_LIBRARY)
def sigmoid_focal_loss(inputs: torch.Tensor, targets: torch.Tensor,
                       alpha: float = LIBRARY_DEFAULT, gamma: float = LIBRARY_DEFAULT,
                       reduction: str = "none") -> torch.Tensor:
    static: dict[str, Any] = {"from_logits": True}
    dynamic = given(gamma=gamma)
    if alpha is not LIBRARY_DEFAULT:
        # torchvision disables alpha with a negative value, Keras with apply_class_balancing.
        static["apply_class_balancing"] = alpha >= 0
        if alpha >= 0:
            dynamic["alpha"] = alpha
    return _elementwise("BinaryFocalCrossentropy", inputs, targets, reduction, static,
                        **dynamic)


@adapts("softmax_focal_loss", **_LIBRARY)
def softmax_focal_loss(input: torch.Tensor, target: torch.Tensor,
                       alpha: Sequence[float] | None = None, gamma: float = LIBRARY_DEFAULT,
                       ignore_index: int = -100, reduction: str = "mean") -> torch.Tensor:
    if bool((target == ignore_index).any()):
        raise NotApplicable("Keras' CategoricalFocalCrossentropy has no ignore_index")
    if alpha is None:
        weight = 1.0  # Keras' spelling of no class weighting
    elif len(set(alpha)) == 1:
        weight = float(alpha[0])
    else:
        raise NotApplicable("Keras' CategoricalFocalCrossentropy has one alpha for every class")
    logits = _classes_last(input)
    return _rowwise("CategoricalFocalCrossentropy", logits,
                    torch.nn.functional.one_hot(target, logits.shape[-1]).to(input.dtype),
                    reduction, {"from_logits": True}, alpha=weight, **given(gamma=gamma))


@adapts("kl_div", reductions=("none", "sum", "mean", "batchmean"), **_LIBRARY)
def kl_div(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean",
           log_target: bool = False) -> torch.Tensor:
    static = {"log_target": bool(log_target)}
    if reduction != "batchmean":
        return _elementwise_kl(input, target, reduction, static)
    if input.dim() < 2 or input.shape != target.shape:
        raise NotApplicable("torch's 'batchmean' of a 1-D input divides by its length; Keras"
                            " reads a 1-D input as one sample")
    # Keras' KL sums each sample's last axis; 'sum_over_batch_size' averages the N sums.
    return jax_call(_kl_of_logs, input.flatten(1), target.flatten(1), jit=True,
                    static={**static, "reduction": "sum_over_batch_size"})


def _elementwise_kl(input: torch.Tensor, target: torch.Tensor, reduction: str,
                    static: dict[str, Any]) -> torch.Tensor:
    if reduction not in _REDUCTIONS:
        raise NotApplicable(f"Keras' KLDivergence has no reduction {reduction!r}")
    shape = input.shape
    if target.shape != shape:
        return jax_call(_kl_of_logs, input.unsqueeze(-1), target.unsqueeze(-1), jit=True,
                        static={**static, "reduction": _REDUCTIONS[reduction]})
    rows = input.reshape(-1, 1), target.reshape(-1, 1)
    n = rows[0].shape[0]
    if reduction == "none":
        rows = tuple(padded_rows(t, bucket(n)) for t in rows)
    out = jax_call(_kl_of_logs, *rows, jit=True,
                   static={**static, "reduction": _REDUCTIONS[reduction]})
    return out[:n].reshape(shape) if reduction == "none" else out


def _kl_of_logs(log_q: Any, target: Any, *, log_target: bool, reduction: str | None) -> Any:
    """Keras' KLDivergence of p (target, or exp(target) with log_target) from q = exp(log_q)."""
    ops = _keras().ops
    p = ops.exp(target) if log_target else target
    return _keras_loss(ops.exp(log_q), p, loss="KLDivergence", reduction=reduction)


# --------------------------------------------------------------------------- regression


@adapts("huber_loss", **_LIBRARY)
def huber_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean",
               delta: float = LIBRARY_DEFAULT) -> torch.Tensor:
    return _elementwise("Huber", input, target, reduction, **given(delta=delta))


@adapts("l1_loss", **_LIBRARY)
def l1_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    return _elementwise("MeanAbsoluteError", input, target, reduction)


@adapts("mse_loss", **_LIBRARY)
def mse_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    return _elementwise("MeanSquaredError", input, target, reduction)


@adapts("poisson_nll_loss", **_LIBRARY)
def poisson_nll_loss(input: torch.Tensor, target: torch.Tensor, log_input: bool = True,
                     full: bool = False, eps: float = LIBRARY_DEFAULT,
                     reduction: str = "mean") -> torch.Tensor:
    if log_input or full:
        raise NotApplicable("Keras' Poisson takes the rate itself (log_input=False) and has no"
                            " Stirling term (full=False)")
    if eps is not LIBRARY_DEFAULT and eps != _keras().config.epsilon():
        raise NotApplicable(f"Keras' Poisson adds keras.config.epsilon()"
                            f" ({_keras().config.epsilon()}), not eps={eps}")
    return _elementwise("Poisson", input, target, reduction)


# --------------------------------------------------------------------------- segmentation


def _region(call: RegionCall) -> torch.Tensor:
    input, target = call.input, call.target
    if call.form != "standard":
        raise NotApplicable("Keras' Dice has no squared form")
    if call.smooth:
        raise NotApplicable("Keras' Dice and Tversky have no smoothing term")
    if call.classes != "all" and list(call.classes) != list(range(input.shape[1])):
        raise NotApplicable("Keras' Dice and Tversky have no class selection")
    if call.classes == "all" and not call.include_background:
        raise NotApplicable("Keras' Dice and Tversky score every class")
    label_map = not target.is_floating_point()
    if label_map and call.ignore_index is not None and bool((target == call.ignore_index).any()):
        raise NotApplicable("Keras' Dice and Tversky have no ignore_index")
    # The summed axes in torch's (N, C, *spatial) layout: one score per class, or per image
    # and class.
    summed = tuple(range(2, input.dim())) if call.per_image else (0, *range(2, input.dim()))
    if call.spec == "soft_dice_loss":
        loss, options = "Dice", {}
    else:
        loss, options = "Tversky", {"alpha": call.alpha, "beta": call.beta}
    if call.reduction not in _REDUCTIONS:
        raise NotApplicable(f"Keras' {loss} has no reduction {call.reduction!r}")
    return jax_call(_region_of_logits, input, target, jit=True,
                    static={"loss": loss, "reduction": _REDUCTIONS[call.reduction],
                            "activation": call.activation, "axis": summed,
                            "num_classes": input.shape[1] if label_map else None},
                    **options)


def _region_of_logits(x: Any, y: Any, *, loss: str, reduction: str | None, activation: str,
                      axis: tuple[int, ...], num_classes: int | None, **options: Any) -> Any:
    """Keras' Dice or Tversky of keras.ops.softmax (over the class axis 1) or keras.ops.sigmoid
    of the logits x against y, a mask of x's shape or a label map one-hot encoded over C."""
    keras, jnp = _keras(), jax_modules().jnp
    p = keras.ops.softmax(x, axis=1) if activation == "softmax" else keras.ops.sigmoid(x)
    if num_classes is not None:
        y = jnp.moveaxis(jax_modules().jax.nn.one_hot(y, num_classes, dtype=x.dtype), -1, 1)
    return _keras_loss(p, y, loss=loss, reduction=reduction, axis=axis, **options)


soft_dice_loss = region_adapter("soft_dice_loss", **_LIBRARY)(_region)
soft_jaccard_loss = region_adapter("soft_jaccard_loss", **_LIBRARY)(_region)
tversky_loss = region_adapter("tversky_loss", **_LIBRARY)(_region)
