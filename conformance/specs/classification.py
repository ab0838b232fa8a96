"""Classification losses: BCE, BCE-with-logits, CE, NLL, KL, focal variants, balanced BCE.

One declaration per loss. Where torch.nn.functional or torchvision.ops has the loss, the
canonical call is theirs exactly (the deprecated size_average/reduce arguments are left out).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from hypothesis import strategies as st
from scipy.special import expit

from conformance import domains as dom
from conformance.case import Case
from conformance.elements import Uniform
from conformance.empty import no_samples
from conformance.invalid import batch_of_one, label_out_of_range, weight_too_long
from conformance.properties.relation import Relation, reference, target
from conformance.spec import Family, LossSpec, each_element
from conformance.specs.common import (
    EMPTY_ELEMENTS,
    EMPTY_SCORES,
    GENERIC,
    OMIT,
    choice,
    maybe,
    number,
    params,
    zero_loss,
)
from conformance.specs.transforms import (
    LOGIT_SHIFT_INVARIANCE,
    compose,
    keep_params,
    rename_inputs,
)
from conformance.variants import Variant
from reference import classification as ref

# The specs this family declares, read by conformance.catalog.
SPECS = Family()


def _weight_scale(case: Case, name: str = "weight") -> float:
    weight = case.params.get(name)
    return float(np.max(np.abs(weight))) if isinstance(weight, np.ndarray) else 1.0


def _class_magnitude(case: Case, loss: np.ndarray, weight: str = "weight") -> np.ndarray:
    """|loss| plus the logsumexp's scale: max |logit| of each class vector, times the weight."""
    x = case.inputs["input"]
    biggest = np.max(np.abs(x), axis=dom.class_axis(x.shape))
    return np.abs(loss) + _weight_scale(case, weight) * (biggest + np.log(x.shape[dom.class_axis(
        x.shape)]) + 1.0)


def _logit_magnitude(case: Case, loss: np.ndarray) -> np.ndarray:
    x = next(iter(case.inputs.values()))
    return np.abs(loss) + _weight_scale(case) * (np.abs(x) + 1.0)


# --------------------------------------------------------------------------- BCE (probabilities)


@st.composite
def _bce_cases(draw: st.DrawFn) -> Case:
    shape = draw(dom.elementwise_shape())
    p = draw(dom.array(shape, dom.probabilities()))
    y = draw(dom.array(shape, dom.soft_targets()))
    weight = draw(maybe(dom.array(shape, dom.positive_weights())))
    return Case({"input": p, "target": y}, params(weight=weight))


def _each_sample(case: Case, name: str) -> tuple[int, ...]:
    """`separable` for (C,), (N, C) and (N, C, d1, ...) scores: a sample reads its classes."""
    return (dom.class_axis(case.inputs[name].shape),)


SPECS.declare(LossSpec(
    name="binary_cross_entropy",
    empty=(no_samples(along=("weight",)),),
    invalid=(batch_of_one("target"),),
    separable=each_element,
    family="classification",
    summary="binary cross-entropy on probabilities (torch.nn.functional.binary_cross_entropy)",
    signature="binary_cross_entropy(input, target, weight=None, reduction='mean')",
    reference=ref.binary_cross_entropy,
    cases=_bce_cases,
    magnitude=lambda case, loss: np.abs(loss) + _weight_scale(case),
    properties=GENERIC,
    edge_cases=(
        Case({"input": np.array([0.0, 1.0, 0.0, 1.0, 1e-30, 1.0 - 2.0**-24]),
              "target": np.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.0])},
             label="probabilities at and next to 0 and 1 (each log clamped at -100)"),
    ),
    implementations=("torch.nn.functional:binary_cross_entropy",),
    conventions=(
        "Each log term is clamped at -100 (torch's documented convention), so p = 0 or 1 gives"
        " a finite loss of at most 100 * weight. Soft targets in [0, 1] are allowed."
    ),
    variants=(Variant("log_clamp", -100.0, {
        -100.0: "each log term clamped at -100 (torch, documented)",
        None: "no clamp, the formula as written: inf where p is 0 or 1 against the other"
              " label"}, nonfinite=(None,)),),
))


# --------------------------------------------------------------------------- BCE with logits


@st.composite
def _bce_logits_cases(draw: st.DrawFn) -> Case:
    shape = draw(dom.elementwise_shape(min_dims=1))
    x = draw(dom.array(shape, dom.logits()))
    y = draw(dom.array(shape, dom.soft_targets()))
    weight = draw(maybe(dom.array(shape, dom.positive_weights())))
    pos_weight = draw(maybe(dom.array(shape[-1:], dom.positive_weights())))
    return Case({"input": x, "target": y}, params(weight=weight, pos_weight=pos_weight))


def _safe_logits_without_pos_weight(case: Case) -> Case:
    # BCE's log(1 - p) of a float64 p = sigmoid(x) loses about e^|x| ulps to cancellation;
    # within |x| <= 3 that stays inside the tolerance rule, so the relation is exact math.
    return case.with_inputs(input=np.clip(case.inputs["input"], -3.0, 3.0)).without_params(
        "pos_weight")


def _logits_magnitude_with_pos_weight(case: Case, loss: np.ndarray) -> np.ndarray:
    pos_weight = case.params.get("pos_weight")
    factor = 1.0 if pos_weight is None else max(1.0, float(np.max(pos_weight)))
    return _logit_magnitude(case, loss) * factor


