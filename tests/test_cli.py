"""`python -m conformance` as a user runs it: a subprocess, its exit code, stdout and stderr."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from conformance import all_specs, get_spec
from conformance.properties.registry import properties_of

TESTS_DIR = Path(__file__).resolve().parent
BCE = "binary_cross_entropy"
BCE_TARGET = "torch.nn.functional:binary_cross_entropy"
MUTANT = "mutants:bce_clamped_probabilities"  # tests/mutants.py: rejected by matches_reference

# The ci profile is derandomized, so every verdict below is the same on every run; one intra-op
# thread per subprocess because the suite itself runs under `pytest -n 2` on two cores.
ENV = {**os.environ, "CONFORMANCE_PROFILE": "ci", "OMP_NUM_THREADS": "1"}


def cli(*args: str, cwd: Path = TESTS_DIR) -> subprocess.CompletedProcess[str]:
    """Run the CLI from tests/, where `mutants` (and a reproducer's import of it) resolves."""
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args],
        cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300, check=False,
    )


def _load_json(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    assert isinstance(data, list)
    return data


# --------------------------------------------------------------------------- list, show


def test_list_names_every_spec():
    proc = cli("list")
    assert proc.returncode == 0, proc.stderr
    listed = {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}
    assert listed == {spec.name for spec in all_specs()}


def test_show_prints_signature_and_properties():
    spec = get_spec("cross_entropy")
    proc = cli("show", spec.name)
    assert proc.returncode == 0, proc.stderr
    assert f"signature:   {spec.signature}" in proc.stdout
    for prop in properties_of(spec):
        assert f"{prop.name}: {prop.description}" in proc.stdout


# --------------------------------------------------------------------------- check


@pytest.fixture(scope="module")
def conforming_check(tmp_path_factory):
    out = tmp_path_factory.mktemp("conforming") / "report.json"
    proc = cli("check", BCE_TARGET, "--spec", BCE, "--max-examples", "5", "--json", str(out))
    return proc, _load_json(out)


@pytest.fixture(scope="module")
def mutant_check(tmp_path_factory):
    # No --max-examples: the full ci profile, as a user's CI run would see it.
    out = tmp_path_factory.mktemp("mutant") / "report.json"
    proc = cli("check", MUTANT, "--spec", BCE, "--property", "matches_reference",
               "--json", str(out))
    return proc, _load_json(out)


def test_check_conforming_target_exits_0(conforming_check):
    proc, _ = conforming_check
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "CONFORMS" in proc.stdout
    assert "DOES NOT CONFORM" not in proc.stdout


def test_check_json_of_conforming_target(conforming_check):
    _, reports = conforming_check
    [report] = reports
    assert report["ok"] is True
    assert report["spec"] == BCE
    assert report["profile"] == "ci"
    # Every property in each default dtype has a result; those that ran saw examples, and
    # only GPU comparisons and torch's accepted float16 gradient deviation did not pass.
    props = {p.name for p in properties_of(get_spec(BCE))}
    assert {(r["property"], r["dtype"]) for r in report["results"]} == {
        (p, d) for p in props for d in ("float64", "float32", "float16", "bfloat16")}
    only = {p.name: p.home_dtype(get_spec(BCE)) for p in properties_of(get_spec(BCE))
            if p.home_dtype(get_spec(BCE))}
    assert only["gradient_matches_own_values"] == "float64"
    for r in report["results"]:
        if r["property"] == "agrees_with_cpu" or only.get(r["property"], r["dtype"]) != r[
                "dtype"]:
            assert r["status"] == "skipped"
        elif r["property"] == "gradient_matches_own_values":
            # BCE's probabilities crowd 0 and 1, where the target cannot be differenced.
            assert r["status"] == "passed" or r["reason"].startswith("no evidence"), r
        elif (r["property"], r["dtype"]) == ("gradient_matches_reference", "float16"):
            assert r["status"] == "deviation" and "1e-12" in r["deviation"]
        else:
            assert r["status"] == "passed" and r["examples"] > 0, r


def test_check_mutant_exits_1_with_input_and_reproducer(mutant_check):
    proc, _ = mutant_check
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "DOES NOT CONFORM" in proc.stdout
    assert "matches_reference" in proc.stdout
    assert "input = torch.tensor(" in proc.stdout
    assert "conformance.recheck(" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_check_json_of_mutant(mutant_check):
    _, reports = mutant_check
    [report] = reports
    assert report["ok"] is False
    assert {r["property"] for r in report["results"]} == {"matches_reference"}
    assert any(r["status"] == "failed" and r["failure"] for r in report["results"])


def test_printed_reproducer_runs_and_shows_the_failure_again(mutant_check):
    check_proc, [report] = mutant_check
    failure = next(r["failure"] for r in report["results"] if r["failure"])
    # The JSON's reproducer is the one printed (there indented by four spaces).
    assert failure["reproducer"] in check_proc.stdout.replace("\n    ", "\n")
    # `-c` puts the cwd (tests/) on sys.path, as a user pasting into `python` there would get.
    proc = subprocess.run([sys.executable, "-c", failure["reproducer"]], cwd=TESTS_DIR, env=ENV,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert f"{BCE} / matches_reference" in proc.stdout
    # Same inputs, same deterministic computation: the very same finding, not just "a" failure.
    assert failure["message"] in proc.stdout
    assert "holds on this input" not in proc.stdout


# --------------------------------------------------------------------------- usage errors


def _assert_usage_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]


def test_unknown_spec_suggests_a_close_name():
    proc = cli("check", BCE_TARGET, "--spec", "binary_cross_entropi")
    _assert_usage_error(proc, "'binary_cross_entropi'", "Did you mean", f"'{BCE}'")


@pytest.mark.parametrize(
    ("target", "needle"),
    [
        ("no_such_module_for_conformance:loss", "'no_such_module_for_conformance'"),
        ("torch.nn.functional:no_such_loss", "'no_such_loss'"),
        ("math:pi", "not a callable"),
    ],
    ids=["missing-module", "missing-attribute", "not-callable"],
)
def test_bad_target_is_a_usage_error(target, needle):
    _assert_usage_error(cli("check", target, "--spec", BCE), needle)


def test_unknown_property_is_a_usage_error_listing_the_real_ones():
    proc = cli("check", BCE_TARGET, "--spec", BCE, "--property", "no_such_property")
    _assert_usage_error(proc, "'no_such_property'", "matches_reference")


# --------------------------------------------------------------------------- file.py:attr


LOSS_FILE = textwrap.dedent("""\
    import torch.nn.functional as F


    def bce(input, target, weight=None, reduction="mean"):
        return F.binary_cross_entropy(input, target, weight=weight, reduction=reduction)


    def bce_minus_one(input, target, weight=None, reduction="mean"):
        return bce(input, target, weight, reduction) - 1.0
""")


@pytest.mark.parametrize(("attr", "code", "verdict"),
                         [("bce", 0, "CONFORMS"), ("bce_minus_one", 1, "DOES NOT CONFORM")])
def test_file_path_target(tmp_path, attr, code, verdict):
    # Both outcomes: a conforming verdict alone would not show the file's code is what ran.
    path = tmp_path / "my_losses.py"
    path.write_text(LOSS_FILE)
    proc = cli("check", f"{path}:{attr}", "--spec", BCE, "--property", "nonnegative",
               "--max-examples", "5")
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0].endswith(f"vs spec '{BCE}': {verdict}")
    assert attr in proc.stdout.splitlines()[0]


