"""The canonical signature is code: each spec's written signature is its reference's, and each
built-in implementation takes the same parameters in the same order with the same defaults.

A wrong order of parameters in a spec's signature (tversky's once listed `activation` before
`alpha`) or in an implementation fails here, not in a user's positional call."""

from __future__ import annotations

import ast
import inspect

import pytest

import conformance
from conformance.cli import load_target

SPECS = conformance.all_specs()


def written(signature: str) -> list[tuple[str, object]]:
    """(name, default) of each parameter of a signature as the spec writes it (a default of
    `inspect.Parameter.empty` where it has none)."""
    call = ast.parse(signature, mode="eval").body
    assert isinstance(call, ast.Call), signature
    out: list[tuple[str, object]] = [(ast.unparse(a), inspect.Parameter.empty) for a in call.args]
    out += [(k.arg, ast.literal_eval(k.value)) for k in call.keywords]
    return out


def canonical(spec: conformance.LossSpec, fn: object) -> list[tuple[str, object]]:
    """(name, default) of fn's parameters, without the spec's declared variants (conventions
    the reference computes besides the canonical call)."""
    variants = {v.name for v in spec.variants}
    return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()
            if p.name not in variants]


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_the_written_signature_is_the_references(spec):
    assert spec.signature.split("(")[0] == spec.name
    assert written(spec.signature) == canonical(spec, spec.reference)


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_every_variant_is_a_keyword_of_the_reference(spec):
    parameters = inspect.signature(spec.reference).parameters
    for variant in spec.variants:
        assert variant.name in parameters
        assert parameters[variant.name].default == variant.canonical


BUILT_IN = [(spec, path) for spec in SPECS for path in spec.implementations]


@pytest.mark.parametrize("spec,path", BUILT_IN, ids=[p for _, p in BUILT_IN])
def test_built_in_implementations_take_the_canonical_parameters_in_order(spec, path):
    try:
        fn = load_target(path)
    except Exception as exc:  # an optional library (torchvision) that is not installed
        pytest.skip(f"{path} is not importable: {exc}")
    wanted = canonical(spec, spec.reference)
    given = dict(canonical(spec, fn))
    names = list(given)
    # torch's functions keep legacy parameters (size_average, reduce) between the canonical
    # ones: the canonical parameters must appear in their order, with their defaults.
    assert [n for n in names if n in dict(wanted)] == [n for n, _ in wanted]
    for name, default in wanted:
        assert given[name] == default, f"{path}: {name}={given[name]!r}, the spec {default!r}"


def test_a_wrong_order_is_caught():
    spec = conformance.get_spec("tversky_loss")
    swapped = spec.signature.replace("alpha=0.5, beta=0.5, activation='softmax'",
                                     "activation='softmax', alpha=0.5, beta=0.5")
    assert swapped != spec.signature
    assert written(swapped) != canonical(spec, spec.reference)