SPECS.declare(LossSpec(
    name="binary_cross_entropy_with_logits",
    empty=(no_samples(along=("weight", "pos_weight")),),
    invalid=(batch_of_one("target"),),
    separable=each_element,
    family="classification",
    summary="sigmoid + binary cross-entropy on logits, stable for |x| up to 1e4",
    signature=("binary_cross_entropy_with_logits(input, target, weight=None, reduction='mean',"
               " pos_weight=None)"),
    reference=ref.binary_cross_entropy_with_logits,
    cases=_bce_logits_cases,
    magnitude=_logits_magnitude_with_pos_weight,
    properties=(*GENERIC, Relation(
        name="equals_bce_of_sigmoid",
        description="in the safe range |x| <= 3, BCE-with-logits(x, y) == BCE(sigmoid(x), y)",
        lhs=target(label="bce_with_logits(x, y)"),
        rhs=reference(ref.binary_cross_entropy,
                      transform=lambda c: c.with_inputs(input=expit(c.inputs["input"])),
                      label="bce(sigmoid(x), y)"),
        adapt=_safe_logits_without_pos_weight,
    )),
    edge_cases=(
        Case({"input": np.array([1e4, -1e4, 1e4, -1e4, 104.0, -104.0]),
              "target": np.array([1.0, 0.0, 0.0, 1.0, 0.5, 0.5])},
             label="saturated logits (|x| = 1e4)"),
        Case({"input": np.array([[-1e4]]), "target": np.array([[0.3046875]])},
             {"pos_weight": np.array([19.453125])},
             label="pos_weight 19.45 at a logit of -1e4: the loss, 59271, fits float16"),
    ),
    implementations=("torch.nn.functional:binary_cross_entropy_with_logits",),
    conventions=(
        "l = -w [pos_weight * y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))]; pos_weight"
        " broadcasts along the last dimension (one entry per class), weight to the input."
    ),
))


# --------------------------------------------------------------------------- cross entropy

IGNORE_INDICES = (-100, 0, 255)


@st.composite
def _cross_entropy_cases(draw: st.DrawFn, smoothing: bool = True) -> Case:
    shape = draw(dom.class_layout())
    classes = shape[dom.class_axis(shape)]
    x = draw(dom.array(shape, dom.logits()))
    weight = draw(maybe(dom.array((classes,), dom.positive_weights())))
    label_smoothing = draw(maybe(number((0.0, 0.1, 1.0), 0.0, 1.0))) if smoothing else OMIT
    if draw(st.booleans()):
        y = draw(dom.class_probabilities(shape))
        return Case({"input": x, "target": y},
                    params(weight=weight, label_smoothing=label_smoothing))
    ignore_index = draw(maybe(choice(*IGNORE_INDICES)))
    effective = -100 if ignore_index is OMIT else ignore_index
    y = draw(dom.class_indices(dom.without_class_axis(shape), classes, effective))
    return Case({"input": x, "target": y},
                params(weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing))


def _has_index_target(case: Case) -> bool:
    return not np.issubdtype(case.inputs["target"].dtype, np.floating)


def _index_mean_denominator(case: Case, reduction: str) -> float:
    x, y = case.inputs["input"], case.inputs["target"]
    classes = x.shape[dom.class_axis(x.shape)]
    if not _has_index_target(case):
        return x.size / classes
    return ref.class_index_weight_sum(y, case.params.get("weight"),
                                      case.params.get("ignore_index", -100), classes)


def _mean_over_nothing(case: Case, reduction: str) -> bool:
    return reduction == "mean" and _index_mean_denominator(case, reduction) == 0


def _every_target_ignored(case: Case) -> bool:
    y = case.inputs["target"]
    return _has_index_target(case) and bool(
        np.all(y == case.params.get("ignore_index", -100)))


# Regimes a deviations entry may name with `when`.
INDEX_REGIMES = {"every_target_ignored": _every_target_ignored}


def _as_index_targets(case: Case) -> Case:
    """Class-index targets with nothing ignored (probability targets become their argmax)."""
    x, y = case.inputs["input"], case.inputs["target"]
    axis = dom.class_axis(x.shape)
    if _has_index_target(case):
        ignore = case.params.get("ignore_index", -100)
        y = np.where(y == ignore, 0, y)
        if ignore == 0:  # class 0 is ignored: move those targets to a class that is not
            y = np.where(y == 0, x.shape[axis] - 1, y) if x.shape[axis] > 1 else y
    else:
        y = np.argmax(y, axis=axis)
    out = case.with_inputs(target=y.astype(np.int64)).without_params("ignore_index")
    return out


def _one_hot(case: Case) -> Case:
    x, y = case.inputs["input"], case.inputs["target"]
    axis = dom.class_axis(x.shape)
    onehot = np.moveaxis(np.eye(x.shape[axis])[y], -1, axis)
    return case.with_inputs(target=onehot)


def _one_hot_reductions(case: Case) -> tuple[str, ...]:
    # torch divides a probability-target mean by N but an index-target mean by sum(w[y]).
    return ("none", "sum") if "weight" in case.params else ("none", "mean", "sum")


def _log_softmax_input(case: Case) -> Case:
    x = case.inputs["input"]
    return case.with_inputs(input=ref.log_softmax(x))


