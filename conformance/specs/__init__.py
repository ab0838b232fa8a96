"""Spec declarations; importing this package registers every spec."""

from conformance.specs import boxes, classification, hinges, regression, segmentation  # noqa: F401
