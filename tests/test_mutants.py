"""Every property rejects a deliberately wrong implementation (see tests/mutants.py)."""

from __future__ import annotations

import mutants
import pytest
import torch
from mutants import FAMILY_MUTANTS, GENERIC_MUTANTS

from conformance import all_specs, check, deviations, get_spec, recheck
from conformance.cli import load_target
from conformance.properties.registry import properties_of
from conformance.report import FAILED, PropertyResult

NEEDS_REDUCTION = {"matches_reference", "reduction_consistency"}
NEEDS_ACCELERATOR = {"agrees_with_cpu"}


def _generic_pairs():
    """(spec, property) pairs a generic wrapper covers: declared, and callable that way."""
    for spec in all_specs():
        declared = {p.name for p in properties_of(spec)}
        for prop in GENERIC_MUTANTS:
            if prop in declared and (spec.reductions or prop not in NEEDS_REDUCTION):
                yield spec, prop


def _generic_cases():
    for spec, prop in _generic_pairs():
        wrap = GENERIC_MUTANTS[prop]
        conforming = load_target(spec.implementations[0])
        yield spec.name, wrap(conforming), prop, f"{spec.name}-{wrap.__name__}"


CASES = [(s, m, p, f"{s}-{m.__name__}") for s, m, p in FAMILY_MUTANTS] + list(_generic_cases())


@pytest.mark.parametrize(("spec", "mutant", "prop"), [c[:3] for c in CASES],
                         ids=[c[3] for c in CASES])
def test_property_rejects_mutant(spec, mutant, prop):
    if prop in NEEDS_ACCELERATOR and not torch.cuda.is_available():
        pytest.skip("compares CUDA with the CPU; no CUDA device here"
                    " (tests/test_engine.py shows the comparison failing on the CPU)")
    # float64 resolves the smallest errors; float32 is where a wrong output dtype shows.
    report = check(mutant, spec, properties=[prop], dtypes=("float64", "float32"),
                   devices="auto")
    assert not report.ok
    assert not report.errors, [r.reason for r in report.errors]
    failed = [r for r in report.results if r.status == FAILED]
    assert failed
    failure = failed[0].failure
    assert failure.property == prop
    # The mutant is caught by what it computes, not by crashing on the inputs.
    assert "the target raised" not in failure.message, failure.message
    assert "conformance.recheck(" in failure.reproducer
    # And the report is no false alarm: a conforming implementation holds on that very input,
    # unless the deviations file records that it does not (torch's kl_div broadcasts a target
    # batch of 1).
    path = get_spec(spec).implementations[0]
    if _known_deviation(path, spec, prop, failure.dtype):
        return
    conforming = load_target(path)
    args, params = failure.case.to_torch(getattr(torch, failure.dtype))
    again = recheck(conforming, spec, prop, dict(zip(failure.case.inputs, args, strict=True)),
                    params, verbose=False)
    assert again is None, str(again)


def _known_deviation(path: str, spec: str, prop: str, dtype: str) -> bool:
    cell = PropertyResult(spec, prop, dtype, "cpu", FAILED)
    return any(d.covers(path, cell) for d in deviations.builtin())


def test_every_property_of_every_spec_has_a_mutant():
    covered = {(s, p) for s, _, p in FAMILY_MUTANTS}
    covered |= {(spec.name, p) for spec, p in _generic_pairs()}
    missing = [(spec.name, prop.name) for spec in all_specs() for prop in properties_of(spec)
               if (spec.name, prop.name) not in covered]
    assert not missing, f"properties no mutant shows can fail: {missing}"


# Mutants that are wrong only in a narrow dtype: (spec, mutant, property, dtype, message).
NARROW_DTYPE_MUTANTS = [
    ("mse_loss", mutants.mse_mean_as_sum_over_n, "matches_reference", "float16",
     "inf where the value is finite"),
]


@pytest.mark.parametrize(("spec", "mutant", "prop", "dtype", "message"), NARROW_DTYPE_MUTANTS,
                         ids=[f"{m[0]}-{m[1].__name__}-{m[3]}" for m in NARROW_DTYPE_MUTANTS])
def test_narrow_dtype_overflow_is_reported_with_its_input(spec, mutant, prop, dtype, message):
    wide = check(mutant, spec, properties=[prop], dtypes=("float64", "float32"))
    assert wide.ok, "the mutant is meant to be right where its dtype has range"
    report = check(mutant, spec, properties=[prop], dtypes=(dtype,))
    assert not report.ok
    failure = report.failures[0]
    assert message in failure.message, failure.message
    assert f"dtype=torch.{dtype}" in failure.reproducer
