"""A spec declared outside the catalog, as the README shows it (its "Your own spec" example):
checked through the API, the CLI (a file path for the target and the spec), parallel workers,
`show`, and a reproducer that names the spec by its path and runs as printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import conformance
from conformance.catalog import spec_path
from conformance.cli import load_target

README = Path(__file__).resolve().parents[1] / "README.md"
ENV = {**os.environ, "CONFORMANCE_PROFILE": "ci", "OMP_NUM_THREADS": "1"}
FAST = {"profile": "ci", "dtypes": ("float64", "float32")}

# A port that forgot the epsilon term's sign: 1 + p_t instead of 1 - p_t.
WRONG = '''

def poly1_flipped(input, target, epsilon=1.0, reduction="mean"):
    ce = F.cross_entropy(input, target, reduction="none")
    loss = ce + epsilon * (1 + torch.exp(-ce))
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]
'''


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's example, as the file it says it is, with a wrong port appended."""
    code = re.search(r"```python\n# poly1_spec.py\n(.*?)```", README.read_text(), re.S)
    assert code, "the README's 'Your own spec' example is missing"
    path = tmp_path_factory.mktemp("user") / "poly1_spec.py"
    path.write_text(code.group(1) + WRONG)
    return path


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conformance", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=300, check=False)


def test_the_readme_example_conforms_and_a_wrong_port_does_not(example: Path):
    spec = conformance.get_spec(f"{example}:POLY1")
    assert isinstance(spec, conformance.LossSpec) and spec.name == "poly1_cross_entropy"
    right = load_target(f"{example}:poly1_cross_entropy")
    assert conformance.check(right, spec, **FAST).ok
    wrong = conformance.check(load_target(f"{example}:poly1_flipped"), spec, **FAST)
    assert not wrong.ok
    assert {f.property for f in wrong.failures} >= {"matches_reference"}


def test_a_reproducer_names_the_spec_by_its_path_and_runs_as_printed(example: Path):
    spec = conformance.get_spec(f"{example}:POLY1")
    assert spec_path(spec) == f"{example}:POLY1"
    report = conformance.check(load_target(f"{example}:poly1_flipped"), spec,
                               properties=["matches_reference"], profile="ci",
                               dtypes=("float64",), target_path=f"{example}:poly1_flipped")
    snippet = report.failures[0].reproducer
    assert f"{str(example)!r}" in snippet or f"'{example}:POLY1'" in snippet
    proc = subprocess.run([sys.executable, "-c", snippet], cwd=example.parent.parent, env=ENV,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "poly1_cross_entropy / matches_reference" in proc.stdout


def test_the_cli_takes_a_spec_by_path_in_one_process_and_in_workers(example: Path):
    target, spec = f"{example.name}:poly1_cross_entropy", f"{example.name}:POLY1"
    for workers in ("1", "2"):
        proc = cli("check", target, "--spec", spec, "-n", workers, "--dtype", "float64",
                   "--dtype", "float32", cwd=example.parent)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "poly1_cross_entropy" in proc.stdout and "CONFORMS" in proc.stdout
    shown = cli("show", spec, cwd=example.parent)
    assert shown.returncode == 0, shown.stderr
    assert "poly1_cross_entropy(input, target, epsilon=1.0, reduction='mean')" in shown.stdout


@pytest.mark.parametrize(("spec", "needle"), [
    ("nowhere.py:POLY1", "cannot load the spec"),
    ("poly1_spec.py:NOPE", "has no attribute"),
    ("poly1_spec.py:poly1_reference", "not a conformance.LossSpec"),
])
def test_a_spec_path_that_names_no_spec_is_a_usage_error(example: Path, spec: str,
                                                         needle: str):
    proc = cli("check", f"{example.name}:poly1_cross_entropy", "--spec", spec,
               cwd=example.parent)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert needle in proc.stderr
