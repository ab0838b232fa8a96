"""Copy-paste reproducers for failures."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch

from conformance.case import Case, format_case


def import_path(fn: Callable[..., Any]) -> str | None:
    """'module:qualname' when that path imports back to `fn` itself, else None."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        return None
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None
    return f"{module}:{qualname}" if obj is fn else None


def target_name(fn: Callable[..., Any], path: str | None = None) -> str:
    path = path or import_path(fn)
    if path:
        return path.replace(":", ".")
    return getattr(fn, "__qualname__", None) or repr(fn)


def build(
    fn: Callable[..., Any],
    spec_name: str,
    property_name: str,
    case: Case,
    dtype: torch.dtype,
    device: str,
    reduction: str | None,
    path: str | None = None,
) -> str:
    """`path` ('module:attr', as the user named the target) wins over fn's own module."""
    path = path or import_path(fn)
    lines = ["import torch", "import conformance"]
    if path:
        module, qualname = path.split(":")
        head, _, attr = qualname.rpartition(".")
        if head:
            lines.append(f"from {module} import {head.split('.')[0]}")
            lines.append(f"fn = {qualname}")
        else:
            lines.append(f"from {module} import {attr} as fn")
    else:
        lines.append("fn = ...  # the function you checked: it cannot be imported by name")
    lines.append(format_case(case, dtype))
    call_args = ", ".join(case.inputs)
    if reduction is not None:
        lines.append(f"print(fn({call_args}, **params, reduction={reduction!r}))")
    else:
        lines.append(f"print(fn({call_args}, **params))")
    inputs = ", ".join(f"{k}={k}" for k in case.inputs)
    lines.append(
        f"conformance.recheck(fn, {spec_name!r}, {property_name!r}, dict({inputs}), params"
        f", device={device!r})"
    )
    return "\n".join(lines)
