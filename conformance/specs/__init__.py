"""Spec declarations; importing this package registers every spec."""

from conformance.specs import (  # noqa: F401
    boxes,
    classification,
    hinges,
    regression,
    segmentation,
    sequence,
)
