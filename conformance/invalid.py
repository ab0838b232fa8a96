"""Invalid inputs a spec declares, and what it owes for them.

A drawn valid case is made invalid in one named way (an inverted box, a label past the last
class, a target with a batch of 1 against an input of N, a class weight of the wrong length).
What is owed there is an error, or, where the spec says so, NaN: never a plausible number. A
library that broadcasts a batch of 1 or scores an inverted box returns a value its user cannot
tell from a loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from conformance.case import Case

RAISE, RAISE_OR_NAN = "raise", "raise or NaN"


@dataclass(frozen=True)
class Invalid:
    """One way to make a case invalid, and what the target owes on it."""

    name: str  # what is wrong, as the report says it ("an inverted box in boxes1")
    make: Callable[[Case], Case | None]  # the case made invalid; None where it cannot be
    owed: str = RAISE  # RAISE, or RAISE_OR_NAN: an error, or NaN in the output


def inverted_box(name: str, owed: str = RAISE_OR_NAN) -> Invalid:
    """The first box of `name` with a positive width, its x1 and x2 swapped (x2 < x1)."""

    def make(case: Case) -> Case | None:
        given = case.inputs[name]
        boxes = np.array(given, dtype=np.float64).reshape(-1, 4)
        wide = np.flatnonzero(boxes[:, 2] > boxes[:, 0])
        if not wide.size:
            return None
        i = wide[0]
        boxes[i, 0], boxes[i, 2] = boxes[i, 2], boxes[i, 0]
        return case.with_inputs(**{name: boxes.reshape(given.shape)})

    return Invalid(f"an inverted box in {name} (x2 < x1)", make, owed)


def _class_axis(x: np.ndarray) -> int:
    return 0 if x.ndim == 1 else 1


def label_out_of_range(target: str = "target", scores: str = "input") -> Invalid:
    """The first non-ignored class index set to C, one past the last class."""

    def make(case: Case) -> Case | None:
        y = case.inputs[target]
        if np.issubdtype(y.dtype, np.floating):
            return None  # probability targets have no index to put out of range
        classes = case.inputs[scores].shape[_class_axis(case.inputs[scores])]
        ignore = case.params.get("ignore_index", -100)
        kept = np.flatnonzero(y.reshape(-1) != ignore)
        if not kept.size:
            return None
        out = np.array(y).reshape(-1)
        out[kept[0]] = classes
        return case.with_inputs(**{target: out.reshape(y.shape)})

    # NaN is a refusal too: JAX cannot raise inside a traced function and fills an
    # out-of-bounds gather with NaN (its documented indexing semantics).
    return Invalid(f"a class index in {target} equal to the number of classes", make,
                   RAISE_OR_NAN)


def batch_of_one(name: str = "target", min_ndim: int = 1) -> Invalid:
    """`name` cut to its first sample along the batch axis (N >= 2): (1, ...) against (N, ...),
    which broadcasts without a word in any elementwise arithmetic. `min_ndim`: the fewest axes
    an input has when it is batched (2 for class scores, whose (C,) form is one sample)."""

    def make(case: Case) -> Case | None:
        x = case.inputs[name]
        if x.ndim < max(min_ndim, 1) or x.shape[0] < 2:
            return None
        return case.with_inputs(**{name: np.array(x[:1])})

    return Invalid(f"{name} with a batch of 1 against a batch of N", make)


def weight_too_long(name: str = "weight") -> Invalid:
    """A class weight with one entry more than there are classes."""

    def make(case: Case) -> Case | None:
        weight = case.params.get(name)
        if not isinstance(weight, np.ndarray):
            return None
        return case.with_params(**{name: np.concatenate([weight, weight[-1:]])})

    return Invalid(f"a {name} with C + 1 entries", make)


def changes(before: Case, after: Case) -> str:
    """The inputs and parameters the invalid form changed, exactly."""
    parts = []
    for where_before, where_after in ((before.inputs, after.inputs),
                                      (before.params, after.params)):
        for key, value in where_after.items():
            old = where_before.get(key)
            same = (old.shape == value.shape and np.array_equal(old, value)
                    if isinstance(value, np.ndarray) and isinstance(old, np.ndarray)
                    else key in where_before and not isinstance(value, np.ndarray)
                    and old == value)
            if not same:
                shown = value.tolist() if isinstance(value, np.ndarray) else value
                parts.append(f"{key}={shown!r}")
    return ", ".join(parts)
