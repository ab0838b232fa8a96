"""Empty inputs a spec declares: a batch of 0 samples, an empty spatial axis, no boxes.

A drawn case is emptied along one axis; what is owed there is the reference's value on the
emptied case, NaN included. The references follow torch, where 'none' keeps the empty shape, a
'sum' over nothing is 0 and a 'mean' over nothing is 0/0 = NaN; torchvision's box losses, whose
calls the box specs are, take the 'mean' of no box as 0 (so that a detector's batch without
objects trains on), and the region losses take a mean over no class entry as 0 (Berman et
al.'s `mean(..., empty=0)`). `python -m conformance show NAME` lists a spec's forms and the
values they owe. A target owes that value with the empty shape, and a backward that runs: a
training step on an empty batch calls `.backward()` on whatever came back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from conformance.case import Case


@dataclass(frozen=True)
class Empty:
    """One way to empty a case, as the report says it ("a batch of 0 samples")."""

    name: str
    make: Callable[[Case], Case | None]  # the emptied case; None where it has no such axis


def _cut(array: np.ndarray, axis: int) -> np.ndarray:
    return np.take(array, np.arange(0), axis=axis)


def _emptied(axis: int, inputs: tuple[str, ...] | None, along: tuple[str, ...],
             min_ndim: int) -> Callable[[Case], Case | None]:
    def make(case: Case) -> Case | None:
        names = inputs or tuple(case.inputs)
        first = case.inputs[names[0]]
        if first.ndim < min_ndim or any(case.inputs[n].ndim == 0 for n in names):
            return None
        cut = {n: _cut(case.inputs[n], axis) for n in names}
        # A parameter that broadcasts against the input (an elementwise weight) loses the
        # same axis where it has it at full length; a length of 1 broadcasts as it is.
        kept: dict[str, np.ndarray] = {}
        for name in along:
            value = case.params.get(name)
            if not isinstance(value, np.ndarray):
                continue
            from_end = axis - first.ndim if axis >= 0 else axis  # broadcasting aligns ends
            if -value.ndim <= from_end and value.shape[from_end] == first.shape[axis] != 1:
                kept[name] = _cut(value, from_end)
        out = case.with_inputs(**cut)
        return out.with_params(**kept) if kept else out

    return make


def no_samples(along: tuple[str, ...] = (), min_ndim: int = 1) -> Empty:
    """Every input cut to a batch of 0 along axis 0 (inputs of at least `min_ndim` axes: a
    class-scored input needs 2 to have a batch axis at all)."""
    return Empty("a batch of 0 samples", _emptied(0, None, along, min_ndim))


def no_pixels(along: tuple[str, ...] = (), min_ndim: int = 3) -> Empty:
    """Every input's last (spatial) axis cut to 0: (N, C, H, 0) logits against an (N, H, 0)
    label map or an (N, C, H, 0) mask."""
    return Empty("an empty spatial axis", _emptied(-1, None, along, min_ndim))


def no_boxes(*names: str) -> Empty:
    """The named box inputs cut to 0 boxes, (0, 4)."""
    return Empty(f"no boxes in {' and '.join(names)}", _emptied(0, names, (), 2))
