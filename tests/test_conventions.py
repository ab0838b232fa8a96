"""Declared variants of a spec (conformance.variants): a target is held to the variant it
names, everything else is still checked, and the report says which conventions it followed."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

import conformance
import conformance.pytest_plugin
from conformance import check
from conformance.catalog import all_specs, get_spec
from conformance.cli import main
from conformance.variants import ConventionError, parse
from implementations import segmentation

# Dice draws smooth > 0 in about half its cases: 30 draws see it under any seed.
DRAWS = {"dtypes": ("float64",), "max_examples": 30, "seed": 3, "shrink": False}


def dice_smoothed_as_tversky(input, target, activation="softmax", form="standard", smooth=0.0,
                             include_background=True, classes="all", per_image=False,
                             ignore_index=None, reduction="mean"):
    """smp's and optax's Dice: (I + s) / ((P + G) / 2 + s), the canonical Dice at 2 s."""
    return segmentation.soft_dice_loss(
        input, target, activation=activation, form=form, smooth=2 * smooth,
        include_background=include_background, classes=classes, per_image=per_image,
        ignore_index=ignore_index, reduction=reduction)


def dice_smoothed_as_tversky_summing_as_mean(input, target, reduction="mean", **kw):
    """The same convention, and an unrelated defect: 'sum' returns the mean."""
    return dice_smoothed_as_tversky(input, target, reduction="mean" if reduction == "sum"
                                    else reduction, **kw)


def test_a_target_following_a_variant_fails_the_spec_and_conforms_to_the_variant():
    canonical = check(dice_smoothed_as_tversky, "soft_dice_loss",
                      properties=["matches_reference"], **DRAWS)
    assert not canonical.ok
    assert all(f.case.params["smooth"] > 0 for f in canonical.failures)

    followed = check(dice_smoothed_as_tversky, "soft_dice_loss",
                     conventions={"smoothing": "tversky"}, **DRAWS)
    assert followed.ok, str(followed)
    assert followed.conventions == {"smoothing": "tversky"}
    assert followed.finding == "conforms up to 1 documented convention"
    assert "vs spec 'soft_dice_loss' following smoothing='tversky': CONFORMS" in str(followed)
    assert followed.to_dict()["conventions"] == {"smoothing": "tversky"}


def test_a_variant_does_not_hide_an_unrelated_defect():
    report = check(dice_smoothed_as_tversky_summing_as_mean, "soft_dice_loss",
                   conventions={"smoothing": "tversky"},
                   properties=["matches_reference", "reduction_consistency"], **DRAWS)
    assert not report.ok
    assert {f.reduction for f in report.failures} == {"sum"}


def test_the_canonical_implementation_fails_a_variant_it_does_not_follow():
    report = check(segmentation.soft_dice_loss, "soft_dice_loss",
                   conventions={"smoothing": "tversky"}, properties=["matches_reference"],
                   **DRAWS)
    assert not report.ok


def test_a_target_declares_its_own_conventions():
    def declared(*args, **kwargs):
        return dice_smoothed_as_tversky(*args, **kwargs)

    declared.conformance_conventions = {"smoothing": "tversky"}
    report = check(declared, "soft_dice_loss", properties=["matches_reference"], **DRAWS)
    assert report.ok and report.conventions == {"smoothing": "tversky"}


def test_the_specs_own_value_is_no_convention():
    report = check(segmentation.soft_dice_loss, "soft_dice_loss",
                   conventions={"smoothing": "dice"}, properties=["matches_reference"],
                   **DRAWS)
    assert report.ok and report.conventions == {} and report.finding == "conforms"


def test_unknown_conventions_and_values_are_named_with_the_choices():
    with pytest.raises(ConventionError, match=r"declares no convention 'eps'.*smoothing"):
        check(segmentation.soft_dice_loss, "soft_dice_loss", conventions={"eps": "max"})
    with pytest.raises(ConventionError, match=r"no value 'half'.*'dice', 'tversky'"):
        check(segmentation.soft_dice_loss, "soft_dice_loss", conventions={"smoothing": "half"})
    with pytest.raises(ConventionError, match="declares no convention"):
        check(torch.nn.functional.l1_loss, "l1_loss", conventions={"smoothing": "dice"})


def test_the_cli_takes_conventions_and_rejects_unknown_ones(capsys):
    target = "tests.test_conventions:dice_smoothed_as_tversky"
    common = ["--spec", "soft_dice_loss", "--dtype", "float64", "--max-examples", "20",
              "--property", "matches_reference", "--seed", "3", "--no-shrink"]
    assert main(["check", target, *common]) == 1
    assert main(["check", target, *common, "--convention", "smoothing=tversky"]) == 0
    assert "following smoothing='tversky'" in capsys.readouterr().out
    assert main(["check", target, *common, "--convention", "smoothing=half"]) == 2
    assert "no value 'half'" in capsys.readouterr().err
    assert main(["check", target, *common, "--convention", "smoothing"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err


def test_parse_reads_numbers_and_booleans():
    assert parse("smoothing=tversky") == ("smoothing", "tversky")
    assert parse(" eps = 1e-7 ") == ("eps", 1e-7)
    assert parse("per_image=true") == ("per_image", True)
    assert parse("n=3") == ("n", 3)


def test_the_reproducer_of_a_failure_under_a_variant_runs_as_printed():
    report = check(dice_smoothed_as_tversky_summing_as_mean, "soft_dice_loss",
                   conventions={"smoothing": "tversky"}, properties=["reduction_consistency"],
                   target_path="tests.test_conventions:dice_smoothed_as_tversky_summing_as_mean",
                   **DRAWS)
    (failure,) = report.failures
    assert "conventions={'smoothing': 'tversky'}" in failure.reproducer
    namespace: dict = {}
    exec(compile(failure.reproducer, "<reproducer>", "exec"), namespace)
    again = conformance.recheck(
        dice_smoothed_as_tversky_summing_as_mean, "soft_dice_loss", "reduction_consistency",
        {k: torch.as_tensor(v) for k, v in failure.case.inputs.items()}, failure.case.params,
        conventions={"smoothing": "tversky"}, verbose=False)
    assert again is not None


@pytest.mark.parametrize("spec", [s for s in all_specs() if s.variants], ids=lambda s: s.name)
def test_every_variant_is_a_keyword_of_the_reference_that_changes_its_value(spec):
    # Each declared value other than the spec's changes the reference on some named edge case
    # (a smoothed one, a clamped log); the spec's own value changes none.
    keywords = inspect.signature(spec.reference).parameters
    # The named edge cases, and their empty forms (where a 'mean' of nothing is a convention).
    cases = [*spec.edge_cases, *(e for c in spec.edge_cases for form in spec.empty
                                  if (e := form.make(c)) is not None)]
    for variant in spec.variants:
        assert keywords[variant.name].default == variant.canonical
        for value in variant.choices:
            bound = get_spec(spec.name).following_conventions({variant.name: value})
            with np.errstate(all="ignore"):
                changed = [not np.allclose(bound.call_reference(c, r),
                                           spec.call_reference(c, r), equal_nan=True)
                           for c in cases for r in spec.calls]
            assert any(changed) == (value != variant.canonical), (variant.name, value)


# The pytest plugin passes conventions through to check, like every other option.
test_the_plugin_holds_a_target_to_its_variant = conformance.pytest_plugin.conformance_tests(
    dice_smoothed_as_tversky, "soft_dice_loss", conventions={"smoothing": "tversky"},
    properties=["matches_reference"], dtypes=["float64"], max_examples=20, seed=3)


def test_torch_bce_follows_its_log_clamp_and_not_the_unclamped_formula():
    # torch documents the clamp of each log term at -100; the unclamped formula owes inf at
    # p = 0 against a target of 1, which the spec's edge case holds.
    import torch.nn.functional as F

    kept = check(F.binary_cross_entropy, "binary_cross_entropy", dtypes=["float64"],
                 devices="cpu", properties=["matches_reference"], max_examples=0)
    assert kept.ok
    unclamped = check(F.binary_cross_entropy, "binary_cross_entropy", dtypes=["float64"],
                      devices="cpu", properties=["matches_reference"], max_examples=0,
                      conventions={"log_clamp": None})
    assert not unclamped.ok and unclamped.conventions == {"log_clamp": None}
