"""snapshot / compare: the same environment gives identical records, each kind of change is
reported as what it is, the gate "no worse than before against float64" passes and fails where
it should, and a damaged or mismatched baseline is a clear error."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from conformance import drift, regression
from conformance.baseline import BaselineError, decode_cases, encode_cases, read
from conformance.case import Case
from conformance.catalog import get_spec
from conformance.cli import main
from conformance.regression import CorpusChanged, compare_to, take_snapshot

MSE = get_spec("mse_loss")
DTYPES = ["float32", "float16"]
ROOT = Path(__file__).resolve().parent.parent


def snapshot(folder: Path, fn, spec=MSE, size: int = 4) -> None:
    take_snapshot([(spec, "target")], folder, lambda path: fn, dtypes=DTYPES, devices=["cpu"],
                  size=size)


def compared(folder: Path, fn) -> regression.DriftReport:
    return compare_to(folder, lambda path: fn)[0]


def changes(report: regression.DriftReport) -> list[drift.Change]:
    return [c for row in report.rows for c in row.changes]


# Deliberately changed mse_loss: what an upgrade might do to it.
def one_ulp_up(input, target, reduction="mean"):
    out = F.mse_loss(input, target, reduction=reduction)
    up = torch.nextafter(out, torch.full_like(out, float("inf")))
    return out + torch.where(torch.isfinite(out), up - out, 0.0).detach()


def nan_in_first(input, target, reduction="mean"):
    out = F.mse_loss(input, target, reduction=reduction).clone()
    out.view(-1)[0] = float("nan")
    return out


def returns_float64(input, target, reduction="mean"):
    return F.mse_loss(input.double(), target.double(), reduction=reduction)


def mean_over_n_plus_one(input, target, reduction="mean"):
    if reduction != "mean":
        return F.mse_loss(input, target, reduction=reduction)
    return F.mse_loss(input, target, reduction="sum") / (input.numel() + 1)


def raises(input, target, reduction="mean"):
    raise RuntimeError("not implemented for this dtype")


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("baseline")
    snapshot(folder, F.mse_loss)
    return folder


def test_the_same_environment_is_bitwise_identical(baseline: Path) -> None:
    report = compared(baseline, F.mse_loss)
    assert report.ok and report.rows
    kinds = {c.kind for c in changes(report)}
    assert kinds <= {drift.IDENTICAL, drift.SKIPPED} and drift.IDENTICAL in kinds
    assert all(r.verdict == drift.IDENTICAL for r in report.rows)


def test_one_ulp_is_drift_within_the_rule(baseline: Path) -> None:
    report = compared(baseline, one_ulp_up)
    drifted = [c for c in changes(report) if c.kind == drift.DRIFT]
    assert drifted and report.ok
    assert max(c.max_ulps for c in drifted) == pytest.approx(1.0, abs=0.01)
    # one ULP up: nearer the reference where the value had rounded down, further where up
    assert 0 < sum(c.closer + c.further for c in drifted) <= sum(c.elements for c in drifted)
    assert sum(c.further for c in drifted) > 0
    assert any(" further)" in row.summary() for row in report.rows)


def test_a_new_nan_is_worse(baseline: Path) -> None:
    report = compared(baseline, nan_in_first)
    assert not report.ok
    assert {c.kind for c in changes(report) if c.worse} == {drift.NEW_NAN}


def test_a_changed_dtype_is_worse(baseline: Path) -> None:
    report = compared(baseline, returns_float64)
    worse = [c for c in changes(report) if c.worse]
    assert worse and {c.kind for c in worse} == {drift.CHANGED}
    assert all(c.record.dtype != "float64" for c in worse)


def test_a_changed_mean_denominator_is_worse_for_mean_only(baseline: Path) -> None:
    report = compared(baseline, mean_over_n_plus_one)
    worse_rows = {(r.dtype, r.reduction) for r in report.worse}
    assert worse_rows and {reduction for _, reduction in worse_rows} == {"mean"}
    assert "error against float64" in report.worse[0].worse[0].why


def test_a_new_error_is_worse_and_a_fixed_one_is_not(tmp_path: Path, baseline: Path) -> None:
    report = compared(baseline, raises)
    assert {c.kind for c in changes(report) if c.worse} == {drift.NEW_ERROR}
    snapshot(tmp_path, raises)
    fixed = compared(tmp_path, F.mse_loss)
    assert fixed.ok and drift.FIXED_ERROR in {c.kind for c in changes(fixed)}


def test_the_gate_passes_a_move_towards_the_reference(tmp_path: Path) -> None:
    """A baseline made from a wrong denominator; the fixed code moves towards float64."""
    snapshot(tmp_path, mean_over_n_plus_one)
    report = compared(tmp_path, F.mse_loss)
    assert report.ok
    assert any(r.better for r in report.rows if r.reduction == "mean")


def test_cli_snapshot_then_compare(tmp_path: Path) -> None:
    out = tmp_path / "b"
    assert main(["snapshot", "torch.nn.functional:mse_loss", "--spec", "mse_loss", "--out",
                 str(out), "--size", "2", "--dtype", "float32"]) == 0
    md, js, junit = tmp_path / "d.md", tmp_path / "d.json", tmp_path / "d.xml"
    assert main(["compare", str(out), "--markdown", str(md), "--json", str(js),
                 "--junit", str(junit)]) == 0
    assert json.loads(js.read_text())["ok"] is True
    assert "| mse_loss |" in md.read_text() and "<testsuite" in junit.read_text()


def test_cli_compare_exits_1_when_worse(tmp_path: Path) -> None:
    module = tmp_path / "drifted.py"
    module.write_text("import torch.nn.functional as F\n"
                      "def mse(input, target, reduction='mean'):\n"
                      "    return F.mse_loss(input, target, reduction=reduction) * 1.01\n"
                      "def good(input, target, reduction='mean'):\n"
                      "    return F.mse_loss(input, target, reduction=reduction)\n")
    out = tmp_path / "b"
    assert main(["snapshot", f"{module}:good", "--spec", "mse_loss", "--out", str(out),
                 "--size", "2", "--dtype", "float32"]) == 0
    # the same corpus, the drifted code
    _edit_manifest(out, lambda body: body["targets"][0].update(target=f"{module}:mse"))
    assert main(["compare", str(out)]) == 1


# ----------------------------------------------------------------------------- damage


def _copy(baseline: Path, tmp_path: Path) -> Path:
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(baseline, folder)
    return folder


def _edit_manifest(folder: Path, edit) -> None:
    manifest = folder / "manifest.json"
    body = json.loads(manifest.read_text())
    edit(body)
    manifest.write_text(json.dumps(body))


def test_a_truncated_records_file_is_named(tmp_path: Path, baseline: Path) -> None:
    folder = _copy(baseline, tmp_path)
    records = folder / "records" / "0.npz"
    records.write_bytes(records.read_bytes()[:100])
    with pytest.raises(BaselineError, match=r"records/0\.npz.*checksum"):
        read(folder)


def test_a_truncated_manifest_is_named(tmp_path: Path, baseline: Path) -> None:
    folder = _copy(baseline, tmp_path)
    manifest = folder / "manifest.json"
    manifest.write_text(manifest.read_text()[:200])
    with pytest.raises(BaselineError, match=r"manifest\.json: not valid JSON"):
        read(folder)


def test_a_hand_edited_corpus_is_named(tmp_path: Path, baseline: Path) -> None:
    folder = _copy(baseline, tmp_path)
    _edit_manifest(folder, lambda body: body["corpus"]["mse_loss"]["cases"][0].update(
        label="edited"))
    with pytest.raises(BaselineError, match="do not hash to"):
        read(folder)


def test_a_newer_format_is_named(tmp_path: Path, baseline: Path) -> None:
    folder = _copy(baseline, tmp_path)
    _edit_manifest(folder, lambda body: body.update(format=99))
    with pytest.raises(BaselineError, match="format 99 is newer"):
        read(folder)


def test_a_missing_baseline_is_a_usage_error(tmp_path: Path, capsys) -> None:
    assert main(["compare", str(tmp_path / "nothing")]) == 2
    assert "no such baseline folder" in capsys.readouterr().err


def test_a_changed_corpus_is_named(monkeypatch, baseline: Path) -> None:
    other = replace(MSE, cases=lambda: st.just(Case({"input": np.ones(3),
                                                     "target": np.zeros(3)})))
    monkeypatch.setattr(regression, "get_spec", lambda name: other)
    with pytest.raises(CorpusChanged, match="spec 'mse_loss' now draws corpus"):
        compare_to(baseline, lambda path: F.mse_loss)
    report, _ = compare_to(baseline, lambda path: F.mse_loss, stored_corpus=True)
    assert report.ok  # the stored inputs still compare


def test_no_pickle_in_a_baseline(baseline: Path) -> None:
    for file in (baseline / "records").glob("*.npz"):
        with np.load(file, allow_pickle=False) as data:
            assert all(data[k].dtype != object for k in data.files)


def test_a_named_callable_parameter_is_stored_by_its_import_path(tmp_path: Path) -> None:
    # triplet_margin_with_distance_loss draws distance_function from named callables: a
    # snapshot stores each by its import path and compares on the same callable.
    spec = get_spec("triplet_margin_with_distance_loss")
    meta, _ = encode_cases(list(spec.edge_cases))
    assert {"callable": "conformance.specs.embedding:SQUARED_DISTANCE"} in [
        case["params"].get("distance_function") for case in meta]
    snapshot(tmp_path, F.triplet_margin_with_distance_loss, spec=spec, size=8)
    report, _ = compare_to(tmp_path, lambda path: F.triplet_margin_with_distance_loss)
    assert report.ok
    stored = read(tmp_path).corpus["triplet_margin_with_distance_loss"]
    assert any(c.params.get("distance_function") is not None for c in stored)


def test_a_callable_parameter_outside_the_suite_is_neither_stored_nor_imported() -> None:
    with pytest.raises(BaselineError, match="without an import path"):
        encode_cases([Case({"x": np.zeros(2)}, {"fn": lambda x, y: x})])
    entry = {"label": None, "inputs": [], "params": {"fn": {"callable": "os:system"}}}
    with pytest.raises(BaselineError, match="outside conformance"):
        decode_cases([entry], {}, "manifest.json")


# ----------------------------------------------------------------------------- run reports


def _report(tmp_path: Path, name: str, status: str) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"reports": [{"target": "t", "spec": "mse_loss", "results": [
        {"property": "matches_reference", "dtype": "float32", "device": "cpu",
         "status": status}]}]}))
    return path


def test_two_run_reports_show_the_verdicts_that_changed(tmp_path: Path, capsys) -> None:
    old, new = _report(tmp_path, "old.json", "passed"), _report(tmp_path, "new.json", "failed")
    assert main(["compare", str(old), str(new)]) == 1
    assert "matches_reference float32 cpu: passed -> failed" in capsys.readouterr().out
    assert main(["compare", str(new), str(old)]) == 0  # a fix is not a regression


def test_snapshot_runs_from_the_command_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "conformance", "snapshot", "--spec", "l1_loss",
                           "--size", "1", "--dtype", "float64", "--out", str(tmp_path / "b")],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "1 target(s), 1 spec(s)" in done.stdout
