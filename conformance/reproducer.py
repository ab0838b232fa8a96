"""Copy-paste reproducers for failures."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from conformance.case import Case, format_case
from conformance.layout import CONTIGUOUS, STRIDED


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
    fn = getattr(fn, "conformance_wrapped", fn)
    path = path or import_path(fn)
    if path:
        return path.replace(":", ".")
    return getattr(fn, "__qualname__", None) or repr(fn)


def build(
    fn: Callable[..., Any],
    spec_name: str | None,
    property_name: str,
    case: Case,
    dtype: torch.dtype,
    device: str,
    reduction: str | None,
    path: str | None = None,
    layout: str = CONTIGUOUS,
    conventions: Mapping[str, Any] | None = None,
) -> str:
    """Python that runs as printed and reproduces the failure.

    `spec_name`: the spec's catalog name or the 'module:ATTR' path of a spec declared outside
    the catalog (conformance.spec.spec_path); None where it cannot be named (the reproducer
    then asks for it). `path` ('module:attr' or 'file.py:attr', as the user named the target)
    wins over fn's own module; a file is imported by its absolute path. `layout` is the memory
    layout the property handed the target (conformance.layout), rebuilt the same way."""
    lines = ["import torch", "import conformance", *binding_lines(fn, path)]
    lines.append(format_case(case, dtype))
    if layout == STRIDED:
        tensors = ", ".join(case.inputs)
        lines += [
            "# The property hands the target non-contiguous copies of its tensors:",
            f"{tensors}{',' if len(case.inputs) == 1 else ''} = "
            f"{', '.join(f'conformance.layout.strided({k})' for k in case.inputs)}",
            "params = {k: conformance.layout.strided(v) if isinstance(v, torch.Tensor) else v"
            " for k, v in params.items()}",
        ]
    call_args = ", ".join(case.inputs)
    if reduction is not None:
        lines.append(f"print(fn({call_args}, **params, reduction={reduction!r}))")
    else:
        lines.append(f"print(fn({call_args}, **params))")
    inputs = ", ".join(f"{k}={k}" for k in case.inputs)
    following = f", conventions={dict(conventions)!r}" if conventions else ""
    if spec_name is None:
        lines.append("spec = ...  # the LossSpec you checked against: it cannot be imported by"
                     " name")
    spec = "spec" if spec_name is None else repr(spec_name)
    lines.append(
        f"conformance.recheck(fn, {spec}, {property_name!r}, dict({inputs}), params"
        f", device={device!r}{following})"
    )
    return "\n".join(lines)


def binding_lines(fn: Callable[..., Any], path: str | None = None,
                  name: str = "fn") -> list[str]:
    """Lines that bind `name` to the target as the check called it: imported by `path` (or
    fn's own module), and bridged again where it is a NumPy/JAX/Keras function."""
    original = getattr(fn, "conformance_wrapped", fn)
    path = path or import_path(original)
    if path and ":" in path:
        lines = _import_lines(path, name)
    else:
        lines = [f"{name} = ...  # the function you checked: it cannot be imported by name"]
    if original is not fn:
        lines.append(f"{name} = conformance.bridged({name}, {fn.conformance_framework!r})"
                     "  # takes torch tensors")
    return lines


def _import_lines(path: str, name: str) -> list[str]:
    """Lines that bind `name` to the target named by 'module:qualname' or 'file.py:qualname'."""
    module, _, qualname = path.partition(":")
    head, _, attr = qualname.rpartition(".")
    if module.endswith(".py"):  # by absolute path, through the CLI's own loader
        return ["from conformance.cli import load_target",
                f"{name} = load_target({f'{Path(module).resolve()}:{qualname}'!r})"]
    if head:
        return [f"from {module} import {head.split('.')[0]}", f"{name} = {qualname}"]
    return [f"from {module} import {attr} as {name}"]
