"""Regression and ranking losses: L1, MSE, SmoothL1, Huber, margin ranking, hinge embedding,
soft margin.

All have torch.nn.functional's calls; the tensors of a case share one shape (torch broadcasts
with a warning, which no spec here relies on).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from hypothesis import strategies as st

from conformance import domains as dom
from conformance.case import Case
from conformance.elements import Integers, Power10, Uniform, Values, mixture
from conformance.invalid import Invalid, batch_of_one
from conformance.properties.relation import Relation, reference, target
from conformance.spec import Family, LossSpec, each_element
from conformance.specs.common import (
    EMPTY_ELEMENTS,
    GENERIC,
    choice,
    maybe,
    near_a_kink,
    number,
    overflow_only,
    params,
    zero_loss,
)
from conformance.variants import Variant
from reference import classification as cls_ref
from reference import ranking as rank_ref
from reference import regression as ref
from reference.reduction import reduce

# The specs this family declares, read by conformance.catalog.
SPECS = Family()


def _swap(case: Case) -> Case:
    x, y = case.inputs["input"], case.inputs["target"]
    return case.with_inputs(input=y, target=x)


ZERO_AT_EQUALITY = Relation(
    name="zero_when_input_equals_target",
    description="loss(x, x) == 0 under every reduction",
    lhs=target(label="loss(x, x)"),
    rhs=reference(zero_loss, label="0"),
    adapt=lambda c: c.with_inputs(target=c.inputs["input"].copy()),
)

SYMMETRY = Relation(
    name="symmetric_in_input_and_target",
    description="loss(x, y) == loss(y, x): the loss depends on |x - y| only",
    lhs=target(_swap, label="loss(y, x)"),
    rhs=target(label="loss(x, y)"),
)


# beta = 0 is part of SmoothL1's domain (it is L1); Huber's delta must be positive.
KINK_PARAMETERS = {"beta": (0.0, 0.5, 1.0, 2.0), "delta": (0.5, 1.0, 2.0)}
# Offsets of a target from its input: |x - y| lands on every kink parameter exactly, or near it.
NEAR = Uniform(-3.0, 3.0) | Values((0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0))
SIGNS = Values((1.0, -1.0))


@st.composite
def _pair_cases(draw: st.DrawFn, parameter: str | None = None) -> Case:
    shape = draw(dom.elementwise_shape())
    x = draw(dom.array(shape, dom.logits()))
    # Half the targets sit close to the inputs so that |x - y| crosses beta / delta.
    near = draw(dom.array(shape, NEAR))
    far = draw(dom.array(shape, dom.logits()))
    y = np.where(draw(dom.array(shape, dom.booleans(), np.bool_)), x + near, far)
    drawn = {}
    if parameter is not None:
        drawn = params(**{parameter: draw(maybe(number(
            KINK_PARAMETERS[parameter], 1e-3, 10.0)))})
    return Case({"input": x, "target": y}, drawn)


def _slope_magnitude(slope: Callable[[np.ndarray, Case], np.ndarray]) -> Callable:
    """|loss| + |dl/dd| (|x| + |y|): how far the rounding of d = x - y moves the loss."""

    def magnitude(case: Case, loss: np.ndarray) -> np.ndarray:
        x, y = case.inputs["input"], case.inputs["target"]
        d = np.abs(x - y)
        return np.abs(loss) + slope(d, case) * (np.abs(x) + np.abs(y) + 1.0)

    return magnitude


def _on_or_off_the_kink(case: Case) -> Case:
    """Moves |d| = |x - y| below the finite differences' reach onto the kink d = 0 exactly.

    Within a step of the kink, one-sided differences see it although the derivative there is
    +-1; on it, the spec's midpoint convention applies. Nothing is left in between.
    """
    x, y = case.inputs["input"], case.inputs["target"]
    near = np.abs(x - y) < 2e-3 * np.maximum(1.0, np.abs(x))
    return case.with_inputs(target=np.where(near, x, y))


def regression_spec(name: str, summary: str, signature: str, reference_fn: Callable,
                     slope: Callable, extra: tuple = (), parameter: str | None = None,
                     conventions: str = "", edge_cases: tuple[Case, ...] = (),
                     subgradient: str = "interval",
                     variants: tuple[Variant, ...] = ()) -> LossSpec:
    """A pairwise regression loss with torch.nn.functional's call `name(input, target, ...,
    reduction='mean')`: the family's cases (targets near the input, so that |x - y| crosses
    the kink `parameter`), error scale |loss| + slope (|x| + |y| + 1), invariants (0 at
    x = y, symmetric) and torch's function as the conforming target, plus `extra`."""
    # A midpoint convention is owed exactly at the kink, so the gradient property's cases
    # keep a step's distance from it or sit on it.
    domain = _on_or_off_the_kink if subgradient == "midpoint" else None
    return SPECS.declare(LossSpec(
        name=name,
        invalid=(batch_of_one("target"),),
        empty=EMPTY_ELEMENTS,
        family="regression",
        summary=summary,
        signature=signature,
        reference=reference_fn,
        cases=lambda: _pair_cases(parameter),
        magnitude=_slope_magnitude(slope),
        separable=each_element,
        properties=(*GENERIC, ZERO_AT_EQUALITY, SYMMETRY, *extra),
        edge_cases=edge_cases,
        implementations=(f"torch.nn.functional:{name}",),
        conventions=conventions,
        subgradient=subgradient,
        gradient_domain=domain,
        variants=variants,
    ))


KINKS = np.array([0.0, 1.0, -1.0, 0.5, 3.0])


regression_spec(
    "l1_loss", "mean absolute error", "l1_loss(input, target, reduction='mean')", ref.l1_loss,
    slope=lambda d, c: np.ones_like(d),
    conventions="The derivative at d = 0 is 0 (sign(0) = 0, the midpoint of -1 and +1).",
    edge_cases=(Case({"input": KINKS, "target": np.array([0.0, 1.0, 0.5, 0.5, -3.0])},
                     label="some input equal to its target (the kink of |d|)"),),
    subgradient="midpoint",
)
regression_spec(
    "mse_loss", "mean squared error", "mse_loss(input, target, reduction='mean')", ref.mse_loss,
    slope=lambda d, c: 2 * d,
    # In float16 each square fits (<= 40000) and the mean does, the sum does not: the mean of
    # a careful implementation stays finite.
    edge_cases=(Case({"input": np.array([200.0, -200.0, 150.0, 0.5]),
                      "target": np.array([0.0, 0.0, -50.0, 0.25])},
                     label="float16 squares whose sum overflows, mean does not"),),
)
regression_spec(
    "smooth_l1_loss", "SmoothL1: quadratic below beta, linear above (beta=0 is L1)",
    "smooth_l1_loss(input, target, reduction='mean', beta=1.0)", ref.smooth_l1_loss,
    slope=lambda d, c: np.minimum(d / max(c.params.get("beta", 1.0), 1e-300), 1.0),
    parameter="beta",
    extra=(Relation(
        name="beta0_is_l1",
        description="smooth_l1_loss with beta=0 is l1_loss",
        lhs=target(label="smooth_l1(x, y, beta=0)"),
        rhs=reference(ref.l1_loss, transform=lambda c: c.without_params("beta"), label="l1"),
        adapt=lambda c: c.with_params(beta=0.0),
    ),),
    conventions=("0.5 d^2 / beta for |d| < beta, |d| - 0.5 beta otherwise; beta = 0 is L1,"
                 " whose derivative at d = 0 is 0 (the midpoint of -1 and +1)."),
    subgradient="midpoint",
    edge_cases=(Case({"input": KINKS, "target": np.zeros(5)}, {"beta": 1.0},
                     label="|d| at and around beta"),
                Case({"input": KINKS, "target": np.zeros(5)},
                     label="|d| at and around the default beta (beta left out: 1.0)")),
    variants=(Variant("empty_mean", "nan", {
        "nan": "the 'mean' of no element is 0 / 0 = NaN (torch)",
        "zero": "the 'mean' of no element is 0 (fvcore; torchvision's box losses)"}),),
)


def _delta_times_smooth_l1(input: np.ndarray, target: np.ndarray, reduction: str,
                           delta: float = 1.0) -> np.ndarray:
    return delta * ref.smooth_l1_loss(input, target, reduction=reduction, beta=delta)


regression_spec(
    "huber_loss", "Huber loss: quadratic below delta, delta-scaled linear above",
    "huber_loss(input, target, reduction='mean', delta=1.0)", ref.huber_loss,
    slope=lambda d, c: np.minimum(d, c.params.get("delta", 1.0)),
    parameter="delta",
    extra=(Relation(
        name="huber_is_delta_times_smooth_l1",
        description="huber_loss(delta) == delta * smooth_l1_loss(beta=delta)",
        lhs=target(label="huber(x, y, delta)"),
        rhs=reference(_delta_times_smooth_l1, label="delta * smooth_l1(x, y, beta=delta)"),
    ),),
    conventions="0.5 d^2 for |d| < delta, delta (|d| - 0.5 delta) otherwise.",
    edge_cases=(Case({"input": KINKS, "target": np.zeros(5)}, {"delta": 1.0},
                     label="|d| at and around delta"),),
)


# --------------------------------------------------------------------------- ranking


@st.composite
def _ranking_cases(draw: st.DrawFn) -> Case:
    shape = draw(dom.elementwise_shape(max_dims=1))
    x1 = draw(dom.array(shape, dom.logits()))
    x2 = draw(dom.array(shape, dom.logits()))
    y = draw(dom.array(shape, SIGNS))
    margin = draw(maybe(number((0.0, 1.0), -2.0, 5.0)))
    return Case({"input1": x1, "input2": x2, "target": y}, params(margin=margin))


def _ranking_magnitude(case: Case, loss: np.ndarray) -> np.ndarray:
    x1, x2 = case.inputs["input1"], case.inputs["input2"]
    return np.abs(loss) + np.abs(x1) + np.abs(x2) + abs(case.params.get("margin", 0.0))


def _ranking_on_or_off_the_kink(case: Case) -> Case:
    """Moves x2 so that each pair's hinge argument margin - y (x1 - x2) is exactly 0 (the
    spec's subgradient interval applies) or farther from 0 than every dtype resolves."""
    x1, x2, y = case.inputs["input1"], case.inputs["input2"], case.inputs["target"]
    margin = case.params.get("margin", 0.0)
    z = margin - y * (x1 - x2)
    near, band = near_a_kink(z, x1, x2, margin)
    # x2 + y d moves z by d (y^2 = 1), away from 0 on the side it was on.
    return case.with_inputs(input2=np.where(near, x2 + y * np.sign(z) * 2 * band, x2))


def _swap_ranking(case: Case) -> Case:
    x1, x2, y = case.inputs["input1"], case.inputs["input2"], case.inputs["target"]
    return case.with_inputs(input1=x2, input2=x1, target=-y)


SPECS.declare(LossSpec(
    name="margin_ranking_loss",
    empty=EMPTY_ELEMENTS,
    invalid=(batch_of_one("target"),),
    separable=each_element,
    family="ranking",
    summary="max(0, -y (x1 - x2) + margin)",
    signature="margin_ranking_loss(input1, input2, target, margin=0.0, reduction='mean')",
    reference=rank_ref.margin_ranking_loss,
    cases=_ranking_cases,
    magnitude=_ranking_magnitude,
    differentiable=("input1", "input2"),
    properties=(*GENERIC, Relation(
        name="swap_inputs_and_negate_target",
        description="loss(x1, x2, y) == loss(x2, x1, -y)",
        lhs=target(_swap_ranking, label="loss(x2, x1, -y)"),
        rhs=target(label="loss(x1, x2, y)"),
    )),
    edge_cases=(Case({"input1": np.array([1.0, 2.0, 0.0]), "input2": np.array([0.0, 2.0, 1.0]),
                      "target": np.array([1.0, 1.0, -1.0])}, {"margin": 1.0},
                     label="pairs exactly at the margin"),),
    implementations=("torch.nn.functional:margin_ranking_loss",),
    conventions="target is +1 (x1 should rank higher) or -1; margin may be negative.",
    gradient_domain=_ranking_on_or_off_the_kink,
))


@st.composite
def _hinge_cases(draw: st.DrawFn) -> Case:
    shape = draw(dom.elementwise_shape())
    # Inputs are distances (>= 0): with a negative input the y = 1 term is negative by design.
    x = np.abs(draw(dom.array(shape, dom.logits())))
    y = draw(dom.array(shape, SIGNS))
    margin = draw(maybe(number((0.0, 1.0), 0.0, 5.0)))
    return Case({"input": x, "target": y}, params(margin=margin))


def _hinge_on_or_off_the_kink(case: Case) -> Case:
    """Moves a dissimilar pair's distance x off the kink x = margin where no dtype can tell
    it from the kink (see `near_a_kink`); past the margin, so that it stays a distance."""
    x, y = case.inputs["input"], case.inputs["target"]
    margin = case.params.get("margin", 1.0)
    near, band = near_a_kink(margin - x, x, margin)
    return case.with_inputs(input=np.where(near & (y < 0), margin + 2 * band, x))


SPECS.declare(LossSpec(
    name="hinge_embedding_loss",
    empty=EMPTY_ELEMENTS,
    invalid=(batch_of_one("target"),),
    separable=each_element,
    family="ranking",
    summary="x for similar pairs (y = 1), max(0, margin - x) for dissimilar ones (y = -1)",
    signature="hinge_embedding_loss(input, target, margin=1.0, reduction='mean')",
    reference=rank_ref.hinge_embedding_loss,
    cases=_hinge_cases,
    magnitude=lambda case, loss: np.abs(loss) + np.abs(case.inputs["input"]) + abs(
        case.params.get("margin", 1.0)),
    properties=GENERIC,
    edge_cases=(Case({"input": np.array([0.0, 1.0, 2.0, 1.0]),
                      "target": np.array([-1.0, -1.0, -1.0, 1.0])},
                     label="distances at and around the margin"),),
    implementations=("torch.nn.functional:hinge_embedding_loss",),
    conventions="input is a distance (>= 0); target is +1 or -1.",
    gradient_domain=_hinge_on_or_off_the_kink,
))


@st.composite
def _soft_margin_cases(draw: st.DrawFn) -> Case:
    shape = draw(dom.elementwise_shape())
    return Case({"input": draw(dom.array(shape, dom.logits())),
                 "target": draw(dom.array(shape, SIGNS))})


def _negate_both(case: Case) -> Case:
    return case.with_inputs(input=-case.inputs["input"], target=-case.inputs["target"])


def _exp_of_the_margin_overflows(case: Case, dtype: str) -> bool:
    """Some element's exp(-y x) is past `dtype`'s largest number, though the loss, about
    -y x, is not (float32 from a margin of -88.7, float16 from -11.1, float64 from -709.8)."""
    largest = float(torch.finfo(getattr(torch, dtype)).max)
    with np.errstate(over="ignore"):
        return bool(np.any(-case.inputs["target"] * case.inputs["input"] > np.log(largest)))


def _as_01_labels(case: Case) -> Case:
    return case.with_inputs(target=(1.0 + case.inputs["target"]) / 2.0)


SPECS.declare(LossSpec(
    name="soft_margin_loss",
    empty=EMPTY_ELEMENTS,
    invalid=(batch_of_one("target"),),
    separable=each_element,
    family="ranking",
    summary="log(1 + exp(-y x)): the logistic loss of a +1 / -1 label",
    signature="soft_margin_loss(input, target, reduction='mean')",
    reference=rank_ref.soft_margin_loss,
    cases=_soft_margin_cases,
    regimes={"exp_of_the_margin_overflows": _exp_of_the_margin_overflows},
    # The loss moves with the rounding of x at slope sigma(-y x) <= 1: |x| is the scale.
    magnitude=lambda case, loss: np.abs(loss) + np.abs(case.inputs["input"]),
    properties=(
        *GENERIC,
        Relation(
            name="negating_input_and_target_changes_nothing",
            description="loss(-x, -y) == loss(x, y): only the margin y x matters",
            lhs=target(_negate_both, label="loss(-x, -y)"),
            rhs=target(label="loss(x, y)"),
        ),
        Relation(
            name="equals_bce_with_logits_of_01_labels",
            description="loss(x, y) == binary_cross_entropy_with_logits(x, (1 + y) / 2)",
            lhs=target(label="soft_margin_loss(x, y)"),
            rhs=reference(cls_ref.binary_cross_entropy_with_logits, transform=_as_01_labels,
                          label="bce_with_logits(x, (1 + y) / 2)"),
        ),
    ),
    edge_cases=(
        Case({"input": np.array([0.0, 40.0, -40.0, 1.0]),
              "target": np.array([1.0, 1.0, 1.0, -1.0])},
             label="a zero margin, and margins of 40 both ways (loss 4e-18 and 40)"),
        Case({"input": np.array([100.0, -100.0]), "target": np.array([-1.0, 1.0])},
             label="margins of -100 (loss 100, which float32's exp(100) overflows on the way)"),
    ),
    implementations=("torch.nn.functional:soft_margin_loss",),
    conventions="target is +1 or -1; mean = sum / number of elements.",
))


# --------------------------------------------------------------------------- Poisson NLL

# Counts: zeros, small integers (a Stirling term only above 1), and rates over many decades.
COUNTS = mixture(Values((0.0, 1.0, 2.0)), Integers(0, 20), Power10(-3.0, 4.0))
# Log-rates: everyday values and the far ends a float32 exp still holds (e^30 = 1e13).
LOG_RATES = mixture(dom.ordinary(-8.0, 8.0), Uniform(-30.0, 30.0), Values((0.0, -30.0, 30.0)))
# Rates: 0 (eps keeps its log finite), tiny, everyday and large.
RATES = mixture(Values((0.0, 1.0)), Power10(-6.0, 4.0), dom.ordinary(0.0, 10.0))


@st.composite
def _poisson_cases(draw: st.DrawFn) -> Case:
    shape = draw(dom.elementwise_shape())
    log_input = draw(maybe(st.booleans()))
    rates = RATES if log_input is False else LOG_RATES
    return Case({"input": draw(dom.array(shape, rates)), "target": draw(dom.array(shape, COUNTS))},
                params(log_input=log_input, full=draw(maybe(st.booleans())),
                       eps=draw(maybe(number((1e-8, 1e-3), 1e-10, 1e-2)))))


def _poisson_terms(case: Case) -> np.ndarray:
    """The terms the loss is a sum of: the rate, y times the log-rate, and Stirling's y log y
    and y (where full)."""
    x, y = case.inputs["input"], case.inputs["target"]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if case.params.get("log_input", True):
            rate, linear = np.exp(x), y * x
        else:
            rate, linear = x, y * np.log(x + case.params.get("eps", 1e-8))
        parts = [rate, linear]
        if case.params.get("full", False):
            parts += [np.where(y > 1, y * np.log(np.maximum(y, 1.0)), 0.0), y]
    return np.nan_to_num(np.abs(np.stack(parts)), nan=0.0)


def _poisson_magnitude(case: Case, loss: np.ndarray) -> np.ndarray:
    """The terms cancel where the rate matches the count: their sizes are the rounding scale.
    Without log_input, the rounding of x + eps moves its log by eps absolutely, however small
    the log (1 + 1e-8 is 1 in float32): y times that."""
    scale = np.abs(loss) + np.sum(_poisson_terms(case), axis=0)
    if case.params.get("log_input", True):
        return scale
    return scale + np.abs(case.inputs["target"])


def _poisson_intermediates(case: Case) -> np.ndarray:
    """exp(x) or y x past a dtype's range (or their product with the cotangent in the
    backward), though their difference fits, is an overflow of the formula, not of the loss.
    Without log_input, x + eps is one too, in full: below the dtype's smallest normal (eps =
    1e-8 added to a rate of 0 in float16 is 0, and its log -inf) the eps that keeps the log
    finite is not there to be had."""
    terms = _poisson_terms(case)
    if case.params.get("log_input", True):
        return overflow_only(terms)
    # The gradient 1 - y / (x + eps) holds y / (x + eps), times the cotangent.
    shifted = case.inputs["input"] + case.params.get("eps", 1e-8)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.nan_to_num(case.inputs["target"] / np.abs(shifted), nan=0.0)
    return np.concatenate([overflow_only(terms).reshape(-1), overflow_only(slope).reshape(-1),
                           np.abs(shifted).reshape(-1)])


def _at_the_log_of_the_target(case: Case) -> Case:
    return case.with_inputs(input=np.log(case.inputs["target"]))


def _a_step_from_it(case: Case) -> Case:
    """log y moved by 0.5, up and down in turn: the loss there is no lower."""
    y = case.inputs["target"]
    step = np.where(np.arange(y.size).reshape(y.shape) % 2 == 0, 0.5, -0.5)
    return case.with_inputs(input=np.log(y) + step)


def _log_rates_of_positive_counts(case: Case) -> Case:
    """log_input (the default) on positive counts; a drawn rate (log_input=False, up to 1e4)
    clipped to a log-rate whose exp the case still holds (the sides replace it anyway)."""
    x, y = case.inputs["input"], case.inputs["target"]
    return case.with_inputs(input=np.clip(x, -30.0, 30.0), target=np.where(y > 0, y, 1.0)
                            ).without_params("log_input", "eps")


def _rate_alone(input: np.ndarray, target: np.ndarray, log_input: bool = True,
                full: bool = False, eps: float = 1e-8, reduction: str = "mean") -> np.ndarray:
    """What a zero count costs: the rate itself (the Stirling term is 0 there)."""
    return reduce(np.exp(input) if log_input else np.asarray(input, float), reduction)


SPECS.declare(LossSpec(
    name="poisson_nll_loss",
    empty=EMPTY_ELEMENTS,
    invalid=(batch_of_one("target"),),
    separable=each_element,
    family="regression",
    summary="Poisson negative log-likelihood of counts, the rate given as its log or itself",
    signature="poisson_nll_loss(input, target, log_input=True, full=False, eps=1e-8,"
              " reduction='mean')",
    reference=ref.poisson_nll_loss,
    cases=_poisson_cases,
    magnitude=_poisson_magnitude,
    intermediates=_poisson_intermediates,
    properties=(
        *(p for p in GENERIC if p != "nonnegative"),  # a likelihood without log y! can be < 0
        Relation(
            name="minimum_at_the_log_of_the_target",
            description=("with log_input, loss(log y, y) <= loss(log y +- 0.5, y) elementwise:"
                         " the rate that minimises the loss is the count"),
            lhs=target(_at_the_log_of_the_target, label="loss(log y, y)"),
            rhs=target(_a_step_from_it, label="loss(log y +- 0.5, y)"),
            op="le",
            reductions=("none",),
            adapt=_log_rates_of_positive_counts,
        ),
        Relation(
            name="a_zero_count_costs_the_rate",
            description="loss(x, 0) is the rate: exp(x) with log_input, else x (full or not)",
            lhs=target(label="loss(x, 0)"),
            rhs=reference(_rate_alone, label="rate(x)"),
            adapt=lambda c: c.with_inputs(target=np.zeros_like(c.inputs["target"])),
        ),
    ),
    edge_cases=(
        Case({"input": np.array([0.0, 1.0, -2.0, 30.0]), "target": np.array([0.0, 1.0, 5.0, 3.0])},
             {"full": True}, label="log-rates with zero, one and Stirling counts"),
        Case({"input": np.array([0.0, 1e-6, 2.0]), "target": np.array([3.0, 0.0, 2.0])},
             {"log_input": False}, label="rates at 0 (eps keeps the log finite) and at the count"),
    ),
    implementations=("torch.nn.functional:poisson_nll_loss",),
    conventions=("l = exp(x) - y x (log_input) or x - y log(x + eps); full adds y log y - y +"
                 " log(2 pi y) / 2 where y > 1 only; no log y! otherwise, so the loss can be"
                 " negative; mean = sum / number of elements."),
))



# --------------------------------------------------------------------------- Gaussian NLL

# Variances: 0 and values under the default eps (clamped), tiny to large, and everyday ones.
VARIANCES = mixture(Values((0.0, 1.0, 1e-6, 1e-8)), Power10(-9.0, 4.0), dom.ordinary(0.0, 10.0))
# A variance given as a number: exact in every dtype, so that torch's var * ones_like(input)
# is the number itself.
VARIANCE_NUMBERS = (0.25, 0.5, 1.0, 2.0, 4.0)
VAR_LAYOUTS = ("same", "same", "last_axis_dropped", "one_axis_of_one", "number")


@st.composite
def _gaussian_cases(draw: st.DrawFn) -> Case:
    """Means and samples as for the other pairwise losses, and a variance in each layout torch
    accepts: one per element, one per row (the last axis dropped), one shared along an axis
    (length 1 there), or a number."""
    case = draw(_pair_cases())
    shape = case.inputs["input"].shape
    layout = draw(choice(*VAR_LAYOUTS)) if shape else "same"
    drawn = params(full=draw(maybe(st.booleans())),
                   eps=draw(maybe(number((1e-6, 1e-3), 1e-10, 1e-1))))
    if layout == "number":
        return case.with_params(var=draw(choice(*VARIANCE_NUMBERS)), **drawn)
    if layout == "last_axis_dropped":
        var_shape = shape[:-1]
    elif layout == "one_axis_of_one":
        axis = draw(st.integers(0, len(shape) - 1))
        var_shape = (*shape[:axis], 1, *shape[axis + 1:])
    else:
        var_shape = shape
    var = draw(dom.array(var_shape, VARIANCES))
    return Case({**case.inputs, "var": var}, drawn)


def _gaussian_parts(case: Case) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """d = x - y, the clamped variance max(v, eps) laid out like the input, and x, y."""
    x, y = case.inputs["input"], case.inputs["target"]
    var = case.inputs["var"] if "var" in case.inputs else case.params["var"]
    v = np.maximum(ref.gaussian_variance(x, var), case.params.get("eps", 1e-6))
    return x - y, v, x, y


def _gaussian_magnitude(case: Case, loss: np.ndarray) -> np.ndarray:
    """The two terms log v and d^2 / v (which cancel where v is below 1), the rounding of
    d = x - y at the squared term's slope 2 |d| / v, and 1 + d^2 / v for the variance's own
    rounding (eps is clamped at its value in the dtype)."""
    d, v, x, y = _gaussian_parts(case)
    with np.errstate(over="ignore"):
        ratio = d * d / v
        spread = np.abs(np.log(v)) + 1.0 + 2.0 * ratio + 2.0 * np.abs(d) * (
            np.abs(x) + np.abs(y)) / v
    return np.abs(loss) + 0.5 * spread


def _gaussian_intermediates(case: Case) -> np.ndarray:
    """The clamped variance itself (below the smallest normal, as eps = 1e-6 is in float16,
    the dtype cannot hold the clamp), and what the formula and its backward form on the way:
    d^2 before the division, d^2 / v, 1 / v and d^2 / v^2 (the variance's gradient), 2 d / v
    (the mean's). Only their overflow matters."""
    d, v, _, _ = _gaussian_parts(case)
    with np.errstate(over="ignore"):
        terms = np.stack([d * d, d * d / v, 1.0 / v, d * d / v ** 2, 2.0 * np.abs(d) / v])
    return np.concatenate([v.reshape(-1), overflow_only(terms).reshape(-1)])


def _clamp_passes_the_gradient(base: Case):
    """The loss with the clamp's correction frozen at `base`: max(v, eps) + (v' - v). torch
    clamps under no_grad, so, as its documentation says, the clamp is ignored by autograd: the
    variance's gradient below eps is the loss's derivative at eps, not 0."""
    if "var" not in base.inputs:
        return lambda case, reduction: ref.gaussian_nll_loss(
            *case.inputs.values(), **{**case.params, "reduction": reduction or "none"})
    eps = base.params.get("eps", 1e-6)
    v0 = base.inputs["var"]
    lift = np.maximum(v0, eps) - v0

    def loss(case: Case, reduction: str | None) -> np.ndarray:
        v = case.inputs["var"] + lift
        moved = case.with_inputs(var=v).with_params(eps=0.0)
        return ref.gaussian_nll_loss(*moved.inputs.values(), **{
            **moved.params, "reduction": reduction or "none"})

    return loss


def _unit_variance(case: Case) -> Case:
    if "var" in case.inputs:
        return case.with_inputs(var=np.ones_like(case.inputs["var"])).without_params("full")
    return case.with_params(var=1.0).without_params("full")


def _half_squared_error(input: np.ndarray, target: np.ndarray, *_: object,
                        reduction: str = "mean", **__: object) -> np.ndarray:
    return reduce(0.5 * (np.asarray(input, float) - np.asarray(target, float)) ** 2, reduction)


def _negative_variance(case: Case) -> Case | None:
    var = case.inputs.get("var")
    if var is None or var.size == 0:
        return None
    flat = np.array(var, dtype=np.float64).reshape(-1)
    flat[0] = -1.0
    return case.with_inputs(var=flat.reshape(var.shape))


HALF_LOG_TWO_PI = 0.5 * float(np.log(2 * np.pi))


SPECS.declare(LossSpec(
    name="gaussian_nll_loss",
    empty=EMPTY_ELEMENTS,
    invalid=(batch_of_one("target"), Invalid("a negative entry in var", _negative_variance)),
    separable=each_element,
    family="regression",
    summary="Gaussian negative log-likelihood of samples given predicted means and variances",
    signature="gaussian_nll_loss(input, target, var, full=False, eps=1e-06, reduction='mean')",
    reference=ref.gaussian_nll_loss,
    cases=_gaussian_cases,
    magnitude=_gaussian_magnitude,
    intermediates=_gaussian_intermediates,
    differentiable=("input", "target", "var"),
    gradient_reference=_clamp_passes_the_gradient,
    properties=(
        *(p for p in GENERIC if p != "nonnegative"),  # log v < 0 for a variance below 1
        Relation(
            name="half_squared_error_at_unit_variance",
            description="with var = 1 and not full, the loss is (x - y)^2 / 2 elementwise",
            lhs=target(label="loss(x, y, 1)"),
            rhs=reference(_half_squared_error, label="(x - y)^2 / 2"),
            adapt=_unit_variance,
        ),
        Relation(
            name="full_adds_half_log_two_pi",
            description="full=True adds log(2 pi) / 2 to every element (and to the mean)",
            lhs=target(lambda c: c.with_params(full=True), label="loss(full=True)"),
            rhs=target(lambda c: c.with_params(full=False),
                       plus=HALF_LOG_TWO_PI,
                       label="loss(full=False) + log(2 pi) / 2"),
            reductions=("none", "mean"),
        ),
    ),
    edge_cases=(
        Case({"input": np.array([0.0, 1.0, 2.0, 0.0]), "target": np.array([0.5, 1.0, 0.0, 0.0]),
              "var": np.array([0.0, 1e-8, 2.0, 1e-6])},
             label="variances of 0 and 1e-8 (clamped to eps; the gradient passes the clamp)"
                   " and at eps"),
        Case({"input": np.array([[0.0, 1.0, -1.0], [3.0, 2.0, 1.0]]),
              "target": np.array([[0.5, 1.0, 0.0], [0.0, 2.0, 2.0]]),
              "var": np.array([0.5, 2.0])}, {"full": True},
             label="one variance per row (the last axis dropped), full"),
        Case({"input": np.array([1.0, -2.0]), "target": np.array([0.0, 0.0])}, {"var": 0.5},
             label="the variance as a number"),
    ),
    implementations=("torch.nn.functional:gaussian_nll_loss",),
    conventions=("l = (log max(v, eps) + (x - y)^2 / max(v, eps)) / 2, + log(2 pi) / 2 where"
                 " full: eps clamps the variance, it is not added to it; v per element, per"
                 " row (input's shape without its last axis), shared along one axis of"
                 " length 1, or a number; negative entries raise. The clamp is ignored by"
                 " the gradient (torch's documented choice): below eps the variance's"
                 " gradient is the loss's derivative at eps. 'none' has input's shape;"
                 " mean = sum / number of elements."),
))

