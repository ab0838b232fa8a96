"""Reference-and-conformance suite for deep-learning loss functions.

    report = conformance.check(fn, "cross_entropy")
    report.ok, report.failures, print(report)
    conformance.assert_conforms(fn, "sigmoid_focal_loss", profile="ci")
"""

from conformance.bridges import FRAMEWORKS, bridged
from conformance.case import Case
from conformance.catalog import UnknownSpec, all_specs, get_spec
from conformance.guard import NotApplicable, PropertyFailure, TargetError
from conformance.report import Failure, PropertyResult, Report
from conformance.runner import ConformanceError, OptionError, assert_conforms, check, recheck
from conformance.spec import LossSpec

__all__ = [
    "FRAMEWORKS",
    "Case",
    "ConformanceError",
    "Failure",
    "LossSpec",
    "NotApplicable",
    "OptionError",
    "PropertyFailure",
    "PropertyResult",
    "Report",
    "TargetError",
    "UnknownSpec",
    "all_specs",
    "assert_conforms",
    "bridged",
    "check",
    "get_spec",
    "recheck",
]