CE_PROPERTIES = (
    *GENERIC,
    LOGIT_SHIFT_INVARIANCE,
    Relation(
        name="label_smoothing_zero_is_plain",
        description="label_smoothing=0.0 gives exactly the loss of a call without it",
        lhs=target(label="ce(x, y, label_smoothing=0.0)"),
        rhs=target(lambda c: c.without_params("label_smoothing"), label="ce(x, y)"),
        adapt=lambda c: c.with_params(label_smoothing=0.0),
    ),
    Relation(
        name="one_hot_equals_index_targets",
        description="one-hot probability targets give the loss of the class indices",
        lhs=target(_one_hot, label="ce(x, one_hot(y))"),
        rhs=target(label="ce(x, y)"),
        adapt=_as_index_targets,
        reductions=_one_hot_reductions,
    ),
    Relation(
        name="equals_nll_of_log_softmax",
        description="cross_entropy(x, y) == nll_loss(log_softmax(x), y) (no label smoothing)",
        lhs=target(label="ce(x, y)"),
        rhs=reference(ref.nll_loss, transform=_log_softmax_input,
                      label="nll(log_softmax(x), y)"),
        adapt=lambda c: _as_index_targets(c).without_params("label_smoothing"),
    ),
)

SPECS.declare(LossSpec(
    name="cross_entropy",
    empty=EMPTY_SCORES,
    regimes=INDEX_REGIMES,
    invalid=(label_out_of_range(), weight_too_long(), batch_of_one("target")),
    separable=_each_sample,
    family="classification",
    summary="softmax cross-entropy, class-index or probability targets",
    signature=("cross_entropy(input, target, weight=None, ignore_index=-100, reduction='mean',"
               " label_smoothing=0.0)"),
    reference=ref.cross_entropy,
    cases=_cross_entropy_cases,
    mean_denominator=_index_mean_denominator,
    magnitude=_class_magnitude,
    nan_expected=_mean_over_nothing,
    properties=CE_PROPERTIES,
    edge_cases=(
        Case({"input": np.array([[0.5, -1.0], [2.0, 0.0]]), "target": np.array([-100, -100])},
             label="every target ignored ('mean' is 0/0 = NaN, as torch defines it)"),
        Case({"input": np.array([[3.0], [-2.0]]), "target": np.array([0, 0])},
             label="one class (loss 0)"),
        Case({"input": np.array([[1e4, -1e4, 0.0]]), "target": np.array([1])},
             {"label_smoothing": 0.1}, label="logits of 1e4 with label smoothing"),
        Case({"input": np.array([[0.0, 0.0, 0.0, 1e4, 0.0, 0.0, 0.0, 0.0]]),
              "target": np.array([0])}, {"label_smoothing": 1e-144},
             label="a logit of 1e4 with a label smoothing that underflows float16"),
        Case({"input": np.tile([[0.0, 1e4]], (8, 1)), "target": np.zeros(8, dtype=np.int64)},
             label="eight losses of 1e4: the mean fits float16, the sum does not"),
        Case({"input": np.array([[0.0, 1.0, 2.0], [1.0, -1.0, 0.5]]), "target": np.array([2, 0])},
             {"weight": np.array([1.0, 2.0, 3.0])},
             label="class weights with index targets (and, in relations, one-hot targets)"),
    ),
    implementations=("torch.nn.functional:cross_entropy",),
    conventions=(
        "Class axis 1 ((N, C, d1, ...)), or 0 for an unbatched (C,) input. Index targets:"
        " 'mean' divides by sum of weight[y] over non-ignored targets (NaN when all are"
        " ignored); label smoothing adds eps/C * sum_c w_c (-log p_c) and shares that"
        " denominator. Probability targets: 'mean' divides by the number of samples whatever"
        " the weights."
    ),
))


# --------------------------------------------------------------------------- NLL


@st.composite
def _nll_cases(draw: st.DrawFn) -> Case:
    case = draw(_cross_entropy_cases(smoothing=False))
    case = case if _has_index_target(case) else _as_index_targets(case)
    return _log_softmax_input(case)


SPECS.declare(LossSpec(
    name="nll_loss",
    empty=EMPTY_SCORES,
    regimes=INDEX_REGIMES,
    invalid=(label_out_of_range(), weight_too_long(), batch_of_one("target")),
    separable=_each_sample,
    family="classification",
    summary="negative log-likelihood of log-probabilities with class-index targets",
    signature="nll_loss(input, target, weight=None, ignore_index=-100, reduction='mean')",
    reference=ref.nll_loss,
    cases=_nll_cases,
    mean_denominator=_index_mean_denominator,
    magnitude=lambda case, loss: np.abs(loss) + _weight_scale(case),
    nan_expected=_mean_over_nothing,
    properties=GENERIC,
    edge_cases=(
        Case({"input": np.log(np.array([[0.1, 0.5, 0.1, 0.3]])), "target": np.array([2])},
             label="seed 001's example: -log 0.1"),
        Case({"input": np.log(np.array([[0.25, 0.75]])), "target": np.array([-100])},
             label="every target ignored"),
        Case({"input": np.tile([[-1e4, 0.0]], (8, 1)), "target": np.zeros(8, dtype=np.int64)},
             label="eight losses of 1e4: the mean fits float16, the sum does not"),
    ),
    implementations=("torch.nn.functional:nll_loss",),
    conventions="As cross_entropy's class-index form, on log-probabilities, without smoothing.",
))


# --------------------------------------------------------------------------- KL divergence


@st.composite
def _kl_cases(draw: st.DrawFn) -> Case:
    shape = draw(dom.class_layout())
    log_q = ref.log_softmax(draw(dom.array(shape, dom.logits(100.0))))
    log_target = draw(maybe(st.booleans()))
    if log_target is True:
        t = ref.log_softmax(draw(dom.array(shape, dom.logits(100.0))))
    else:
        t = draw(dom.class_probabilities(shape))
    return Case({"input": log_q, "target": t}, params(log_target=log_target))


