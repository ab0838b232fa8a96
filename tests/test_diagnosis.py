"""Diagnosis (conformance.diagnosis): a failing target is told which of the spec's declared
conventions it follows, in every report format; a target that follows none is told so, and a
conforming target gets no diagnosis."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch

from conformance import check, export
from conformance.catalog import all_specs
from conformance.spec import LossSpec
from implementations import segmentation

DRAWS = {"dtypes": ("float64",), "max_examples": 40, "seed": 5, "shrink": False,
         "properties": ["matches_reference"]}


def variant_target(spec: LossSpec, conventions: dict[str, Any]):
    """A torch target that computes exactly the spec's reference under `conventions`."""
    reference = spec.as_declared().following_conventions(conventions).reference

    def as_numpy(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            value = value.detach()
            return value.double().numpy() if value.is_floating_point() else value.numpy()
        return value

    def target(*inputs: torch.Tensor, **params: Any) -> torch.Tensor:
        out = reference(*map(as_numpy, inputs), **{k: as_numpy(v) for k, v in params.items()})
        return torch.as_tensor(np.asarray(out, dtype=np.float64), dtype=inputs[0].dtype)

    target.__qualname__ = f"{spec.name}_{'_'.join(map(str, conventions.values()))}"
    target.conformance_gradients = False  # values only: no autodiff through NumPy
    return target


VARIANTS = [(spec, sets) for spec in all_specs() for sets in spec.convention_sets()[1:]]


@pytest.mark.parametrize(("spec", "conventions"), VARIANTS,
                         ids=[f"{s.name}-{c}" for s, c in VARIANTS])
def test_a_target_following_a_variant_is_diagnosed_as_that_variant_and_no_other(spec,
                                                                                 conventions):
    # A convention of the 'mean' of nothing shows on the spec's empty forms, checked in float32.
    empty = {"properties": ["matches_reference", "handles_empty_input"],
             "dtypes": ("float64", "float32")} if "empty_mean" in conventions else {}
    report = check(variant_target(spec, conventions), spec, **{**DRAWS, **empty})
    assert not report.ok, "the variant differs from the spec on no drawn case"
    failure = report.open_failures[0]
    assert failure.diagnosis is not None
    expected = {k: v for k, v in conventions.items()
                if v != next(x.canonical for x in spec.variants if x.name == k)}
    # One diagnosis: the variant's own conventions, or the fewest of them that compute the same
    # (a 0 / 0 score is NaN or 1 alike for a class absent_class='zero' already zeroes).
    (named,) = failure.diagnosis.matched
    assert named.items() <= expected.items(), str(failure.diagnosis)
    if named != expected:
        assert (expected.get("absent_class"), expected.get("empty_score")) == ("zero", "nan")
        assert named == {k: v for k, v in expected.items() if k != "empty_score"}
    # Checked with the diagnosed conventions, it conforms.
    assert check(variant_target(spec, conventions), spec, conventions=named,
                 **{**DRAWS, **empty}).ok


def dice_off_by_a_percent(input, target, **kw):
    return 1.01 * segmentation.soft_dice_loss(input, target, **kw)


def test_a_target_that_follows_no_variant_is_told_so():
    report = check(dice_off_by_a_percent, "soft_dice_loss", **DRAWS)
    diagnosis = report.open_failures[0].diagnosis
    assert diagnosis is not None and diagnosis.matched == () and diagnosis.on_failing_only == ()
    assert "matches none of soft_dice_loss's declared conventions" in str(diagnosis)
    assert "smoothing='tversky'" in str(diagnosis)  # what was tried


def test_a_conforming_target_gets_no_diagnosis_and_a_spec_without_variants_none_either():
    report = check(segmentation.soft_dice_loss, "soft_dice_loss", **DRAWS)
    assert report.ok and not report.failures

    def l1_doubled(input, target, reduction="mean"):
        return 2 * torch.nn.functional.l1_loss(input, target, reduction=reduction)

    report = check(l1_doubled, "l1_loss", **DRAWS)
    assert not report.ok and report.open_failures[0].diagnosis is None


def test_a_target_declaring_a_convention_it_does_not_follow_is_pointed_back_to_the_spec():
    def declared(*args, **kwargs):
        return segmentation.soft_dice_loss(*args, **kwargs)

    declared.conformance_conventions = {"smoothing": "tversky"}
    report = check(declared, "soft_dice_loss", **DRAWS)
    diagnosis = report.open_failures[0].diagnosis
    assert diagnosis.matched == ({},)
    assert "its own conventions (as declared)" in str(diagnosis)


def test_the_diagnosis_shows_in_every_report_format():
    spec = next(s for s in all_specs() if s.name == "soft_dice_loss")
    report = check(variant_target(spec, {"smoothing": "tversky"}), spec, **DRAWS)
    text = "matches soft_dice_loss with smoothing='tversky' on every case tried"
    assert text in str(report)
    assert "--convention smoothing=tversky" in str(report)
    assert text in export.markdown([report], {}, "summary")
    assert text in export.junit([report], 1.0)
    failure = json.loads(json.dumps(report.to_dict()))["results"][0]["failure"]
    assert failure["diagnosis"]["matched"] == [{"smoothing": "tversky"}]
    assert text in failure["diagnosis"]["text"]
