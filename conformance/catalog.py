"""The catalog: every built-in spec, read from the family modules listed here.

Each family module under conformance/specs declares its specs in its own `SPECS`
(conformance.spec.Family); this module is the one place that lists the families, so nothing
registers itself and nothing imports in a circle: a family imports the engine's declarations
(LossSpec, the properties), the catalog imports the families, and the runner, the CLI and the
plugin import the catalog. A spec declared outside the package is named by its path instead
(`get_spec("mymodule:MY_SPEC")`, docs/adding-a-loss.md).
"""

from __future__ import annotations

import sys

from conformance.spec import LossSpec
from conformance.specs import (
    boxes,
    classification,
    embedding,
    hinges,
    regression,
    segmentation,
    sequence,
)

FAMILIES = (boxes, classification, embedding, hinges, regression, segmentation, sequence)


def _catalog() -> dict[str, LossSpec]:
    found: dict[str, LossSpec] = {}
    for family in FAMILIES:
        for spec in family.SPECS:
            if spec.name in found:
                raise ValueError(f"spec {spec.name!r} is declared twice")
            found[spec.name] = spec
    return found


_SPECS = _catalog()


class UnknownSpec(LookupError):
    """No spec of that name in the catalog, or no spec at that path."""



def get_spec(name: str | LossSpec) -> LossSpec:
    """A spec: given as itself, by its catalog name, or, for a spec declared outside the
    catalog (docs/adding-a-loss.md, "Your own spec"), by its path 'module:ATTR' or
    'file.py:ATTR'."""
    if isinstance(name, LossSpec):
        return name
    if ":" in name:
        return _declared_at(name)
    try:
        return _SPECS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, list(_SPECS), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnknownSpec(
            f"unknown spec {name!r}.{hint} `python -m conformance list` shows all specs,"
            " and MODULE:ATTR names a spec declared in your own module."
        ) from None


def _declared_at(path: str) -> LossSpec:
    from conformance.loading import LoadError, load_attribute

    try:
        found = load_attribute(path)
    except LoadError as exc:
        raise UnknownSpec(f"cannot load the spec {path!r}: {exc}") from None
    if not isinstance(found, LossSpec):
        raise UnknownSpec(f"{path!r} is a {type(found).__name__}, not a conformance.LossSpec")
    return found


def spec_path(spec: LossSpec) -> str | None:
    """How a reproducer names `spec`: its catalog name, or 'module:ATTR' where the module that
    declares it holds it under a name (its reference's or its cases' module); None where
    neither is so (a spec built in a script or a notebook)."""
    if _SPECS.get(spec.name) is not None and _SPECS[spec.name].cases is spec.cases:
        return spec.name  # the catalog's, or the catalog's bound to declared conventions
    for fn in (spec.reference, spec.cases):
        module_name = getattr(getattr(fn, "func", fn), "__module__", None)
        module = sys.modules.get(module_name or "")
        if module is None or module_name == "__main__":
            continue
        for attr, value in vars(module).items():
            if isinstance(value, LossSpec) and value.name == spec.name:
                where = getattr(module, "__file__", None)
                # A module of a package by its name; a top-level one (a user's file, often
                # loaded by its path) by its absolute path, which imports from anywhere.
                if where and "." not in module_name:
                    return f"{where}:{attr}"
                return f"{module_name}:{attr}"
    return None


def all_specs() -> list[LossSpec]:
    return list(_SPECS.values())