def _log_where_positive(p: np.ndarray, fill: float) -> np.ndarray:
    """log p where p > 0, `fill` where p = 0 (a term 0 log 0 = 0 leaves out)."""
    return np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), fill)


def _kl_magnitude(case: Case, loss: np.ndarray) -> np.ndarray:
    log_q, t = case.inputs["input"], case.inputs["target"]
    if case.params.get("log_target"):
        return np.abs(loss) + np.exp(t) * (np.abs(t) + np.abs(log_q) + 1.0)
    log_t = _log_where_positive(t, 0.0)
    return np.abs(loss) + t * (np.abs(log_t) + np.abs(log_q) + 1.0)


def _kl_denominator(case: Case, reduction: str) -> float:
    x = case.inputs["input"]
    return float(x.shape[0] if x.ndim else 1) if reduction == "batchmean" else float(x.size)


def _log_q_equals_p(case: Case) -> Case:
    t = case.inputs["target"]
    if case.params.get("log_target"):
        return case.with_inputs(input=t.copy())
    # Where p = 0 every log q gives a zero term; a finite stand-in keeps torch's 0 * -inf away.
    return case.with_inputs(input=_log_where_positive(t, -50.0))


def _target_probabilities(case: Case) -> np.ndarray:
    t = case.inputs["target"]
    return np.exp(t) if case.params.get("log_target") else t


def _a_certain_prediction(case: Case) -> bool:
    """Some q is exactly 1 (log q = 0) where p > 0: the edge of q's domain, where a clip of q
    to [eps, 1] has its kink."""
    return bool(np.any((case.inputs["input"] == 0.0) & (_target_probabilities(case) > 0)))


def _p_over_q_leaves_the_dtype(case: Case, dtype: str) -> bool:
    """Some ratio p / q is past `dtype`'s largest number, though log p - log q is not (float16
    from log q - log p below -11.1)."""
    largest = float(torch.finfo(getattr(torch, dtype)).max)
    p = _target_probabilities(case)
    log_p = _log_where_positive(p, 0.0)
    return bool(np.any((p > 0) & (log_p - case.inputs["input"] > np.log(largest))))


SPECS.declare(LossSpec(
    name="kl_div",
    empty=EMPTY_ELEMENTS,
    invalid=(batch_of_one("target"),),
    separable=each_element,
    family="classification",
    summary="pointwise KL divergence of log-probabilities from a target distribution",
    signature="kl_div(input, target, reduction='mean', log_target=False)",
    reference=ref.kl_div,
    cases=_kl_cases,
    reductions=("none", "mean", "sum", "batchmean"),
    regimes={"a_certain_prediction": _a_certain_prediction,
             "p_over_q_leaves_the_dtype": _p_over_q_leaves_the_dtype},
    mean_denominator=_kl_denominator,
    magnitude=_kl_magnitude,
    nonnegative_reductions=("mean", "sum", "batchmean"),
    properties=(*GENERIC, Relation(
        name="kl_of_a_distribution_with_itself_is_zero",
        description="KL(p || p) == 0 under every reduction, elementwise too",
        lhs=target(label="kl_div(log p, p)"),
        rhs=reference(zero_loss, label="0"),
        adapt=_log_q_equals_p,
    )),
    edge_cases=(
        Case({"input": np.log(np.array([[0.5, 0.5], [0.9, 0.1]])),
              "target": np.array([[1.0, 0.0], [0.0, 1.0]])},
             label="targets with exact zeros (0 log 0 = 0)"),
        Case({"input": np.array([[-1.0, -0.5]]), "target": np.array([[-88.5, -0.25]])},
             {"log_target": True},
             label="log target -88.5: p is subnormal in float32, p (log p - log q) is not"),
        Case({"input": np.full((1, 3), -1.0986122886681096),
              "target": np.array([[1.1125369292536007e-308, 0.5, 0.5]])},
             label="a subnormal float64 target probability (its term is normal)"),
        Case({"input": np.array([[0.0, -50.0]]), "target": np.array([[1.0, 0.0]])},
             label="a confident, correct one-hot prediction: log q = 0 where p = 1"),
        Case({"input": np.log(np.array([[3.3e-6, 1.0 - 3.3e-6]])),
              "target": np.array([[0.5, 0.5]])},
             label="q = 3.3e-6 against p = 0.5: p / q overflows float16, log p - log q does not"),
    ),
    implementations=("torch.nn.functional:kl_div",),
    conventions=(
        "input is log q, target is p (log p with log_target=True); terms with p = 0 are 0."
        " 'batchmean' divides the sum by input.shape[0] (the true KL of a batch); 'mean' by the"
        " number of elements. Pointwise terms may be negative, so only the reduced KL of"
        " distributions is declared non-negative."
    ),
))


# --------------------------------------------------------------------------- sigmoid focal


@st.composite
def _sigmoid_focal_cases(draw: st.DrawFn) -> Case:
    shape = draw(dom.elementwise_shape())
    x = draw(dom.array(shape, dom.logits()))
    y = draw(dom.array(shape, dom.binary_targets() | dom.soft_targets()))
    alpha = draw(maybe(number((-1.0, 0.0, 0.25, 1.0), 0.0, 1.0)))
    gamma = draw(maybe(number((0.0, 0.5, 1.0, 2.0, 5.0), 0.0, 5.0)))
    return Case({"inputs": x, "targets": y}, params(alpha=alpha, gamma=gamma))


