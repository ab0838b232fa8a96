"""Property look-up: generic properties by name, relations as declared by each spec."""

from __future__ import annotations

from conformance.properties.base import Property
from conformance.properties.generic import AGREES_WITH_CPU, GENERIC, MATCHES_REFERENCE
from conformance.properties.gradient import GRADIENT
from conformance.spec import LossSpec

REGISTRY: dict[str, Property] = {p.name: p for p in (*GENERIC, GRADIENT, AGREES_WITH_CPU)}


def resolve(spec: LossSpec) -> list[Property]:
    """The spec's properties, matches_reference first, agrees_with_cpu last; a name must be
    registered."""
    found: list[Property] = [MATCHES_REFERENCE]
    for entry in spec.properties:
        prop = REGISTRY.get(entry) if isinstance(entry, str) else entry
        if prop is None:
            raise ValueError(f"spec {spec.name!r} declares unknown property {entry!r}")
        if prop.name in {p.name for p in found}:
            raise ValueError(f"spec {spec.name!r} declares property {prop.name!r} twice")
        found.append(prop)
    if AGREES_WITH_CPU not in found:
        found.append(AGREES_WITH_CPU)
    return found
