"""Properties: generic checks and relations, written once, declared per spec."""

from conformance.properties.base import Context, Property
from conformance.properties.relation import Relation, Side, reference, target

__all__ = ["Context", "Property", "Relation", "Side", "reference", "target"]
