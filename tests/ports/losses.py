"""Losses written in NumPy and JAX (and their torch originals), as ports of them look: the
bridges' and the diff's test subjects. JAX is imported only by the functions that use it."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def numpy_mse_loss(input, target, reduction="mean"):
    if input.shape != target.shape:
        raise ValueError(f"shapes {input.shape} and {target.shape} differ")
    d = (input - target) ** 2
    return d if reduction == "none" else d.sum() if reduction == "sum" else d.mean()


def numpy_mse_loss_in_float32(input, target, reduction="mean"):
    """Casts to float32 'for speed': float64 inputs lose precision, the output dtype changes."""
    return numpy_mse_loss(input.astype(np.float32), target.astype(np.float32), reduction)


def _reduced(loss, reduction):
    return loss if reduction == "none" else loss.sum() if reduction == "sum" else loss.mean()


def jax_bce_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    import jax

    if input.shape != target.shape:
        raise ValueError(f"shapes {input.shape} and {target.shape} differ")
    pw = 1.0 if pos_weight is None else pos_weight
    loss = -(pw * target * jax.nn.log_sigmoid(input) + (1 - target) * jax.nn.log_sigmoid(-input))
    return _reduced(loss if weight is None else loss * weight, reduction)


def jax_bce_with_logits_naive(input, target, weight=None, reduction="mean", pos_weight=None):
    """log(sigmoid(x)): -inf and NaN once |x| is large."""
    import jax
    import jax.numpy as jnp

    p = jax.nn.sigmoid(input)
    pw = 1.0 if pos_weight is None else pos_weight
    loss = -(pw * target * jnp.log(p) + (1 - target) * jnp.log(1 - p))
    return _reduced(loss if weight is None else loss * weight, reduction)


def jax_raises(input, target, weight=None, reduction="mean", pos_weight=None):
    raise RuntimeError("not ported yet")


def torch_bce_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    return F.binary_cross_entropy_with_logits(input, target, weight=weight, reduction=reduction,
                                              pos_weight=pos_weight)


def torch_bce_with_logits_naive(input, target, weight=None, reduction="mean", pos_weight=None):
    """The original with the log(sigmoid) bug that a port may fix."""
    p = torch.sigmoid(input)
    pw = 1.0 if pos_weight is None else pos_weight
    loss = -(pw * target * torch.log(p) + (1 - target) * torch.log(1 - p))
    return _reduced(loss if weight is None else loss * weight, reduction)


def numpy_bce_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """A NumPy port that computes log(sigmoid) stably (the fix of the naive original)."""
    pw = 1.0 if pos_weight is None else pos_weight
    log_p = -np.logaddexp(0, -input)
    log_q = -np.logaddexp(0, input)
    loss = -(pw * target * log_p + (1 - target) * log_q)
    return _reduced(loss if weight is None else loss * weight, reduction)



def keras_mse_loss(input, target, reduction="mean"):
    """MSE written with keras.ops (Keras 3 on its JAX backend), the mean as sum / size."""
    import keras

    if input.shape != target.shape:
        raise ValueError(f"shapes {input.shape} and {target.shape} differ")
    loss = keras.ops.square(input - target)
    return (loss if reduction == "none" else keras.ops.sum(loss) if reduction == "sum"
            else keras.ops.sum(loss) / loss.size)


def keras_mse_loss_by_ops_mean(input, target, reduction="mean"):
    """The same with keras.ops.mean, which computes float64 in float32 (docs/findings.md)."""
    import keras

    loss = keras.ops.square(input - target)
    return keras_mse_loss(input, target, reduction) if reduction != "mean" else keras.ops.mean(
        loss)


def keras_mean_squared_error(input, target, reduction="mean"):
    """keras.losses.mean_squared_error under torch's call: Keras averages over the last axis
    before any reduction, so its 'none' is one value per row."""
    import keras

    loss = keras.losses.mean_squared_error(target, input)
    return (loss if reduction == "none" else keras.ops.sum(loss) if reduction == "sum"
            else keras.ops.mean(loss))


def numpy_mse_loss_in_place(input, target, reduction="mean"):
    """Subtracts in place: the caller's input is changed."""
    input -= target
    input **= 2
    return input if reduction == "none" else input.sum() if reduction == "sum" else input.mean()
