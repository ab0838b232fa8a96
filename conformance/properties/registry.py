"""Property look-up: generic properties by name, relations as declared by each spec."""

from __future__ import annotations

from conformance.properties.base import Property
from conformance.properties.generic import (
    ACCEPTS_NON_CONTIGUOUS,
    AGREES_WITH_CPU,
    GENERIC,
    MATCHES_REFERENCE,
)
from conformance.properties.gradient import GRADIENT
from conformance.spec import LossSpec

# Every spec has these, after its own: layout and device are never part of a loss's value.
UNIVERSAL = (ACCEPTS_NON_CONTIGUOUS, AGREES_WITH_CPU)
REGISTRY: dict[str, Property] = {p.name: p for p in (*GENERIC, GRADIENT, *UNIVERSAL)}


def resolve(spec: LossSpec) -> list[Property]:
    """The spec's properties, matches_reference first, the universal ones last; a name must be
    registered."""
    found: list[Property] = [MATCHES_REFERENCE]
    for entry in spec.properties:
        prop = REGISTRY.get(entry) if isinstance(entry, str) else entry
        if prop is None:
            raise ValueError(f"spec {spec.name!r} declares unknown property {entry!r}")
        if prop.name in {p.name for p in found}:
            raise ValueError(f"spec {spec.name!r} declares property {prop.name!r} twice")
        found.append(prop)
    found += [p for p in UNIVERSAL if p not in found]
    return found
