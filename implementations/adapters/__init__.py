"""Adapters: third-party loss code presented under the canonical specs' calls.

An adapter maps names and layouts (argument names, layouts, how a disabled alpha is spelled)
and nothing else: a parameter the caller leaves out is left out of the library's call
(LIBRARY_DEFAULT), and a convention the library documents is declared, not converted
(conformance.variants); what the library computes, including its dtype, NaNs and errors,
reaches the checks unchanged. Each module imports its library on first use through
implementations.sources (LibraryMissing, an ImportError, when it is absent), so its targets
are listed whether or not the library is installed, and skipped, never failed, without it.

Each adapter registers itself where it is written, with `@adapts(spec, library=...)` (or
`reexports` for a library's own functions taken as they are); `registered()` lists them all, and
`python -m conformance run --libraries` checks each installed one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar


class _LibraryDefault:
    """The default of an adapter's parameter that a library defaults itself: a call that leaves
    the parameter out leaves it out of the library's call too, so the library's own default is
    what the checks see (the specs draw omitted parameters), not the spec's."""

    def __repr__(self) -> str:
        return "<the library's default>"


LIBRARY_DEFAULT: Any = _LibraryDefault()


def alpha_or_none(alpha: Any) -> Any:
    """torchvision's alpha as libraries that spell a disabled alpha None take it: a negative
    alpha is None; the library's default stays the library's default."""
    return None if alpha is not LIBRARY_DEFAULT and alpha < 0 else alpha


def given(**kwargs: Any) -> dict[str, Any]:
    """The keyword arguments the caller gave (those not left at LIBRARY_DEFAULT)."""
    return {k: v for k, v in kwargs.items() if v is not LIBRARY_DEFAULT}


@dataclass(frozen=True)
class Adapter:
    """One third-party target: the callable at `path` ('module:attr') computes `spec` with
    `library`'s code (`library` is the name it is imported and installed by)."""

    library: str
    spec: str
    path: str


# Each adapter module, in the matrix's order; importing one registers its targets.
MODULES = ("torchvision_ops", "fvcore_nn", "kornia_losses", "timm_loss", "monai_losses",
           "smp_losses", "toolbelt_losses", "optax_losses", "keras_losses")

_REGISTERED: dict[str, dict[str, Adapter]] = {}  # module -> path -> adapter, in declaration order

F = TypeVar("F", bound=Callable[..., Any])


def adapts(spec: str, *, library: str, reductions: Sequence[str] | None = None,
           conventions: Mapping[str, Any] | None = None,
           requires: Sequence[str] | None = None) -> Callable[[F], F]:
    """Register the decorated function as `library`'s target for `spec`.

    reductions: the reductions the library has (the others are not applicable, never failed);
    None: every one the spec has. conventions: the spec's declared variants the library
    documents (conformance.variants), checked as conventions, not converted. requires: the
    modules the call imports (default: the library); while one is missing, the target is
    skipped as not installed.
    """

    def register(fn: F) -> F:
        marks: Any = fn
        marks.conformance_requires = tuple(requires or (library,))
        if reductions is not None:
            marks.conformance_reductions = tuple(reductions)
        if conventions:
            marks.conformance_conventions = dict(conventions)
        _add(fn.__module__, Adapter(library, spec, f"{fn.__module__}:{fn.__qualname__}"))
        return fn

    return register


def reexports(module: str, library: str, specs: Mapping[str, str]) -> None:
    """Register the library's own functions that `module` re-exports as they are: attribute ->
    the spec it computes (the module imports them lazily, in its `__getattr__`)."""
    for attr, spec in specs.items():
        _add(module, Adapter(library, spec, f"{module}:{attr}"))


def _add(module: str, adapter: Adapter) -> None:
    _REGISTERED.setdefault(module, {})[adapter.path] = adapter


def registered() -> tuple[Adapter, ...]:
    """Every adapter, library by library in MODULES' order, each in its declaration order.
    Installed or not: the modules import their libraries on first use."""
    out: list[Adapter] = []
    for name in MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        out += _REGISTERED.get(module.__name__, {}).values()
    return tuple(out)
