"""A spec's `separable` declaration (the axes one output element reads) lets the gradient
property move one coordinate of every slice at once. A wrong declaration would mix the
derivatives of different coordinates, so each declaring spec is checked here: on its edge
cases and on drawn cases, moving coordinates together gives the same reference derivatives as
moving them one at a time. Likewise `stacks` (the reference evaluates many moved copies of a
case in one call): stacked copies give what each copy gives alone."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.case import Case
from conformance.catalog import all_specs
from conformance.properties.gradient import (
    _elementwise_loss,
    _loss_of_each,
    cotangent,
    moves,
    reference_derivatives,
)

SEPARABLE = [s for s in all_specs() if s.separable]
STACKING = [s for s in all_specs() if s.stacks]


def _agree(spec, case: Case) -> int:
    """Compare both ways on every differentiable input; the number of coordinates compared."""
    if spec.gradient_domain is not None:
        case = spec.gradient_domain(case)
    if spec.outside_domain(case, torch.float64) is not None:
        return 0
    compared = 0
    for name in spec.differentiable_inputs(case):
        shape = np.shape(spec.call_reference(case, spec.elementwise_reduction))
        linear = cotangent(shape)
        axes = spec.separable(case, name)
        together = dict(reference_derivatives(spec, case, name, linear, axes))
        alone = reference_derivatives(spec, case, name, linear, None)
        for flat, one in alone:
            other = together[flat]
            # The same values of the same elements, up to the reference's last-ulp rounding
            # (NumPy's vector loops round an element differently from its scalar tail), which
            # can tip an element with a rounding-sized one-sided difference into a "kink".
            slack = 10 * (one.error + other.error) + 1e-12 * (
                1 + abs(one.low) + abs(one.high) + abs(other.low) + abs(other.high))
            assert other.low - slack <= one.high and one.low - slack <= other.high, (
                spec.name, name, flat, one, other)
            if not (one.kink or other.kink):
                assert abs(one.value - other.value) <= slack, (spec.name, name, flat, one, other)
            compared += 1
    return compared


def test_some_specs_are_separable() -> None:
    names = {s.name for s in SEPARABLE}
    assert {"binary_cross_entropy_with_logits", "cross_entropy", "generalized_box_iou_loss",
            "smooth_l1_loss", "margin_ranking_loss"} <= names


def test_moves_cover_every_position_of_a_sampled_coordinate() -> None:
    sets = moves(np.array([1, 6]), (3, 4), (3,), axes=(-1,))
    assert [list(flats) for flats, _ in sets] == [[1, 5, 9], [2, 6, 10]]
    assert all(list(owner) == [0, 1, 2] for _, owner in sets)
    alone = moves(np.array([1, 6]), (4,), (), axes=(-1,))  # a scalar output: one at a time
    assert [list(flats) for flats, _ in alone] == [[1], [6]]


def test_moves_follow_the_declared_axis_not_the_leading_ones() -> None:
    # (N, C, d) scores with C == d: the output (N, d) has the shape of the leading axes too,
    # but a sample's loss reads input[n, :, j], not input[n, c, :].
    sets = moves(np.array([0]), (1, 2, 2), (1, 2), axes=(1,))
    assert [list(flats) for flats, _ in sets] == [[0, 1]]  # input[0, 0, 0] and input[0, 0, 1]
    sets = moves(np.array([2]), (1, 2, 2), (1, 2), axes=(1,))
    assert [list(flats) for flats, _ in sets] == [[2, 3]]


@pytest.mark.parametrize("spec", SEPARABLE, ids=lambda s: s.name)
def test_edge_cases_give_the_same_derivatives_moved_together(spec) -> None:
    for case in spec.edge_cases:
        _agree(spec, case)


def _on_drawn_cases(spec, compare) -> int:
    """compare(spec, case) summed over 15 derandomized draws of the spec's cases."""
    compared = []

    @settings(max_examples=15, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        compared.append(compare(spec, data.draw(spec.cases())))

    run()
    return sum(compared)


@pytest.mark.parametrize("spec", SEPARABLE, ids=lambda s: s.name)
def test_drawn_cases_give_the_same_derivatives_moved_together(spec) -> None:
    assert _on_drawn_cases(spec, _agree) > 0, f"{spec.name}: no coordinate was compared"


def test_a_wrong_declaration_is_caught() -> None:
    """A loss whose every element depends on the whole input, declared separable."""
    mse = next(s for s in all_specs() if s.name == "mse_loss")

    def coupled(input, target, reduction="mean"):
        loss = (input - target) ** 2 * np.sum(input)
        return loss if reduction == "none" else getattr(np, reduction)(loss)

    wrong = replace(mse, name="coupled", reference=coupled, gradient_domain=None)
    assert wrong.separable is not None
    case = Case({"input": np.array([1.0, 2.0, 3.0]), "target": np.array([0.5, 0.0, 1.0])})
    with pytest.raises(AssertionError):
        _agree(wrong, case)


def _stacked_like_alone(spec, case: Case) -> int:
    """Three moved copies of each differentiable input, evaluated stacked and one at a time;
    the number of inputs compared."""
    if spec.gradient_domain is not None:
        case = spec.gradient_domain(case)
    if spec.outside_domain(case, torch.float64) is not None:
        return 0
    loss = _elementwise_loss(spec, case)
    shape = loss(case).shape
    compared = 0
    for name in spec.differentiable or (next(iter(case.inputs)),):
        base = case.inputs[name]
        if not np.issubdtype(base.dtype, np.floating):
            continue
        shifts = np.random.default_rng(0).uniform(-1.0, 1.0, (3, *base.shape))
        moved = base + 1e-6 * shifts * np.maximum(1.0, np.abs(base))
        try:
            alone = np.stack(_loss_of_each(replace(spec, stacks=False), loss, case, name,
                                           moved, shape))
        except ValueError:  # a copy left the reference's domain
            continue
        together = np.stack(_loss_of_each(spec, loss, case, name, moved, shape))
        slack = 1e-12 * (1.0 + np.abs(alone))  # NumPy's vector loops round the last ulp apart
        close = (np.abs(together - alone) <= slack) | (np.isnan(together) & np.isnan(alone))
        assert np.all(close), (spec.name, name, together, alone)
        compared += 1
    return compared


def test_box_losses_stack() -> None:
    assert {"iou_loss", "complete_box_iou_loss"} <= {s.name for s in STACKING}


@pytest.mark.parametrize("spec", STACKING, ids=lambda s: s.name)
def test_stacked_copies_give_what_each_gives_alone(spec) -> None:
    compared = sum(_stacked_like_alone(spec, case) for case in spec.edge_cases)
    compared += _on_drawn_cases(spec, _stacked_like_alone)
    assert compared > 0, f"{spec.name}: no input was compared"


def test_a_wrong_stacks_declaration_is_caught() -> None:
    """A reference that reads across the leading axis (a mean over it), declared to stack."""
    mse = next(s for s in all_specs() if s.name == "mse_loss")

    def across(input, target, reduction="mean"):
        loss = (input - target) ** 2 + np.mean(input, axis=0)
        return loss if reduction == "none" else getattr(np, reduction)(loss)

    wrong = replace(mse, name="across", reference=across, gradient_domain=None, stacks=True)
    case = Case({"input": np.array([1.0, 2.0, 3.0]), "target": np.array([0.5, 0.0, 1.0])})
    with pytest.raises(AssertionError):
        _stacked_like_alone(wrong, case)
