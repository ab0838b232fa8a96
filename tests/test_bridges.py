"""Framework bridges (conformance.bridges): a NumPy or JAX function is checked as directly as a
torch one; a correct port conforms, a wrong one is rejected, a framework's error is reported,
and JAX's 64-bit switch is left as the process had it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import conformance
from conformance import OptionError, check
from conformance.bridges import FrameworkError, bridged, framework_of
from tests.ports import losses

VALUES = ["matches_reference", "reduction_consistency", "output_dtype"]
FAST = {"max_examples": 12, "seed": 2, "shrink": False}
ROOT = Path(__file__).resolve().parents[1]
needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                               reason="JAX is not installed")


def test_a_correct_numpy_function_conforms_and_its_gradients_are_not_applicable():
    report = check(losses.numpy_mse_loss, "mse_loss", framework="numpy", **FAST,
                   properties=[*VALUES, "gradient_matches_reference"])
    assert report.ok, str(report)
    gradient = [r for r in report.results if r.property == "gradient_matches_reference"]
    assert gradient and all(r.status == "skipped" for r in gradient)
    assert "values only" in gradient[0].reason


def test_a_wrong_numpy_function_is_rejected():
    report = check(losses.numpy_mse_loss_in_float32, "mse_loss", framework="numpy", **FAST,
                   properties=VALUES, dtypes=("float64",))
    assert not report.ok
    assert {f.property for f in report.open_failures} >= {"output_dtype"}


def test_a_numpy_function_that_edits_its_input_in_place_is_caught():
    report = check(losses.numpy_mse_loss_in_place, "mse_loss", framework="numpy", **FAST,
                   dtypes=("float64",), properties=["no_input_mutation"])
    (row,) = report.results
    assert row.status == "failed" and "modified its argument 'input' in place" in (
        row.failure.message)


def test_numpy_bfloat16_comes_through_ml_dtypes_or_is_not_applicable():
    report = check(losses.numpy_mse_loss, "mse_loss", framework="numpy", **FAST,
                   properties=["matches_reference"], dtypes=("bfloat16",))
    (row,) = report.results
    if importlib.util.find_spec("ml_dtypes") is None:
        assert row.status == "skipped" and "NumPy has no bfloat16" in row.reason
    else:
        assert row.status == "passed" and row.examples > 0


@needs_jax
def test_a_correct_jax_function_conforms_with_jax_gradients():
    report = check(losses.jax_bce_with_logits, "binary_cross_entropy_with_logits",
                   framework="jax", dtypes=("float64", "float32"), **FAST,
                   properties=[*VALUES, "gradient_matches_reference"])
    assert report.ok, str(report)
    assert all(r.examples > 0 for r in report.results)


@needs_jax
def test_a_wrong_jax_function_is_rejected_and_its_reproducer_runs_as_printed(tmp_path):
    report = check(losses.jax_bce_with_logits_naive, "binary_cross_entropy_with_logits",
                   framework="jax", dtypes=("float32",), properties=["matches_reference"],
                   **FAST)
    assert not report.ok
    failure = report.open_failures[0]
    assert "conformance.bridged(fn, 'jax')" in failure.reproducer
    script = tmp_path / "repro.py"
    script.write_text(failure.reproducer)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=str(tmp_path.parent), timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert "nan" in done.stdout or "inf" in done.stdout


@needs_jax
def test_a_jax_error_is_reported_as_the_target_raising():
    report = check(losses.jax_raises, "binary_cross_entropy_with_logits", framework="jax",
                   dtypes=("float64",), properties=["matches_reference"], **FAST)
    assert not report.ok
    assert "the target raised RuntimeError: not ported yet" in report.open_failures[0].message


@needs_jax
def test_jax_64_bit_types_are_enabled_around_each_call_only():
    import jax
    import jax.numpy as jnp

    before = jax.config.jax_enable_x64
    check(losses.jax_bce_with_logits, "binary_cross_entropy_with_logits", framework="jax",
          dtypes=("float64",), properties=["matches_reference"], **FAST)
    assert jax.config.jax_enable_x64 == before
    if not before:
        with pytest.warns(UserWarning, match="truncated to dtype float32"):
            assert jnp.zeros(1, dtype=jnp.float64).dtype == jnp.float32  # JAX's own default


@needs_jax
def test_the_framework_is_told_from_the_function_where_it_can_be():
    import jax

    assert framework_of(jax.jit(losses.jax_bce_with_logits)) == "jax"
    assert framework_of(np.mean) == "numpy"
    assert framework_of(losses.torch_bce_with_logits) == "torch"
    assert framework_of(losses.jax_bce_with_logits) == "torch"  # a user's module: name it
    twice = bridged(bridged(losses.jax_bce_with_logits, "jax"))
    assert twice.conformance_wrapped is losses.jax_bce_with_logits


needs_keras = pytest.mark.skipif(importlib.util.find_spec("keras") is None
                                 or importlib.util.find_spec("jax") is None,
                                 reason="Keras (on JAX) is not installed")


@needs_keras
def test_keras_on_jax_conforms_where_correct_and_is_rejected_where_not():
    report = check(losses.keras_mse_loss, "mse_loss", framework="keras", **FAST,
                   dtypes=("float64", "float32"),
                   properties=[*VALUES, "gradient_matches_reference"])
    assert report.ok, str(report)
    # keras.ops.mean computes a float64 mean in float32 (Keras 3.15.1; docs/findings.md 3u).
    report = check(losses.keras_mse_loss_by_ops_mean, "mse_loss", framework="keras", **FAST,
                   dtypes=("float64", "float32"), properties=["matches_reference"])
    assert [r.status for r in report.results] == ["failed", "passed"]
    # keras.losses.mean_squared_error averages over the last axis: its 'none' is per row.
    report = check(losses.keras_mean_squared_error, "mse_loss", framework="keras", **FAST,
                   dtypes=("float64",), properties=["matches_reference"])
    assert not report.ok
    assert any("output shape" in f.message for f in report.open_failures)


def test_an_unknown_or_missing_framework_is_a_clear_usage_error():
    with pytest.raises(OptionError, match=r"unknown framework 'tensorflow'.*torch, numpy, jax"):
        check(losses.numpy_mse_loss, "mse_loss", framework="tensorflow")
    if importlib.util.find_spec("keras") is None:
        with pytest.raises(FrameworkError, match="Keras is not installed"):
            bridged(losses.numpy_mse_loss, "keras")


def test_the_cli_takes_a_framework(capsys):
    from conformance.cli import main

    code = main(["check", "tests.ports.losses:numpy_mse_loss", "--spec", "mse_loss",
                 "--framework", "numpy", "--property", "matches_reference", "--dtype",
                 "float64", "--max-examples", "10"])
    assert code == 0, capsys.readouterr().out
    assert conformance.bridged is bridged

