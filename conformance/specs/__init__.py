"""Spec declarations; importing this package registers every spec."""

from conformance.specs import classification  # noqa: F401