def _alpha_weights(case: Case) -> Case:
    alpha, y = case.params["alpha"], case.inputs["target"]
    return case.with_params(weight=alpha * y + (1 - alpha) * (1 - y))


TO_BCE = compose(rename_inputs(inputs="input", targets="target"), keep_params())


def _focal_backward_product(unfocused: Callable[[Case], np.ndarray]
                            ) -> Callable[[Case], np.ndarray]:
    """`intermediates` of a focal loss: gamma times its unfocused loss (BCE, or CE) times the
    output's cotangent (up to 2). Autograd of CE (1 - p_t)^gamma multiplies the cotangent by CE
    and by gamma (1 - p_t)^(gamma - 1), so a float16 logit gap of 1e4 at gamma = 5 overflows
    there to inf, and inf times the vanished slope of p_t is a NaN gradient, in torchvision's
    formula and ours alike (soak, seed 500: sigmoid; a default-profile run: softmax). Only its
    overflow matters: a product below 1 is reported as 0 (`LossSpec.intermediates` also drops
    subnormal ones, which a small loss is not)."""

    def product(case: Case) -> np.ndarray:
        gamma = float(case.params.get("gamma", 2.0))
        found = 2.0 * gamma * np.abs(unfocused(case))
        return np.where(found >= 1.0, found, 0.0)

    return product


SPECS.declare(LossSpec(
    name="sigmoid_focal_loss",
    empty=EMPTY_ELEMENTS,
    invalid=(batch_of_one("targets"),),
    separable=each_element,
    family="classification",
    summary="focal loss on logits (Lin et al. 2017), torchvision.ops semantics",
    signature="sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2, reduction='none')",
    reference=ref.sigmoid_focal_loss,
    cases=_sigmoid_focal_cases,
    magnitude=_logit_magnitude,
    intermediates=_focal_backward_product(lambda case: ref.binary_cross_entropy_with_logits(
        case.inputs["inputs"], case.inputs["targets"], reduction="none")),
    properties=(
        *GENERIC,
        Relation(
            name="gamma0_alpha_off_is_bce",
            description="with gamma=0 and alpha<0 the focal loss is BCE-with-logits",
            lhs=target(label="focal(x, y, gamma=0, alpha=-1)"),
            rhs=reference(ref.binary_cross_entropy_with_logits, transform=TO_BCE,
                          label="bce_with_logits(x, y)"),
            adapt=lambda c: c.with_params(gamma=0.0, alpha=-1.0),
        ),
        Relation(
            name="gamma0_is_alpha_weighted_bce",
            description=("with gamma=0 the focal loss is BCE-with-logits weighted by"
                         " alpha*y + (1-alpha)*(1-y): alpha on the positive class"),
            lhs=target(label="focal(x, y, gamma=0, alpha=a)"),
            rhs=reference(ref.binary_cross_entropy_with_logits,
                          transform=lambda c: _alpha_weights(
                              compose(rename_inputs(inputs="input", targets="target"))(c)
                          ).without_params("alpha", "gamma"),
                          label="bce_with_logits(x, y, weight=a*y + (1-a)*(1-y))"),
            adapt=lambda c: c.with_params(
                gamma=0.0, alpha=float(np.clip(c.params.get("alpha", 0.25), 0.0, 1.0))),
            # Per-term weights are not one alpha_t times the BCE of a fractional target.
            holds_for={"soft_targets": ("interpolated", "exp_bce")},
        ),
        Relation(
            name="focal_at_most_bce",
            description="(1 - p_t)^gamma <= 1 and alpha_t <= 1, so focal <= BCE elementwise",
            lhs=target(label="focal(x, y)"),
            rhs=reference(ref.binary_cross_entropy_with_logits, transform=TO_BCE,
                          label="bce_with_logits(x, y)"),
            op="le",
        ),
    ),
    edge_cases=(
        Case({"inputs": np.array([1e4, -1e4, 1e4, -1e4, 0.0]),
              "targets": np.array([1.0, 0.0, 0.0, 1.0, 0.5])},
             {"gamma": 0.5}, label="saturated logits with gamma=0.5 (0 ** gamma)"),
        Case({"inputs": np.array([[-1.3521], [0.4975], [-1.0178], [-0.3859], [-0.2923]]),
              "targets": np.array([[1.0], [1.0], [0.0], [1.0], [1.0]])},
             {"alpha": -1.0, "gamma": 2.0}, label="seed 000's focal example (0.3375 as a mean)"),
        Case({"inputs": np.array([-0.0701, 1.5, -2.0]), "targets": np.array([0.2105, 0.7, 0.05])},
             {"gamma": 0.0}, label="fractional targets at gamma = 0 (alpha_t of a soft label)"),
        Case({"inputs": np.array([-0.0701, 1.5, -2.0]), "targets": np.array([0.2105, 0.7, 0.05])},
             {"gamma": 2.0}, label="fractional targets at gamma = 2 (p_t of a soft label)"),
        Case({"inputs": np.array(0.0), "targets": np.array(0.1875)},
             label="a fractional target at x = 0 (exact in every dtype, bfloat16 included)"),
    ),
    # torchvision's sigmoid_focal_loss has NaN gradients for 0 < gamma < 1: docs/findings.md.
    implementations=("implementations.focal:sigmoid_focal_loss",),
    conventions=(
        "FL = alpha_t (1 - p_t)^gamma BCE(x, y), p_t = p y + (1 - p)(1 - y), alpha_t = alpha y +"
        " (1 - alpha)(1 - y); a negative alpha disables alpha_t; 0^0 = 1; soft targets allowed;"
        " default reduction 'none' (torchvision's). A case where 2 gamma BCE exceeds the dtype's"
        " range is outside its domain: autograd of the formula overflows there."
    ),
    variants=(Variant("soft_targets", "interpolated", {
        "interpolated": "1 - p_t = y (1 - p) + (1 - y) p and alpha_t = alpha y + (1 - alpha)"
                        " (1 - y), linear in y (the paper's; torchvision, fvcore, toolbelt,"
                        " monai, optax)",
        "exp_bce": "1 - p_t = 1 - exp(-BCE) (mmdetection's; smp)",
        "per_term": "y alpha (1 - p)^gamma (-log p) + (1 - y)(1 - alpha) p^gamma (-log(1 - p)),"
                    " each class term its own weight (kornia)"}),),
))


