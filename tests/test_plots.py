"""--plot: a PNG per failed value or gradient check, a panel per dtype; without matplotlib the
report says so and nothing else changes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from conformance import check
from conformance.cli import main
from implementations import segmentation

DRAWS = {"dtypes": ("float64", "float32"), "max_examples": 30, "seed": 5, "shrink": False}


def dice_smoothed_as_tversky(input, target, smooth=0.0, **kw):
    """Dice with smp's smoothing: (I + s) / ((P + G) / 2 + s), the spec's Dice at 2 s."""
    return segmentation.soft_dice_loss(input, target, smooth=2 * smooth, **kw)


def l1_in_float32(input, target, reduction="mean"):
    """Computes in float32 whatever the input (a float32-internal library)."""
    out = torch.nn.functional.l1_loss(input.float(), target.float(), reduction=reduction)
    return out.to(input.dtype)


def test_a_failure_gets_one_picture_per_failed_property_with_a_panel_per_dtype(tmp_path):
    pytest.importorskip("matplotlib")
    report = check(l1_in_float32, "l1_loss", properties=["matches_reference",
                                                         "gradient_matches_reference",
                                                         "output_dtype"],
                   plot=tmp_path, **DRAWS)
    assert not report.ok
    failed = {r.property for r in report.results if r.status == "failed"}
    assert failed == {"matches_reference", "gradient_matches_reference"}
    names = sorted(p.split("/")[-1] for p in report.plots)
    assert len(names) == 2 and all(n.endswith("-float64-float32.png") for n in names)
    for path in report.plots:
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot: {report.plots[0]}" in str(report)
    assert report.to_dict()["plots"] == report.plots


def test_a_conforming_target_gets_no_picture(tmp_path):
    pytest.importorskip("matplotlib")
    report = check(torch.nn.functional.l1_loss, "l1_loss", properties=["matches_reference"],
                   plot=tmp_path, **DRAWS)
    assert report.ok and report.plots == [] and not list(tmp_path.iterdir())


def test_without_matplotlib_the_report_says_so_and_the_verdict_stands(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises
    report = check(dice_smoothed_as_tversky, "soft_dice_loss",
                   properties=["matches_reference"], plot=tmp_path, **DRAWS)
    assert not report.ok and report.plots == []
    assert any("plots need matplotlib" in note for note in report.notes)


def test_the_cli_writes_pictures(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    code = main(["check", "tests.test_plots:l1_in_float32", "--spec", "l1_loss",
                 "--property", "matches_reference", "--dtype", "float64", "--max-examples",
                 "20", "--no-shrink", "--plot", str(tmp_path)])
    assert code == 1
    assert [p.name for p in tmp_path.iterdir()] == [
        "tests.test_plots.l1_in_float32-l1_loss-matches_reference-float64.png"]
    assert "plot: " in capsys.readouterr().out