# --------------------------------------------------------------------------- run


def test_run_one_spec_prints_table_summary_and_reports(tmp_path):
    out, md, xml = tmp_path / "run.json", tmp_path / "run.md", tmp_path / "run.xml"
    proc = cli("run", "--spec", BCE, "--max-examples", "5", "--dtype", "float64",
               "--dtype", "float32", "--json", str(out), "--markdown", str(md),
               "--junit", str(xml))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    spec = get_spec(BCE)
    for prop in properties_of(spec):
        if prop.name in ("agrees_with_cpu", "gradient_matches_own_values"):
            continue  # skipped without a GPU; float64 alone, and BCE gives it little evidence
        if prop.home_dtype(spec) == "float32":  # runs in float32 alone
            assert re.search(rf"^  {prop.name}\s+skipped 0\s+pass \d+$", proc.stdout, re.M)
            continue
        # One row per property: a passing cell for each dtype asked for.
        assert re.search(rf"^  {prop.name}\s+pass \d+\s+pass \d+$", proc.stdout, re.M), prop.name

    run = json.loads(out.read_text())
    assert set(run) >= {"environment", "summary", "reports"}
    assert run["environment"]["torch"] and run["environment"]["python"]
    reports = run["reports"]
    assert len(reports) == len(spec.implementations)
    assert all(r["ok"] is True for r in reports)
    checks = sum(len(r["results"]) for r in reports)
    examples = sum(res["examples"] for r in reports for res in r["results"])
    assert checks == len(spec.implementations) * len(properties_of(spec)) * 2
    summary = (f"{len(spec.implementations)} implementation(s) of 1 spec(s): {checks} checks,"
               f" {examples} examples; {len(spec.implementations)} conform, 0 conform up to"
               " documented conventions, 0 with known defects, 0 nonconforming;")
    assert summary in proc.stdout and summary in run["summary"]
    assert proc.stdout.rstrip().endswith("(profile ci, seed derandomized)")

    text = md.read_text()
    assert text.startswith("# Loss conformance matrix")
    assert f"| `torch.nn.functional.binary_cross_entropy` | {BCE} |" in text
    # The command that reproduces the Markdown, without the other outputs' paths.
    assert (f"Made by `python -m conformance run --spec {BCE} --max-examples 5 --dtype float64"
            f" --dtype float32 --markdown {md}`.") in text
    root = ElementTree.parse(xml).getroot()
    assert root.tag == "testsuites"
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == checks
    assert all(c.find("failure") is None for c in cases)


