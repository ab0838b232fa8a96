"""Case maps used by relations of several families, and the relations they share."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from conformance.case import Case
from conformance.domains import class_axis
from conformance.properties.relation import Relation, target


def rename_inputs(**names: str) -> Callable[[Case], Case]:
    """Map a case onto another signature's argument names (inputs -> input, ...)."""

    def apply(case: Case) -> Case:
        inputs = {names.get(k, k): v for k, v in case.inputs.items()}
        return Case(inputs, dict(case.params), case.label)

    return apply


def keep_params(*names: str) -> Callable[[Case], Case]:
    def apply(case: Case) -> Case:
        return Case(dict(case.inputs), {k: v for k, v in case.params.items() if k in names},
                    case.label)

    return apply


def compose(*maps: Callable[[Case], Case]) -> Callable[[Case], Case]:
    def apply(case: Case) -> Case:
        for m in maps:
            case = m(case)
        return case

    return apply


def shift_logits(case: Case) -> Case:
    """Add a different constant to every class vector: c = (-1)^n 2^(n+3) for position n.

    Powers of two keep the shift exact for most inputs, and a per-position constant catches an
    implementation that normalises with one global maximum in the wrong place.
    """
    x = case.inputs["input"]
    axis = class_axis(x.shape)
    positions = np.moveaxis(np.zeros_like(x), axis, -1)[..., :1]
    n = np.arange(positions.size).reshape(positions.shape)
    c = np.moveaxis(np.where(n % 2 == 0, 1.0, -1.0) * 2.0 ** (n % 6 + 3), -1, axis)
    return case.with_inputs(input=x + c)


LOGIT_SHIFT_INVARIANCE = Relation(
    name="logit_shift_invariance",
    description="adding a constant to every logit of a class vector leaves the loss unchanged",
    lhs=target(shift_logits, label="loss(x + c)"),
    rhs=target(label="loss(x)"),
)
