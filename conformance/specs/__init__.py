"""Spec declarations; importing this package registers every spec."""

from conformance.specs import boxes, classification, regression, segmentation  # noqa: F401