# --------------------------------------------------------------------------- softmax focal


@st.composite
def _softmax_focal_cases(draw: st.DrawFn) -> Case:
    shape = draw(dom.class_layout())
    classes = shape[dom.class_axis(shape)]
    x = draw(dom.array(shape, dom.logits()))
    alpha = draw(maybe(dom.array((classes,), Uniform(0.0, 1.0))))
    gamma = draw(maybe(number((0.0, 0.5, 2.0), 0.0, 5.0)))
    ignore_index = draw(maybe(choice(*IGNORE_INDICES)))
    effective = -100 if ignore_index is OMIT else ignore_index
    y = draw(dom.class_indices(dom.without_class_axis(shape), classes, effective))
    return Case({"input": x, "target": y},
                params(alpha=alpha, gamma=gamma, ignore_index=ignore_index))


def _valid_count(case: Case, reduction: str, mean_over: str = "kept") -> float:
    """The 'mean' denominator: the targets kept, or as the mean_over convention counts."""
    target = case.inputs["target"]
    kept = int(np.sum(target != case.params.get("ignore_index", -100)))
    classes = case.inputs["input"].shape[dom.class_axis(case.inputs["input"].shape)]
    return ref.focal_mean_denominator(kept, target.size, classes, mean_over)


def _alpha_as_weight(case: Case) -> Case:
    alpha = case.params.get("alpha")
    out = case.without_params("alpha", "gamma")
    return out if alpha is None else out.with_params(weight=alpha)


SPECS.declare(LossSpec(
    name="softmax_focal_loss",
    empty=EMPTY_SCORES,
    separable=_each_sample,
    family="classification",
    summary="multi-class focal loss over a softmax, per-class alpha, ignore_index",
    signature=("softmax_focal_loss(input, target, alpha=None, gamma=2.0, ignore_index=-100,"
               " reduction='mean')"),
    reference=ref.softmax_focal_loss,
    cases=_softmax_focal_cases,
    mean_denominator=_valid_count,
    magnitude=lambda case, loss: _class_magnitude(case, loss, weight="alpha"),
    intermediates=_focal_backward_product(lambda case: ref.cross_entropy(
        case.inputs["input"], case.inputs["target"],
        ignore_index=case.params.get("ignore_index", -100), reduction="none")),
    nan_expected=lambda case, reduction, mean_over="kept": (
        reduction == "mean" and _valid_count(case, "mean", mean_over) == 0),
    properties=(
        *GENERIC,
        LOGIT_SHIFT_INVARIANCE,
        Relation(
            name="gamma0_is_cross_entropy",
            description="with gamma=0 and no alpha the softmax focal loss is cross-entropy",
            lhs=target(label="focal(x, y, gamma=0)"),
            rhs=reference(ref.cross_entropy, transform=_alpha_as_weight, label="ce(x, y)"),
            adapt=lambda c: c.without_params("alpha").with_params(gamma=0.0),
            holds_for={"mean_over": ("kept",)},  # cross_entropy's mean is over kept targets
        ),
        Relation(
            name="gamma0_alpha_is_weighted_cross_entropy",
            description="with gamma=0, alpha acts as cross-entropy's class weight (elementwise)",
            lhs=target(label="focal(x, y, gamma=0, alpha=a)"),
            rhs=reference(ref.cross_entropy, transform=_alpha_as_weight,
                          label="ce(x, y, weight=a)"),
            adapt=lambda c: c.with_params(gamma=0.0, alpha=c.params.get(
                "alpha", np.linspace(0.1, 1.0, c.inputs["input"].shape[
                    dom.class_axis(c.inputs["input"].shape)]))),
            reductions=("none", "sum"),
        ),
    ),
    edge_cases=(
        Case({"input": np.array([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]]), "target": np.array([0, 2])},
             {"gamma": 0.5}, label="p_t = 1 exactly with gamma=0.5"),
        Case({"input": np.array([[0.5, -1.0]]), "target": np.array([-100])},
             label="every target ignored"),
        Case({"input": np.array([[1.0, -0.5, 2.0], [0.3, 0.2, -1.0]]), "target": np.array([2, 0])},
             {"alpha": np.array([0.25, 0.5, 0.75]), "gamma": 2.0},
             label="per-class alpha with gamma=2"),
        Case({"input": np.tile([[0.0, 1e4]], (8, 1)), "target": np.zeros(8, dtype=np.int64)},
             label="eight losses of 1e4: the mean fits float16, the sum does not"),
    ),
    implementations=("implementations.focal:softmax_focal_loss",),
    conventions=(
        "l_i = -alpha[y_i] (1 - p_{i,y_i})^gamma log p_{i,y_i} over softmax(input) on the class"
        " axis (as cross_entropy); alpha=None means 1. 'mean' divides by the number of"
        " non-ignored targets, not by the alpha-weighted count (so gamma=0 with alpha equals"
        " weighted CE for 'none' and 'sum' only); all ignored gives NaN like cross_entropy."
        " A case where 2 gamma CE exceeds the dtype's range is outside its domain: autograd of"
        " the formula overflows there."
    ),
    variants=(Variant("mean_over", "kept", {
        "kept": "'mean' divides by the targets not ignored (as cross_entropy)",
        "all": "'mean' divides by every target, ignored ones included (smp)",
        "elements": "'mean' divides by every element of a (N, C, ...) map: C times every"
                    " target (kornia's focal_loss)"}),),
))


