"""One concrete input to a loss: its tensor arguments and keyword parameters.

A case is held as float64 / int64 NumPy arrays so that it can be printed exactly, rounded to any
tested dtype, and handed to the NumPy reference without torch in between.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from conformance.layout import CONTIGUOUS, STRIDED, strided

DTYPES: dict[str, torch.dtype] = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _is_float_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating)


def round_array(value: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    """The float64 values that `value` takes once stored in `dtype` (round to nearest even)."""
    value = np.asarray(value, dtype=np.float64)
    stored = torch.from_numpy(value.copy(order="C")).to(dtype)
    return stored.double().numpy().reshape(value.shape)  # a 0-d array stays 0-d


@dataclass(frozen=True)
class Case:
    """Positional tensor inputs (in call order) and keyword parameters of one loss call.

    Float arrays stand for tensors of the tested dtype, integer arrays for int64 tensors,
    boolean arrays for bool tensors; anything else in `params` is passed as it is.
    """

    inputs: Mapping[str, np.ndarray]
    params: Mapping[str, Any] = field(default_factory=dict)
    label: str | None = None
    # rounded()'s results by dtype: every property of one example sees the same rounded case
    # object, so what is remembered by a case's identity (reference values, the domain
    # verdict) is computed once per example, not once per property.
    _rounded: dict[torch.dtype, Case] = field(default_factory=dict, init=False, repr=False,
                                              compare=False)

    def __post_init__(self) -> None:
        # NumPy reductions return scalars for 0-d results; a case holds arrays only.
        def fix(value: Any) -> Any:
            return np.asarray(value) if isinstance(value, np.generic) else value

        object.__setattr__(self, "inputs", {k: fix(v) for k, v in self.inputs.items()})
        object.__setattr__(self, "params", {k: fix(v) for k, v in self.params.items()})

    def with_inputs(self, **changes: np.ndarray) -> Case:
        return replace(self, inputs={**self.inputs, **changes})

    def with_params(self, **changes: Any) -> Case:
        return replace(self, params={**self.params, **changes})

    def without_params(self, *names: str) -> Case:
        return replace(self, params={k: v for k, v in self.params.items() if k not in names})

    def rounded(self, dtype: torch.dtype) -> Case:
        """The case as the target sees it in `dtype`; the reference is computed from it."""
        known = self._rounded.get(dtype)
        if known is not None:
            return known

        def fix(value: Any) -> Any:
            return round_array(value, dtype) if _is_float_array(value) else value

        rounded = replace(
            self,
            inputs={k: fix(v) for k, v in self.inputs.items()},
            params={k: fix(v) for k, v in self.params.items()},
        )
        self._rounded[dtype] = rounded
        return rounded

    def numel(self) -> int:
        return max((int(v.size) for v in self.inputs.values()), default=1)

    def to_torch(
        self, dtype: torch.dtype, device: str = "cpu", layout: str = CONTIGUOUS
    ) -> tuple[list[torch.Tensor], dict[str, Any]]:
        """Fresh tensors for one call: a target that edits them cannot affect later calls.

        Contiguous whatever the arrays' strides (torch.tensor keeps a NumPy array's strides, so
        a transposed array would reach the target as a transposed tensor); `layout="strided"`
        hands non-contiguous copies (conformance.layout)."""

        def conv(value: Any) -> Any:
            if not isinstance(value, np.ndarray):
                return value
            if not value.flags.c_contiguous:  # (ascontiguousarray would make a 0-d array 1-d)
                value = value.copy(order="C")
            # One conversion, straight from float64: a single rounding to the tested dtype.
            if _is_float_array(value):
                wanted = dtype
            elif value.dtype == np.bool_:
                wanted = torch.bool
            else:
                wanted = torch.int64
            tensor = torch.tensor(value, dtype=wanted, device=device)
            return strided(tensor) if layout == STRIDED else tensor

        return [conv(v) for v in self.inputs.values()], {k: conv(v) for k, v in self.params.items()}

    @classmethod
    def from_tensors(
        cls, inputs: Mapping[str, Any], params: Mapping[str, Any] | None = None
    ) -> Case:
        """Build a case from tensors (exact: float tensors are widened to float64)."""

        def conv(value: Any) -> Any:
            if isinstance(value, torch.Tensor):
                value = value.detach().cpu()
                if value.is_floating_point():
                    return value.double().numpy()
                return value.numpy()
            return value

        return cls(
            inputs={k: conv(v) for k, v in inputs.items()},
            params={k: conv(v) for k, v in (params or {}).items()},
        )


def _format_float(value: float) -> str:
    if math.isnan(value):
        return 'float("nan")'
    if math.isinf(value):
        return 'float("inf")' if value > 0 else '-float("inf")'
    # repr is the shortest decimal that round-trips in float64; the value is already
    # representable in the tested dtype, so converting it back is exact too.
    return repr(float(value))


def _nested(value: np.ndarray) -> str:
    if value.ndim == 0:
        item = value.item()
        return _format_float(item) if isinstance(item, float) else repr(item)
    return "[" + ", ".join(_nested(v) for v in value) + "]"


def format_value(value: Any, dtype: torch.dtype) -> str:
    """Python source that rebuilds `value` exactly as the target received it."""
    if isinstance(value, np.ndarray):
        if _is_float_array(value):
            torch_dtype = f"torch.{dtype_name(dtype)}"
        elif value.dtype == np.bool_:
            torch_dtype = "torch.bool"
        else:
            torch_dtype = "torch.int64"
        return f"torch.tensor({_nested(value)}, dtype={torch_dtype})"
    if isinstance(value, float):
        return _format_float(value)
    return repr(value)


def format_case(case: Case, dtype: torch.dtype) -> str:
    """Assignments, one per argument, that rebuild the case exactly."""
    lines = [f"{name} = {format_value(v, dtype)}" for name, v in case.inputs.items()]
    params = ", ".join(f"{k}={format_value(v, dtype)}" for k, v in case.params.items())
    lines.append(f"params = dict({params})")
    return "\n".join(lines)


def describe_params(params: Mapping[str, Any]) -> str:
    """Short, one-line description of the parameters (arrays abbreviated)."""
    parts = []
    for k, v in params.items():
        if isinstance(v, np.ndarray):
            parts.append(f"{k}=<array {tuple(v.shape)}>")
        else:
            parts.append(f"{k}={v!r}")
    return ", ".join(parts) or "(defaults)"
