"""Calling the code under test: time limits, exceptions and bad return values become findings."""

from __future__ import annotations

import contextlib
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch

from conformance.case import Case
from conformance.layout import CONTIGUOUS
from conformance.timing import timed


class PropertyFailure(Exception):
    """A property does not hold on one case; carries what the report needs."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class TargetError(PropertyFailure):
    """The target raised or returned something that is not a usable loss value."""


class TargetHung(Exception):
    """The target did not return within the time limit; the rest of its checks are skipped."""


class _Alarm(BaseException):
    # A BaseException so that a target's own `except Exception` cannot swallow the time limit.
    pass


def _on_alarm(signum: int, frame: Any) -> None:
    raise _Alarm


def _alarms_usable() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def alarms_armed() -> Iterator[None]:
    """Keep the time limit's signal handler installed for a stretch of many calls (a check):
    each call then only sets and clears its timer. The previous handler is back afterwards."""
    if not _alarms_usable() or signal.getsignal(signal.SIGALRM) is _on_alarm:
        yield
        return
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    try:
        yield
    finally:
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Interrupt Python code running longer than `seconds` (main thread on POSIX only).

    Elsewhere the call runs without a limit: a thread cannot be stopped safely from outside.
    """
    if seconds is None or seconds <= 0 or not _alarms_usable():
        yield
        return
    armed = signal.getsignal(signal.SIGALRM) is _on_alarm
    previous = None if armed else signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        if not armed:
            signal.signal(signal.SIGALRM, previous)


class NotApplicable(Exception):
    """Raised by an adapter for a combination its library does not support (a parameter it
    lacks, a layout it refuses). The example is counted as not applicable: never a pass, never
    a failure."""


class OutsideDomain(Exception):
    """The case (or a relation's transformed case) is outside the spec's domain in the tested
    dtype: no value is owed there, so it is neither a pass nor a failure, and the case returns
    like a passing one (shrinking never walks onto it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GuardedTarget:
    """Wraps the function under test so every call is checked the same way."""

    def __init__(self, fn: Callable[..., Any], timeout: float | None = 10.0) -> None:
        self.fn = fn
        # An adapter whose library reduces in fewer ways declares the reductions it has.
        self.reductions: tuple[str, ...] | None = getattr(fn, "conformance_reductions", None)
        # False for a target without autodiff (conformance.bridges' NumPy bridge).
        self.gradients: bool = getattr(fn, "conformance_gradients", True)
        self.timeout = timeout
        self.hung_on: tuple[Case, torch.dtype] | None = None
        self.warned: list[str] = []  # the last call's warnings, where it kept them

    def __call__(
        self,
        case: Case,
        dtype: torch.dtype,
        device: str,
        grad_inputs: tuple[str, ...] = (),
        layout: str = CONTIGUOUS,
        keep_warnings: bool = False,
        **overrides: Any,
    ) -> tuple[torch.Tensor, list[torch.Tensor], dict[str, Any]]:
        """Call the target on `case` in `dtype`; returns the output and the tensors it was given.

        The inputs named in `grad_inputs` require grad, for properties that differentiate.
        `keep_warnings`: the messages of the warnings the call gave are left in `self.warned`.
        """
        if self.hung_on is not None:
            raise TargetHung()
        if grad_inputs and not self.gradients:
            raise NotApplicable("the target has values only (a NumPy function: no autodiff)")
        args, kwargs = case.to_torch(dtype, device, layout)
        for name, tensor in zip(case.inputs, args, strict=True):
            if name in grad_inputs:
                tensor.requires_grad_(True)
        kwargs.update(overrides)
        try:
            # A target's warnings (deprecations, 'mean' of kl_div) would repeat once per example.
            with time_limit(self.timeout), warnings.catch_warnings(
                    record=keep_warnings) as given, timed("target"):
                warnings.simplefilter("always" if keep_warnings else "ignore")
                out = self.fn(*args, **kwargs)
            self.warned = [str(w.message) for w in given or ()]
        except _Alarm:
            self.hung_on = (case, dtype)
            raise TargetHung() from None
        except NotApplicable:
            raise
        except Exception as exc:  # any error from user code is a finding, not a crash
            raise TargetError(
                f"the target raised {type(exc).__name__}: {exc}", exception=exc
            ) from exc
        if not isinstance(out, torch.Tensor):
            raise TargetError(
                f"the target returned {type(out).__name__}, not a torch.Tensor"
                f" (with {describe_call(kwargs)})"
            )
        if out.device.type != torch.device(device).type:
            raise TargetError(
                f"the target returned a tensor on {out.device} for inputs on {device}"
            )
        return out, args, kwargs


def gradient(
    output: torch.Tensor, wrt: torch.Tensor, timeout: float | None = 10.0
) -> torch.Tensor:
    """d sum(output) / d wrt; an error inside the target's backward is a finding."""
    if output.grad_fn is None:
        raise TargetError("the output carries no gradient (no grad_fn) although an input"
                          " requires grad")
    try:
        with time_limit(timeout), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (grad,) = torch.autograd.grad(output.sum(), wrt, allow_unused=True)
    except _Alarm:
        raise TargetHung() from None
    except Exception as exc:
        raise TargetError(f"the target's backward raised {type(exc).__name__}: {exc}") from exc
    if grad is None:
        raise TargetError("the output does not depend on the input it is differentiated by")
    return grad


def describe_call(kwargs: dict[str, Any]) -> str:
    parts = []
    for k, v in kwargs.items():
        shown = f"<tensor {tuple(v.shape)}>" if isinstance(v, torch.Tensor) else repr(v)
        parts.append(f"{k}={shown}")
    return ", ".join(parts)


def to_numpy(out: torch.Tensor) -> Any:
    """The output's values in float64 (exact for every float dtype)."""
    return out.detach().to("cpu", torch.float64).numpy()
