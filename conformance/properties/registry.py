"""Property look-up: generic properties by name, relations as declared by each spec."""

from __future__ import annotations

from conformance.properties.base import Property
from conformance.properties.default_reduction import DEFAULT_REDUCTION
from conformance.properties.empty_input import HANDLES_EMPTY_INPUT
from conformance.properties.generic import (
    ACCEPTS_NON_CONTIGUOUS,
    AGREES_WITH_CPU,
    GENERIC,
    MATCHES_REFERENCE,
)
from conformance.properties.gradient import GRADIENT
from conformance.properties.invalid_input import REJECTS_INVALID_INPUT
from conformance.properties.self_gradient import GRADIENT_MATCHES_OWN_VALUES
from conformance.spec import LossSpec

# Every spec has these, after its own: layout and device are never part of a loss's value.
UNIVERSAL = (ACCEPTS_NON_CONTIGUOUS, AGREES_WITH_CPU)
REGISTRY: dict[str, Property] = {
    p.name: p for p in (*GENERIC, GRADIENT, GRADIENT_MATCHES_OWN_VALUES, REJECTS_INVALID_INPUT,
                        HANDLES_EMPTY_INPUT, DEFAULT_REDUCTION, *UNIVERSAL)}


def properties_of(spec: LossSpec) -> list[Property]:
    """The spec's properties, matches_reference first, the universal ones last; a name must be
    registered. Declaring gradient_matches_reference brings gradient_matches_own_values, and
    declaring invalid forms brings rejects_invalid_input, empty forms handles_empty_input, and
    a reduction argument default_reduction_is_the_specs."""
    found: list[Property] = [MATCHES_REFERENCE]
    for entry in spec.properties:
        prop = REGISTRY.get(entry) if isinstance(entry, str) else entry
        if prop is None:
            raise ValueError(f"spec {spec.name!r} declares unknown property {entry!r}")
        if prop.name in {p.name for p in found}:
            raise ValueError(f"spec {spec.name!r} declares property {prop.name!r} twice")
        found.append(prop)
        # A spec that owes gradients owes a backward that matches its own forward: checked
        # against the target's own values, so no convention of the spec is involved.
        if prop is GRADIENT and GRADIENT_MATCHES_OWN_VALUES not in spec.properties:
            found.append(GRADIENT_MATCHES_OWN_VALUES)
    if spec.invalid and REJECTS_INVALID_INPUT not in found:
        found.append(REJECTS_INVALID_INPUT)
    if spec.empty and HANDLES_EMPTY_INPUT not in found:
        found.append(HANDLES_EMPTY_INPUT)
    if spec.reductions and DEFAULT_REDUCTION not in found:
        found.append(DEFAULT_REDUCTION)
    found += [p for p in UNIVERSAL if p not in found]
    return found