# --------------------------------------------------------------------------- quality focal


@st.composite
def _qfl_cases(draw: st.DrawFn) -> Case:
    shape = draw(dom.elementwise_shape())
    x = draw(dom.array(shape, dom.logits()))
    y = draw(dom.array(shape, dom.soft_targets()))
    beta = draw(maybe(number((0.0, 0.5, 1.0, 2.0), 0.0, 4.0)))
    return Case({"input": x, "target": y}, params(beta=beta))


DROP_ALL = keep_params()

SPECS.declare(LossSpec(
    name="quality_focal_loss",
    empty=EMPTY_ELEMENTS,
    invalid=(batch_of_one("target"),),
    separable=each_element,
    family="classification",
    summary="Quality Focal Loss (Generalized Focal Loss, Li et al. 2020), elementwise form",
    signature="quality_focal_loss(input, target, beta=2.0, reduction='mean')",
    reference=ref.quality_focal_loss,
    cases=_qfl_cases,
    magnitude=_logit_magnitude,
    properties=(
        *GENERIC,
        Relation(
            name="beta0_is_bce",
            description="with beta=0 the quality focal loss is BCE-with-logits on soft targets",
            lhs=target(label="qfl(x, y, beta=0)"),
            rhs=reference(ref.binary_cross_entropy_with_logits, transform=DROP_ALL,
                          label="bce_with_logits(x, y)"),
            adapt=lambda c: c.with_params(beta=0.0),
        ),
        Relation(
            name="qfl_at_most_bce",
            description="|y - sigmoid(x)|^beta <= 1, so QFL <= BCE elementwise",
            lhs=target(label="qfl(x, y)"),
            rhs=reference(ref.binary_cross_entropy_with_logits, transform=DROP_ALL,
                          label="bce_with_logits(x, y)"),
            op="le",
        ),
    ),
    edge_cases=(
        Case({"input": np.array([1e4, -1e4, 0.0, 2.0]), "target": np.array([1.0, 0.0, 0.5, 0.3])},
             {"beta": 0.5}, label="quality target met exactly (|y - sigma| = 0)"),
        Case({"input": np.array(-17.0), "target": np.array(0.0)}, {"beta": 0.25},
             label="|y - sigma| at float16's smallest subnormal with beta < 1 (found by the"
                   " soak: a NaN gradient in float16)"),
    ),
    implementations=("implementations.focal:quality_focal_loss",),
    conventions=(
        "QFL = |y - sigmoid(x)|^beta * BCE-with-logits(x, y), y a soft quality score in [0, 1];"
        " mmdetection's variant that also takes class labels is an adapter's job."
    ),
))


# --------------------------------------------------------------------------- balanced BCE


@st.composite
def _balanced_cases(draw: st.DrawFn) -> Case:
    shape = draw(dom.elementwise_shape(min_dims=2))
    x = draw(dom.array(shape, dom.logits()))
    y = draw(dom.array(shape, dom.binary_targets()))
    return Case({"input": x, "target": y})


SPECS.declare(LossSpec(
    name="balanced_binary_cross_entropy_with_logits",
    empty=EMPTY_ELEMENTS,
    invalid=(batch_of_one("target"),),
    separable=each_element,
    family="classification",
    summary="class-balanced BCE on logits: beta = fraction of negatives per sample (seed 001)",
    signature="balanced_binary_cross_entropy_with_logits(input, target, reduction='mean')",
    reference=ref.balanced_binary_cross_entropy_with_logits,
    cases=_balanced_cases,
    magnitude=_logit_magnitude,
    properties=(*GENERIC, Relation(
        name="equals_bce_with_balancing_weights",
        description=("balanced BCE == BCE-with-logits with weight beta*y + (1-beta)*(1-y),"
                     " beta = 1 - mean(y) per sample"),
        lhs=target(label="balanced_bce(x, y)"),
        rhs=reference(ref.binary_cross_entropy_with_logits,
                      transform=lambda c: c.with_params(
                          weight=ref.balanced_bce_weights(c.inputs["target"])),
                      label="bce_with_logits(x, y, weight=w_beta)"),
        holds_for={"count_eps": (0.0,)},  # its weights are the spec's own
    )),
    edge_cases=(
        Case({"input": np.array([[2.0, -1.0, 1e4]]), "target": np.array([[0.0, 0.0, 0.0]])},
             label="no positives in the sample (beta = 1)"),
        Case({"input": np.array([[2.0, -1.0], [-1e4, 3.0]]),
              "target": np.array([[1.0, 1.0], [1.0, 0.0]])},
             label="all positives in one sample (beta = 0)"),
        Case({"input": np.array([[0.5, -1.0, 2.0]]), "target": np.array([[1.0, 0.0, 0.0]])},
             label="one sample, one positive in three (beta = 2/3)"),
    ),
    implementations=("implementations.balanced:balanced_binary_cross_entropy_with_logits",),
    conventions=(
        "input (N, d1, ...) with ndim >= 2; beta_n = 1 - mean(y_n) over the non-batch dims;"
        " l = -(beta y log sigmoid(x) + (1 - beta)(1 - y) log(1 - sigmoid(x))); 'mean' over all"
        " elements."
    ),
    variants=(Variant("count_eps", 0.0, {
        0.0: "beta = negatives / count",
        1e-7: "beta = negatives / (count + 1e-7), 1 - beta = (positives + 1e-7) / (count +"
              " 1e-7): an all-negative sample weighs its negatives 1e-7, not 0"
              " (pytorch_toolbelt)"}),),
))


