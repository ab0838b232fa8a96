"""The three-way diff of an original and its port (conformance.diff): equal ports hold, a port
that fixes the original's bug is told so and holds, a port with a new bug does not, a shared
convention is agreement, and the CLI exits accordingly."""

from __future__ import annotations

import importlib.util
import json

import pytest

from conformance.cli import main
from conformance.diff import BOTH, BROKE, FIXED, diff
from implementations import segmentation
from tests.ports import losses

CASES = {"dtypes": ("float64", "float32"), "max_examples": 15, "seed": 4}
needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                               reason="JAX is not installed")
SPEC = "binary_cross_entropy_with_logits"


def test_a_port_equal_to_its_original_holds():
    report = diff(losses.torch_bce_with_logits, losses.torch_bce_with_logits, SPEC, **CASES)
    assert report.ok and not report.disagreements
    assert report.agreed == sum(report.compared.values()) > 0
    assert report.shared == 0


def test_a_port_that_fixes_the_originals_bug_is_told_so_and_holds():
    report = diff(losses.torch_bce_with_logits_naive, losses.numpy_bce_with_logits, SPEC,
                  frameworks=(None, "numpy"), **CASES)
    assert report.ok, str(report)
    assert report.of(FIXED) and not report.of(BROKE) and not report.of(BOTH)
    assert "the port fixed it" in str(report)


@needs_jax
def test_a_port_with_a_new_bug_does_not_hold_and_its_snippet_runs():
    report = diff(losses.torch_bce_with_logits, losses.jax_bce_with_logits_naive, SPEC,
                  frameworks=(None, "jax"), paths=(None, "tests.ports.losses:"
                                                   "jax_bce_with_logits_naive"), **CASES)
    assert not report.ok
    broke = report.of(BROKE)
    assert broke and not report.of(FIXED)
    first = broke[0]
    assert "nan" in first.port or "inf" in first.port
    namespace: dict = {}
    exec(first.snippet.replace("print(", "(lambda *a: None)("), namespace)  # runs as printed
    assert "port = conformance.bridged(port, 'jax')" in first.snippet


def dice_as_smp(input, target, smooth=0.0, **kw):
    """Dice smoothed as the Tversky index (smp's convention): the spec's Dice at 2 smooth."""
    return segmentation.soft_dice_loss(input, target, smooth=2 * smooth, **kw)


def dice_as_smp_port(input, target, smooth=0.0, **kw):
    return segmentation.soft_dice_loss(input, target, smooth=2.0 * smooth, **kw)


def test_a_shared_convention_is_agreement_and_can_be_named():
    report = diff(dice_as_smp, dice_as_smp_port, "soft_dice_loss", **CASES)
    assert report.ok and report.shared > 0  # both differ from the spec where smooth > 0
    named = diff(dice_as_smp, dice_as_smp_port, "soft_dice_loss",
                 conventions={"smoothing": "tversky"}, **CASES)
    assert named.ok and named.shared == 0
    # A port that follows the spec where the original follows its convention broke it.
    held = diff(dice_as_smp, segmentation.soft_dice_loss, "soft_dice_loss",
                conventions={"smoothing": "tversky"}, **CASES)
    assert not held.ok and held.of(BROKE)


def test_the_cli_exits_0_when_the_port_holds_and_1_when_it_does_not(tmp_path, capsys):
    common = ["--spec", SPEC, "--dtype", "float64", "--max-examples", "10"]
    out = tmp_path / "diff.json"
    assert main(["diff", "tests.ports.losses:torch_bce_with_logits",
                 "tests.ports.losses:torch_bce_with_logits", *common, "--json", str(out)]) == 0
    assert json.loads(out.read_text())["ok"] is True
    assert main(["diff", "tests.ports.losses:torch_bce_with_logits",
                 "tests.ports.losses:torch_bce_with_logits_naive", *common]) == 1
    assert "the port broke it" in capsys.readouterr().out
    with pytest.raises(SystemExit) as usage:  # argparse: an unknown framework is a usage error
        main(["diff", "tests.ports.losses:torch_bce_with_logits",
              "tests.ports.losses:torch_bce_with_logits", *common,
              "--port-framework", "tensorflow"])
    assert usage.value.code == 2