def test_run_exports_a_failure_with_its_reproducer(tmp_path):
    """A nonconforming cell reaches Markdown with its reproducer and JUnit as a <failure>."""
    bad = tmp_path / "bad_deviations.toml"
    bad.write_text("")  # no deviation accepted: torch's float16 CE overflow must show
    md, xml = tmp_path / "run.md", tmp_path / "run.xml"
    proc = cli("run", "--spec", "cross_entropy", "--dtype", "float16", "--deviations", str(bad),
               "--no-shrink", "--markdown", str(md), "--junit", str(xml))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "**FAIL**" in md.read_text() and "conformance.recheck(" in md.read_text()
    failures = ElementTree.parse(xml).getroot().findall("./testsuite/testcase/failure")
    # The overflow shows as inf, or as NaN where the smoothing weight underflows (0 * inf).
    assert failures and any(needle in failures[0].get("message") for needle in (
        "inf where the value is finite", "NaN where a finite value is expected"))

    proc = cli("run", "--spec", "cross_entropy", "--dtype", "float16", "--no-shrink")
    assert proc.returncode == 0, proc.stdout + proc.stderr  # the project's file accepts it
    assert "known deviation" in proc.stdout


# --------------------------------------------------------------------------- option errors


@pytest.mark.parametrize(("args", "needle"), [
    (("check", BCE_TARGET, "--spec", BCE, "--max-examples", "-1"), "must be at least 0"),
    (("list", "--family", "nope"), "no family 'nope'"),
    (("check", BCE_TARGET, "--spec", BCE, "--json", "/nonexistent-dir/x.json"),
     "its folder does not exist"),
    (("check", BCE_TARGET, "--spec", BCE, "--dtype", "float8"), "invalid choice"),
])
def test_bad_options_are_usage_errors_before_any_work(args, needle):
    proc = cli(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- workers


def _verdict_lines(text: str) -> list[str]:
    """The report without its timings."""
    return [re.sub(r"\d+\.\d+s", "", line) for line in text.splitlines()]


def test_workers_give_the_report_of_one_process(tmp_path):
    args = ("check", "mutants:mse_relative", "--spec", "mse_loss", "--dtype", "float64",
            "--dtype", "float16")
    one, two = cli(*args), cli(*args, "-n", "2", "--json", str(tmp_path / "two.json"))
    assert one.returncode == two.returncode == 1, one.stderr + two.stderr
    assert _verdict_lines(one.stdout) == _verdict_lines(two.stdout)
    (report,) = _load_json(tmp_path / "two.json")
    dtypes = [r["dtype"] for r in report["results"]]
    assert dtypes == sorted(dtypes, key=["float64", "float16"].index)  # in order


def test_run_with_workers_tables_every_target_in_order():
    one = cli("run", "--spec", "l1_loss", "--spec", "mse_loss", "--dtype", "float32")
    two = cli("run", "--spec", "l1_loss", "--spec", "mse_loss", "--dtype", "float32", "-n", "2")
    assert one.returncode == two.returncode == 0, one.stdout + two.stdout
    assert _verdict_lines(one.stdout)[:-3] == _verdict_lines(two.stdout)[:-3]


def test_bad_worker_count_is_a_usage_error():
    proc = cli("run", "-n", "0")
    assert proc.returncode == 2 and "workers" in proc.stderr