# --------------------------------------------------------------------------- multi-label


@st.composite
def _multilabel_cases(draw: st.DrawFn) -> Case:
    classes = draw(st.integers(1, 6))
    batch = draw(st.sampled_from((0, 1, 2, 4)))  # 0: one sample, (C,)
    shape = (batch, classes) if batch else (classes,)
    x = draw(dom.array(shape, dom.logits()))
    y = draw(dom.array(shape, dom.booleans()))
    weight = draw(maybe(dom.array((classes,), dom.positive_weights())))
    return Case({"input": x, "target": y}, params(weight=weight))


def _multilabel_magnitude(case: Case, loss: np.ndarray) -> np.ndarray:
    """|loss| plus each sample's class mean of weight * (|logit| + 1): BCE with logits moves
    with the rounding of each logit at slope <= 1."""
    x = case.inputs["input"]
    w = case.params.get("weight")
    w = np.ones(x.shape[-1]) if w is None else np.abs(w)
    return np.abs(loss) + np.mean(w * (np.abs(x) + 1.0), axis=-1)


def _multilabel_intermediates(case: Case) -> np.ndarray:
    """Each weighted class term w_c BCE_c and each sample's sum of them, before the class mean
    divides by C (and twice, for the backward's cotangent): past a dtype's range they overflow
    though the mean fits (float16: weight 6.6 on a logit of -1e4 is 6.6e4). Only overflow
    matters: a value below 1 is reported as 0."""
    x, y = case.inputs["input"], case.inputs["target"]
    w = case.params.get("weight")
    w = np.ones(x.shape[-1]) if w is None else np.abs(w)
    terms = 2.0 * w * np.abs(ref.binary_cross_entropy_with_logits(x, y, reduction="none"))
    parts = np.concatenate([terms.reshape(-1), np.sum(terms, axis=-1).reshape(-1)])
    return np.where(parts >= 1.0, parts, 0.0)


def _negated_scores_flipped_labels(case: Case) -> Case:
    return case.with_inputs(input=-case.inputs["input"], target=1.0 - case.inputs["target"])


def _weight_broadcast(case: Case) -> Case:
    """BCE with logits' call for the same terms: the class weight as an elementwise weight."""
    weight = case.params.get("weight")
    out = case.without_params("weight")
    if weight is None:
        return out
    return out.with_params(weight=np.broadcast_to(weight, case.inputs["input"].shape).copy())


SPECS.declare(LossSpec(
    name="multilabel_soft_margin_loss",
    empty=(no_samples(min_ndim=2),),
    invalid=(batch_of_one("target", min_ndim=2), weight_too_long()),
    separable=_each_sample,
    family="classification",
    summary="each sample's class mean of BCE with logits, for multi-label {0, 1} targets",
    signature="multilabel_soft_margin_loss(input, target, weight=None, reduction='mean')",
    reference=ref.multilabel_soft_margin_loss,
    cases=_multilabel_cases,
    magnitude=_multilabel_magnitude,
    intermediates=_multilabel_intermediates,
    properties=(
        *GENERIC,
        Relation(
            name="negated_scores_and_flipped_labels_change_nothing",
            description="loss(-x, 1 - y) == loss(x, y): a label's two classes are symmetric",
            lhs=target(_negated_scores_flipped_labels, label="loss(-x, 1 - y)"),
            rhs=target(label="loss(x, y)"),
        ),
        Relation(
            name="mean_equals_bce_with_logits_mean",
            description=("'mean' is binary_cross_entropy_with_logits' mean over every (sample,"
                         " class) with the class weight broadcast: N C terms either way"),
            lhs=target(label="multilabel_soft_margin_loss(x, y, w, 'mean')"),
            rhs=reference(ref.binary_cross_entropy_with_logits, transform=_weight_broadcast,
                          label="bce_with_logits(x, y, weight=w, 'mean')"),
            reductions=("mean",),
        ),
    ),
    edge_cases=(
        Case({"input": np.array([[0.0, 40.0, -40.0], [1e4, -1e4, 0.5]]),
              "target": np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 1.0]])},
             label="saturated scores, right and wrong (terms 40, 2e-18, 1e4-sized)"),
        Case({"input": np.array([0.5, -1.0]), "target": np.array([1.0, 1.0])},
             {"weight": np.array([2.0, 0.5])}, label="one sample (C,), weighted classes"),
    ),
    implementations=("torch.nn.functional:multilabel_soft_margin_loss",),
    conventions=("l_n = mean over the C classes of w_c BCE-with-logits(x_nc, y_nc), y in {0, 1};"
                 " the weight does not enter the class mean's denominator; 'none' is (N,),"
                 " 0-d for one (C,) sample; mean = sum / N (NaN over a batch of 0). A case"
                 " whose weighted class terms or their sum (twice, for the backward) exceed"
                 " the dtype's range is outside its domain: the formula overflows before the"
                 " mean."),
))

