"""Framework bridges: a NumPy, JAX or Keras loss is a target as directly as a torch one.

The engine hands a target torch tensors in the tested dtype and reads back a torch tensor. A
bridge wraps a function of another framework so that it takes the same call: every tensor
argument becomes the framework's array of the same dtype, the function runs in its framework,
and its result comes back as a tensor of the dtype the framework computed (nothing is cast to
hide what it did). Gradients come from the framework itself: `jax.vjp` of the same function
for JAX and Keras (on the JAX backend). NumPy has no autodiff: a NumPy target has values only,
and its gradient checks are not applicable, with that reason.

- numpy: float64, float32 and float16 natively; bfloat16 through ml_dtypes where it is
  installed (it comes with JAX), else not applicable.
- jax: every float dtype; the function runs on the CPU device under jax.jit (compiled once
  per input shape, as in training), or op by op where it cannot be traced. 64-bit types are
  enabled only around each call (`jax.enable_x64`), so JAX code beside the suite keeps its
  own setting.
- keras: Keras 3 on the JAX backend, called like JAX. Keras picks its backend once, at its
  first import, from KERAS_BACKEND: the bridge sets KERAS_BACKEND=jax where it is unset before
  importing Keras, and refuses a Keras already running on another backend (the one
  process-wide choice it cannot scope; documented in the README).

`framework_of(fn)` tells the framework from the function (a `conformance_framework`
attribute, a jitted JAX function, a Keras loss, a function of the numpy, jax, optax or keras
packages); anything else is taken as torch. A user's own NumPy or JAX function is named:
`check(fn, spec, framework="jax")`, `--framework jax`.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from conformance.guard import NotApplicable

FRAMEWORKS = ("torch", "numpy", "jax", "keras")
_ROOTS = {"numpy": "numpy", "jax": "jax", "jaxlib": "jax", "optax": "jax", "keras": "keras"}


class FrameworkError(ValueError):
    """An unknown framework, or one that cannot run here (not installed, wrong backend)."""


def framework_of(fn: Any) -> str:
    """The framework `fn` computes in, as far as it can be told without calling it."""
    declared = getattr(fn, "conformance_framework", None)
    if declared is not None:
        return str(declared)
    for owner in (getattr(fn, "__module__", None), type(fn).__module__):
        root = (owner or "").split(".")[0]
        if root in _ROOTS:
            return _ROOTS[root]
    return "torch"


def bridged(fn: Callable[..., Any], framework: str | None = None) -> Callable[..., Any]:
    """`fn` as a target taking torch tensors (itself where it is torch, or bridged already)."""
    if hasattr(fn, "conformance_wrapped"):
        return fn
    chosen = framework or framework_of(fn)
    if chosen not in FRAMEWORKS:
        raise FrameworkError(f"unknown framework {chosen!r}; choose from {', '.join(FRAMEWORKS)}")
    if chosen == "torch":
        return fn
    if chosen == "numpy":
        target = _numpy_target(fn)
    else:
        if chosen == "keras":
            keras_backend()
        jax_modules()  # fail here, with the reason, where JAX is missing
        target = _jax_target(fn)
    functools.update_wrapper(target, fn)
    target.conformance_framework = chosen  # type: ignore[attr-defined]
    target.conformance_wrapped = fn  # type: ignore[attr-defined]
    return target


# --------------------------------------------------------------------------- NumPy


def _ml_bfloat16() -> Any:
    if importlib.util.find_spec("ml_dtypes") is None:
        raise NotApplicable("NumPy has no bfloat16 (ml_dtypes, which adds it, is not installed)")
    return importlib.import_module("ml_dtypes").bfloat16


def to_numpy_array(tensor: torch.Tensor) -> np.ndarray:
    """The tensor as a NumPy array of the same dtype (bfloat16 by way of ml_dtypes)."""
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        # float32 holds every bfloat16 value exactly
        return tensor.float().numpy().astype(_ml_bfloat16())
    # The same memory, not a copy: a function that writes into its input shows it to
    # no_input_mutation, as a torch function would.
    return tensor.numpy()


def from_numpy_array(array: Any, device: torch.device | str = "cpu") -> torch.Tensor:
    """A NumPy (or ml_dtypes) array as a tensor of the same dtype."""
    array = np.asarray(array)
    if array.dtype.name == "bfloat16":
        return torch.from_numpy(array.astype(np.float32)).to(device, torch.bfloat16)
    return torch.from_numpy(np.array(array)).to(device)


def _converted(values: Sequence[Any], convert: Callable[[torch.Tensor], Any]) -> list[Any]:
    return [convert(v) if isinstance(v, torch.Tensor) else v for v in values]


def _numpy_target(fn: Callable[..., Any]) -> Callable[..., torch.Tensor]:
    def target(*args: Any, **kwargs: Any) -> torch.Tensor:
        device = next((a.device for a in args if isinstance(a, torch.Tensor)), "cpu")
        out = fn(*_converted(args, to_numpy_array),
                 **dict(zip(kwargs, _converted(list(kwargs.values()), to_numpy_array),
                            strict=True)))
        return from_numpy_array(out, device)

    target.conformance_gradients = False  # type: ignore[attr-defined]
    return target


# --------------------------------------------------------------------------- JAX (and Keras)


@functools.cache
def jax_modules() -> Any:
    """jax and jax.numpy, imported on first use, and the CPU device."""
    if importlib.util.find_spec("jax") is None:
        raise FrameworkError("JAX is not installed (pip install -e \".[optax]\" brings it)")
    jax = importlib.import_module("jax")
    return SimpleNamespace(jax=jax, jnp=importlib.import_module("jax.numpy"),
                           cpu=jax.devices("cpu")[0])


def keras_backend() -> Any:
    """Keras 3 on the JAX backend (set where KERAS_BACKEND is unset, before its import)."""
    if importlib.util.find_spec("keras") is None:
        raise FrameworkError("Keras is not installed")
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = importlib.import_module("keras")
    backend = keras.backend.backend()
    if backend != "jax":
        raise FrameworkError(f"Keras runs on the {backend!r} backend in this process; the"
                             " bridge needs 'jax' (set KERAS_BACKEND=jax before Keras is"
                             " first imported)")
    return keras


def to_jax_array(tensor: torch.Tensor) -> Any:
    """The tensor as a JAX array on the CPU, of the same dtype (call under x64())."""
    m = jax_modules()
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        return m.jax.device_put(tensor.float().numpy(), m.cpu).astype(m.jnp.bfloat16)
    return m.jax.device_put(tensor.numpy(), m.cpu)


def from_jax_array(array: Any, device: torch.device | str = "cpu") -> torch.Tensor:
    """A JAX array as a torch tensor of the same dtype on `device`."""
    jnp = jax_modules().jnp
    array = jnp.asarray(array)
    if array.dtype == jnp.bfloat16:
        return torch.from_numpy(np.array(array.astype(jnp.float32))).to(device, torch.bfloat16)
    return torch.from_numpy(np.array(array)).to(device)


def x64() -> Any:
    """JAX's 64-bit types for the duration of a call: without them JAX silently computes
    float64 (and int64) input in 32 bits, and float64 cases would check float32 arithmetic."""
    return jax_modules().jax.enable_x64(True)


@functools.cache
def _compiled(fn: Callable[..., Any], static: tuple[str, ...], jit: bool) -> tuple[Any, Any]:
    """fn and the vector-Jacobian product of fn with respect to chosen positional arrays,
    each under jax.jit where `jit` (keyword parameters named in `static` compiled in)."""
    jax = jax_modules().jax

    def pullback(wanted: tuple[int, ...], cotangent: Any, *arrays: Any, **params: Any) -> Any:
        def of_wanted(*chosen: Any) -> Any:
            args = list(arrays)
            for i, array in zip(wanted, chosen, strict=True):
                args[i] = array
            return fn(*args, **params)

        return jax.vjp(of_wanted, *(arrays[i] for i in wanted))[1](cotangent)

    if not jit:
        return fn, pullback
    return (jax.jit(fn, static_argnames=static),
            jax.jit(pullback, static_argnums=(0,), static_argnames=static))


class _JaxCall(torch.autograd.Function):
    """fn(*arrays, **params) in JAX as a torch op; backward is the vector-Jacobian product of
    fn with respect to the positional inputs that require grad."""

    @staticmethod
    def forward(ctx: Any, fn: Callable[..., Any], static: dict[str, Any],
                dynamic: dict[str, Any], jit: bool, *tensors: torch.Tensor) -> torch.Tensor:
        with x64():
            arrays = [to_jax_array(t) for t in tensors]
            params = {**static, **{k: to_jax_array(v) if isinstance(v, torch.Tensor) else v
                                   for k, v in dynamic.items()}}
            forward, ctx.pullback = _compiled(fn, tuple(sorted(static)), jit)
            ctx.arrays, ctx.params, ctx.device = arrays, params, tensors[0].device
            return from_jax_array(forward(*arrays, **params), tensors[0].device)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        arrays = ctx.arrays
        wanted = tuple(i for i in range(len(arrays)) if ctx.needs_input_grad[i + 4])
        grads: list[torch.Tensor | None] = [None] * len(arrays)
        if wanted:
            with x64():
                pulled = ctx.pullback(wanted, to_jax_array(grad_output), *arrays, **ctx.params)
                for i, grad in zip(wanted, pulled, strict=True):
                    grads[i] = from_jax_array(grad, ctx.device)
        return (None, None, None, None, *grads)


def jax_call(fn: Callable[..., Any], *tensors: torch.Tensor,
             static: dict[str, Any] | None = None, jit: bool = False,
             **dynamic: Any) -> torch.Tensor:
    """fn(*tensors, **static, **dynamic) computed by JAX, differentiable with respect to the
    positional tensors. `static`: parameters that change the computation's structure
    (compiled in with `jit`); `dynamic`: numbers, and tensors JAX reads but is not
    differentiated by (weights). With `jit`, fn must be a module-level function (the compiled
    code is cached on it)."""
    return _JaxCall.apply(fn, static or {}, dynamic, jit, *tensors)


def _jax_target(fn: Callable[..., Any]) -> Callable[..., torch.Tensor]:
    call = _FixedCall(fn)

    def target(*args: Any, **kwargs: Any) -> torch.Tensor:
        # Tensors go to JAX as arrays; everything else (strings, numbers, None) as it is.
        positional = [a for a in args if isinstance(a, torch.Tensor)]
        if len(positional) != len(args):
            raise TypeError("a bridged target takes its tensors first, then keywords")
        # Compiled, as JAX code runs in training (one compilation per input shape, then
        # cached); a function that cannot be traced (Python control flow on a value) runs op
        # by op from then on. Floats and tensors are traced, anything else is compiled in.
        dynamic = {k: v for k, v in kwargs.items() if isinstance(v, torch.Tensor | float)}
        static = {k: v for k, v in kwargs.items() if k not in dynamic}
        if not call.eager:
            try:
                return jax_call(call, *positional, static=static, jit=True, **dynamic)
            except jax_modules().jax.errors.JAXTypeError:
                call.eager = True
        return jax_call(call, *positional, **kwargs)

    return target


class _FixedCall:
    """fn as an object jax_call can cache by (one per bridged target, so its identity lasts)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.eager = False  # set once tracing it failed: run op by op

    def __call__(self, *arrays: Any, **params: Any) -> Any:
        return self.fn(*arrays, **params)

    def __hash__(self) -> int:
        return hash(self.fn)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _FixedCall) and other.fn is self.fn
