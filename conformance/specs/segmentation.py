"""Segmentation losses: soft Dice (standard and squared forms, smoothing), soft Jaccard, Tversky,
Dice + CE, Lovasz hinge and Lovasz-softmax, and the hard Jaccard index they extend.

torch has none of these, so the canonical calls are this project's design, one for all region
losses:

    loss(input, target, activation='softmax', smooth=0.0, include_background=True,
         classes='all', per_image=False, ignore_index=None, reduction='mean')

- input: logits (N, C, *spatial); activation 'softmax' (over C) or 'sigmoid' (per channel).
- target: an integer label map (N, *spatial) (one-hot over C; `ignore_index` pixels leave every
  sum), or a float mask shaped like the input (one-hot, soft or multi-label).
- Soft counts per class, summed over batch and space, or per image and class with per_image.
- classes: 'all', 'present' (classes with ground truth, per image when per_image) or a list;
  include_background=False drops class 0 from 'all' / 'present'.
- reduction of 1 - score over the selected entries: 'none' ((C',) or (N, C'); entries that
  'present' leaves out are 0), 'sum', 'mean' (over the selected entries; a mean over none is 0).
- A score whose denominator is 0 (smooth = 0, nothing predicted, nothing there) is 0: the
  limit as the predictions of an absent class vanish. Scoring it 1 instead would make the loss
  jump wherever a probability underflows (float32's 0 against float64's 1e-137). So with
  smooth = 0, an absent class that is not predicted costs 1 under classes='all'. Smoothing or
  classes='present' is how a user opts out.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from hypothesis import strategies as st

from conformance import domains as dom
from conformance.case import Case
from conformance.elements import Integers
from conformance.empty import no_pixels, no_samples
from conformance.properties.relation import Relation, reference, target
from conformance.spec import Family, LossSpec
from conformance.specs.common import EMPTY_SCORES, GENERIC, choice, maybe, number, params
from conformance.variants import Variant
from reference import classification as cls_ref
from reference import segmentation as ref

# The specs this family declares, read by conformance.catalog.
SPECS = Family()

IGNORE = 255
SATURATED = 1e4  # softmax / sigmoid of +-1e4 are exactly 0 and 1 in every float dtype


# --------------------------------------------------------------------------- input domains


@st.composite
def _layout(draw: st.DrawFn, max_classes: int = 4) -> tuple[int, ...]:
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, max_classes))
    spatial = draw(st.lists(st.integers(1, 4), min_size=0, max_size=2))
    return (n, c, *spatial)


@lru_cache(maxsize=64)
def _class_selections(classes: int) -> st.SearchStrategy:
    """'all', 'present', or a list of distinct class indices."""
    return st.one_of(st.sampled_from(["all", "present"]),
                     st.lists(st.integers(0, classes - 1), min_size=1, max_size=classes,
                              unique=True))


@st.composite
def _labels(draw: st.DrawFn, shape: tuple[int, ...], num_classes: int,
            ignore: bool) -> np.ndarray:
    labels = draw(dom.array(shape, Integers(0, num_classes - 1), np.int64))
    if ignore:
        hidden = draw(dom.array(shape, dom.booleans(), np.bool_))
        labels = np.where(hidden, IGNORE, labels)
    return labels


@st.composite
def _region_cases(draw: st.DrawFn, loss: str) -> Case:
    shape = draw(_layout())
    n, c = shape[:2]
    x = draw(dom.array(shape, dom.logits()))
    activation = draw(choice("softmax", "sigmoid"))
    drawn: dict[str, object] = {"activation": activation}
    if draw(st.booleans()):
        ignore = draw(st.booleans())
        y = draw(_labels((n, *shape[2:]), c, ignore))
        if ignore:
            drawn["ignore_index"] = IGNORE
    else:
        y = draw(dom.array(shape, dom.soft_targets()))
    drawn |= params(
        # smooth is 0 or at least 1e-5: a subnormal smooth vanishes in float32 (s / s = 1 in
        # float64 but 0 / 0 there), a discontinuity of the definition, not of the code.
        smooth=draw(maybe(number((0.0, 1.0, 1e-5), 1e-5, 2.0))),
        per_image=draw(maybe(st.booleans())),
        include_background=draw(maybe(st.booleans())),
        classes=draw(maybe(_class_selections(c))),
    )
    if loss == "dice":
        drawn |= params(form=draw(maybe(choice("standard", "squared"))))
    if loss == "tversky":
        # alpha = beta = 0 makes the score TP / TP: 1, but 0 once TP underflows. Keep them apart
        # from 0 so that the value is a continuous function of the inputs.
        drawn |= params(alpha=draw(maybe(st.floats(0.1, 2.0))),
                        beta=draw(maybe(st.floats(0.1, 2.0))))
    return Case({"input": x, "target": y}, drawn)


# --------------------------------------------------------------------------- case maps


def _label_target(case: Case) -> Case:
    """An integer label map (argmax of a float mask), so that pixels can be ignored."""
    y = case.inputs["target"]
    if np.issubdtype(y.dtype, np.floating):
        return case.with_inputs(target=np.argmax(y, axis=1)).without_params("ignore_index")
    return case


def _scramble_ignored(case: Case) -> Case:
    """New logits at ignored pixels: they must not matter."""
    x, y = case.inputs["input"], case.inputs["target"]
    ignore = case.params.get("ignore_index")
    if ignore is None or np.issubdtype(y.dtype, np.floating):
        return case
    hidden = np.expand_dims(y == ignore, 1) if x.ndim == y.ndim + 1 else y == ignore
    return case.with_inputs(input=np.where(hidden, 7.0 - 3.0 * x, x))


def _with_ignored_pixels(case: Case) -> Case:
    case = _label_target(case)
    y = case.inputs["target"]
    if "ignore_index" not in case.params:
        # Ignore every third pixel so that the relation has something to ignore.
        flat = np.arange(y.size).reshape(y.shape)
        case = case.with_inputs(target=np.where(flat % 3 == 2, IGNORE, y)).with_params(
            ignore_index=IGNORE)
    return case


def _first_image(case: Case) -> Case:
    return case.with_inputs(**{k: v[:1] for k, v in case.inputs.items()})


def _permute_pixels(case: Case) -> Case:
    """One fixed permutation of the spatial positions, applied to logits and labels alike."""
    x, y = case.inputs["input"], case.inputs["target"]
    # Label maps (N, *spatial) go with logits (N, C, *spatial); masks and the hinge's labels
    # share the logits' shape, with (N, C) or (N) leading.
    lead_dims = 2 if (y.ndim == x.ndim - 1 or np.issubdtype(y.dtype, np.floating)) else 1
    spatial = x.shape[lead_dims:]
    size = int(np.prod(spatial, dtype=int))
    order = np.random.default_rng(size).permutation(size)
    def permute(a: np.ndarray) -> np.ndarray:
        lead = a.shape[: a.ndim - len(spatial)]
        return a.reshape(*lead, size)[..., order].reshape(a.shape)

    return case.with_inputs(input=permute(x), target=permute(y))


def _hard_prediction(case: Case) -> Case:
    """Saturated logits of the argmax (softmax) or sign (sigmoid): exactly one-hot p."""
    x = case.inputs["input"]
    if case.params.get("activation", "softmax") == "softmax":
        onehot = np.moveaxis(np.eye(x.shape[1])[np.argmax(x, axis=1)], -1, 1)
        return case.with_inputs(input=SATURATED * onehot)
    return case.with_inputs(input=np.where(x > 0, SATURATED, -SATURATED))


def _perfect_prediction(case: Case) -> Case:
    """Saturated logits equal to the (hard) target; with smooth = 0 over the present classes
    (an absent class scores 0 / 0 = 0 there, by the spec's convention)."""
    case = _label_target(case)
    if case.params.get("smooth", 0.0) == 0:
        case = case.with_params(classes="present")
    x, y = case.inputs["input"], case.inputs["target"]
    safe = np.where(y == case.params.get("ignore_index", -1), 0, y)
    onehot = np.moveaxis(np.eye(x.shape[1])[safe], -1, 1)
    if case.params.get("activation", "softmax") == "softmax":
        return case.with_inputs(input=SATURATED * onehot)
    return case.with_inputs(input=SATURATED * (2 * onehot - 1))


def _zero_like_spec(fn):
    def zeros(*args, **kwargs):
        return np.zeros_like(fn(*args, **kwargs))

    zeros.__name__ = "0"
    return zeros


def _one_like_spec(fn):
    def ones(*args, **kwargs):
        return np.ones_like(fn(*args, **kwargs))

    ones.__name__ = "1"
    return ones


# --------------------------------------------------------------------------- shared relations

IGNORED_PIXELS_CHANGE_NOTHING = Relation(
    name="ignored_pixels_change_nothing",
    description="new logits at ignore_index pixels leave the loss unchanged",
    lhs=target(_scramble_ignored, label="loss(scrambled at ignored pixels)"),
    rhs=target(label="loss"),
    adapt=_with_ignored_pixels,
)
PER_IMAGE_EQUALS_BATCH_FOR_ONE_IMAGE = Relation(
    name="per_image_equals_batch_for_one_image",
    description="with one image, per_image=True and per_image=False agree",
    lhs=target(lambda c: c.with_params(per_image=True), label="loss(per_image=True)"),
    rhs=target(lambda c: c.with_params(per_image=False), label="loss(per_image=False)"),
    # With ignored pixels, so that a branch that drops ignore_index shows.
    adapt=lambda c: _first_image(_with_ignored_pixels(c)),
    reductions=("mean", "sum"),
)
PIXEL_PERMUTATION_INVARIANCE = Relation(
    name="pixel_permutation_invariance",
    description="permuting pixels together with their labels leaves the loss unchanged",
    lhs=target(_permute_pixels, label="loss(permuted pixels)"), rhs=target(label="loss"),
)


def _region_magnitude(case: Case, loss: np.ndarray) -> np.ndarray:
    # Scores are ratios of sums of probabilities in [0, 1]: errors relative to 1.
    return np.abs(loss) + 1.0


def _kept(case: Case, reduction: str) -> float:
    # A mean over no kept entry is 0: the sum of nothing over 1.
    return float(max(1, ref.kept_entries(case.inputs["input"], case.inputs["target"],
                                  **{k: v for k, v in case.params.items() if k in (
                                      "include_background", "classes", "per_image",
                                      "ignore_index")})))


# Float16 found this in our own Dice and Tversky: p ~ 4e-8 for class 1, its denominator's square
# underflows, and num / den's backward was 0 / 0. The score of an absent class is 0 whatever p.
# Every class present, so that what a library's defaults change shows by itself (an absent
# class is a regime of its own for several libraries).
SMOOTH_LEFT_OUT = Case(
    {"input": np.array([[[2.0, -1.0], [0.5, 1.5]]]), "target": np.array([[0, 1]])},
    {"activation": "softmax", "per_image": False},
    label="every class present, smooth left out (a default smoothing shows)",
)
PER_IMAGE_LEFT_OUT = Case(
    {"input": np.array([[[2.0, -1.0], [0.5, 1.5]]]), "target": np.array([[0, 1]])},
    {"activation": "softmax", "smooth": 1.0},
    label="every class present, per_image left out (a per-image default shows)",
)
ABSENT_CLASS_UNDERFLOW = Case(
    {"input": np.array([[[17.0, 17.0], [0.0, 0.0]]]), "target": np.zeros((1, 2, 2))},
    label="an absent class whose probability underflows in float16 (gradient 0, not NaN)",
)


NOTHING_PREDICTED_NOTHING_PRESENT = Case(
    {"input": np.array([[[1e4], [-1e4]]]), "target": np.array([[[1.0], [0.0]]])},
    {"smooth": 0.0},
    label="class 1 neither predicted nor present at smooth 0 (0 / 0: loss 1; NaN in monai,"
          " optax)",
)


SOFT_MASK = Case(
    {"input": np.array([[[0.0]]]), "target": np.array([[[0.25]]])}, {"activation": "sigmoid"},
    label="a soft mask value (sum p g = 1/8, sum min(p, g) = 1/4)",
)


def _a_class_absent(case: Case) -> bool:
    """Some class has no pixel in the target (ignored pixels aside), in the batch or, with
    per_image, in some image: its score is the smoothing's alone, 0 / 0 at smooth = 0."""
    x, y = case.inputs["input"], case.inputs["target"]
    classes = x.shape[1]
    groups = list(y) if case.params.get("per_image") else [y]
    if np.issubdtype(y.dtype, np.floating):  # soft masks, (N, C, ...) or (C, ...) per image
        axis = 0 if case.params.get("per_image") else 1
        by_class = [np.moveaxis(g, axis, 0) for g in groups]  # an empty batch has no -1
        return any(bool(np.any(c.reshape(classes, c[0].size).sum(axis=1) == 0))
                   for c in by_class)
    ignore = case.params.get("ignore_index", IGNORE)
    return any(len(np.unique(g[g != ignore])) < classes for g in groups)

# Two images scored each on its own: per image, its empty form (a batch of 0) has no entry to
# average, where a mean over no entry is 0.
PER_IMAGE_SMOOTHED = Case(
    {"input": np.array([[[[2.0]], [[-1.0]]], [[[0.5]], [[3.0]]]]),
     "target": np.array([[[[1.0]], [[0.0]]], [[[0.0]], [[1.0]]]])},
    {"activation": "sigmoid", "smooth": 1.0, "per_image": True},
    label="two images scored per image, smoothed",
)


# How libraries score a class, declared on every region loss (reference/segmentation.py).
SCORING = (
    Variant("empty_score", "one", {
        "one": "a 0 / 0 score (smooth 0, nothing predicted and nothing present) is loss 1, its"
               " limit as the predictions vanish (smp, toolbelt)",
        "nan": "0 / 0 as written: NaN (monai, optax at smooth 0)"}, nonfinite=("nan",)),
    Variant("absent_class", "scored", {
        "scored": "a class with no ground truth is scored by its predictions",
        "zero": "a class with no ground truth costs 0, and still counts in the mean (smp)"}),
    Variant("intersection", "product", {
        "product": "I = sum p g",
        "min": "I = sum min(p, g) = (P + G - |p - g|_1) / 2 (smp 0.5, Wang & Blaschko's"
               " semimetric form): the same on {0, 1} targets"}),
)


def region_spec(name: str, summary: str, fn, kind: str, relations: tuple,
                 conventions: str, edge_cases: tuple[Case, ...] = (),
                 variants: tuple[Variant, ...] = ()) -> LossSpec:
    """A region loss of (N, C, ...) scores with the family's one call (the module docstring):
    `kind` ('dice', 'jaccard' or 'tversky') picks the score's parameters and cases (alpha and
    beta for Tversky, `form` for Dice); the family's invariants, edge cases and conventions
    apply, plus `relations` and `edge_cases`."""
    return SPECS.declare(LossSpec(
        name=name,
        family="segmentation",
        summary=summary,
        signature=(f"{name}(input, target, "
                   + ("alpha=0.5, beta=0.5, " if kind == "tversky" else "")
                   + "activation='softmax', "
                   + ("form='standard', " if kind == "dice" else "")
                   + "smooth=0.0, include_background=True, classes='all', per_image=False,"
                   " ignore_index=None, reduction='mean')"),
        reference=fn,
        cases=lambda: _region_cases(kind),
        regimes={"a_class_absent": _a_class_absent},
        empty=EMPTY_SCORES,
        mean_denominator=_kept,
        magnitude=_region_magnitude,
        properties=(*GENERIC, IGNORED_PIXELS_CHANGE_NOTHING,
                    PER_IMAGE_EQUALS_BATCH_FOR_ONE_IMAGE, PIXEL_PERMUTATION_INVARIANCE,
                    Relation(
                        name="zero_at_a_perfect_prediction",
                        description="saturated logits equal to the target give loss 0",
                        lhs=target(label="loss(perfect)"),
                        rhs=reference(_zero_like_spec(fn), label="0"),
                        adapt=_perfect_prediction,
                    ),
                    Relation(
                        name="at_most_one",
                        description="the score is in [0, 1], so the loss is at most 1",
                        lhs=target(label="loss"), rhs=reference(_one_like_spec(fn), label="1"),
                        op="le", reductions=("none", "mean"),
                    ),
                    *relations),
        edge_cases=(ABSENT_CLASS_UNDERFLOW, NOTHING_PREDICTED_NOTHING_PRESENT, SOFT_MASK,
                    PER_IMAGE_SMOOTHED, SMOOTH_LEFT_OUT, PER_IMAGE_LEFT_OUT, *edge_cases),
        implementations=(f"implementations.segmentation:{name}",),
        conventions=conventions,
        variants=(*variants, *SCORING),
    ))


EMPTY_ON_EMPTY = Case(
    {"input": np.full((1, 1, 2, 2), -SATURATED), "target": np.zeros((1, 1, 2, 2))},
    {"activation": "sigmoid", "smooth": 1.0},
    label="empty prediction on an empty target, smoothed (loss 0, not NaN)",
)
ALL_IGNORED = Case(
    {"input": np.array([[[0.5, -1.0], [2.0, 0.0]]]), "target": np.array([[IGNORE, IGNORE]])},
    {"ignore_index": IGNORE, "classes": "present"},
    label="every pixel ignored, classes='present' (a mean over nothing is 0)",
)
ONE_PIXEL_ONE_CLASS_PRESENT = Case(
    {"input": np.array([[[2.0], [-1.0], [0.5]]]), "target": np.array([[1]])},
    {"classes": "all"},
    label="one pixel, one class present, two classes absent (each costs 1 at smooth 0)",
)
ALL_BACKGROUND = Case(
    {"input": np.array([[[3.0, 0.0, -2.0], [-1.0, 2.0, 0.5]]]), "target": np.array([[0, 0, 0]])},
    {"include_background": False, "classes": "present"},
    label="all-background target without the background class (nothing kept: mean 0)",
)
SEED_001_DICE = Case(
    {"input": np.log(np.array([[[0.3, 0.2, 0.3, 0.2]]]) / np.array([[[0.7, 0.8, 0.7, 0.8]]])),
     "target": np.array([[[0.0, 1.0, 0.0, 1.0]]])},
    {"activation": "sigmoid"},
    label="seed 001's example: A = 1.0, B = 2, I = 0.4, Dice = 0.8 / 3",
)

def _dice_from_jaccard(input: np.ndarray, target: np.ndarray, reduction: str = "none",
                       form: str = "standard", empty_score: str = "one",
                       absent_class: str = "scored", intersection: str = "product",
                       **kw: object) -> np.ndarray:
    j = 1.0 - ref.soft_jaccard_loss(input, target, reduction=reduction,
                                    empty_score=empty_score, absent_class=absent_class,
                                    intersection=intersection, **kw)
    return 1.0 - 2.0 * j / (1.0 + j)


region_spec(
    "soft_dice_loss", "1 - soft Dice, standard or squared denominator, optional smoothing",
    ref.soft_dice_loss, "dice",
    (Relation(
        name="dice_is_2j_over_1_plus_j_on_hard_masks",
        description="on hard predictions Dice = 2J / (1 + J) for every class entry",
        lhs=target(label="1 - Dice"),
        rhs=reference(_dice_from_jaccard, label="1 - 2J/(1+J)"),
        adapt=lambda c: _hard_prediction(c).with_params(smooth=0.0, form="standard"),
        reductions=("none",),
    ),),
    "score (2I + smooth) / (P + G + smooth); form 'squared': (2I + smooth) / (sum p^2 + sum g^2"
    " + smooth) (V-Net).",
    edge_cases=(EMPTY_ON_EMPTY, ALL_IGNORED, SEED_001_DICE, ONE_PIXEL_ONE_CLASS_PRESENT,
                ALL_BACKGROUND),
    variants=(Variant("smoothing", "dice", {
        "dice": "S = (2I + smooth) / (P + G + smooth) (monai, toolbelt)",
        "tversky": "S = (I + smooth) / ((P + G) / 2 + smooth), Dice as the Tversky index at"
                   " alpha = beta = 1/2 (smp 0.3+, optax): 'dice' at 2 smooth"}),),
)


region_spec(
    "soft_jaccard_loss", "1 - soft Jaccard (IoU), optional smoothing", ref.soft_jaccard_loss,
    "jaccard", (),
    "score (I + smooth) / (I + FP + FN + smooth).",
    edge_cases=(EMPTY_ON_EMPTY, ALL_IGNORED, ONE_PIXEL_ONE_CLASS_PRESENT, ALL_BACKGROUND),
    variants=(Variant("smoothing", "jaccard", {
        "jaccard": "S = (I + smooth) / (U + smooth) (smp, toolbelt, optax)",
        "doubled": "S = (2I + smooth) / (2U + smooth), Jaccard with Dice's doubled terms"
                   " (monai's DiceLoss(jaccard=True)): 'jaccard' at smooth / 2"}),),
)
region_spec(
    "tversky_loss", "1 - Tversky index (alpha weighs false positives, beta false negatives)",
    ref.tversky_loss, "tversky",
    (Relation(
        name="tversky_half_is_dice",
        description="alpha = beta = 0.5 gives the Dice loss (with twice the smoothing)",
        lhs=target(label="tversky(0.5, 0.5)"),
        # (I + s) / (I + (FP + FN) / 2 + s) = (2I + 2s) / (P + G + 2s): Dice with smooth 2s.
        rhs=reference(ref.soft_dice_loss, transform=lambda c: c.without_params(
            "alpha", "beta").with_params(smooth=2 * c.params.get("smooth", 0.0)),
            label="dice(smooth=2s)"),
        adapt=lambda c: c.with_params(alpha=0.5, beta=0.5),
    ), Relation(
        name="tversky_one_is_jaccard",
        description="alpha = beta = 1 gives the Jaccard loss",
        lhs=target(label="tversky(1, 1)"),
        rhs=reference(ref.soft_jaccard_loss,
                      transform=lambda c: c.without_params("alpha", "beta"), label="jaccard"),
        adapt=lambda c: c.with_params(alpha=1.0, beta=1.0),
    )),
    "score (TP + smooth) / (TP + alpha FP + beta FN + smooth) (Salehi et al. 2017).",
    edge_cases=(EMPTY_ON_EMPTY, ONE_PIXEL_ONE_CLASS_PRESENT, ALL_BACKGROUND, Case(
        {"input": np.array([[[0.0], [0.0]]]), "target": np.array([[0]])},
        {"alpha": 0.5, "beta": 1.0},
        label="alpha 0.5, beta 1 on an even prediction: class 0 scores 0.5 / (0.5 + 1 * 0.5),"
              " 0.5 / (0.5 + 0.5 * 0.5) with the weights swapped")),
)


# --------------------------------------------------------------------------- Dice + CE


@st.composite
def _dice_ce_cases(draw: st.DrawFn) -> Case:
    shape = draw(_layout())
    n, c = shape[:2]
    x = draw(dom.array(shape, dom.logits(100.0)))
    ignore = draw(st.booleans())
    y = draw(_labels((n, *shape[2:]), c, ignore))
    return Case({"input": x, "target": y}, params(
        lambda_dice=draw(maybe(st.floats(0.0, 2.0))),
        lambda_ce=draw(maybe(st.floats(0.0, 2.0))),
        smooth=draw(maybe(choice(0.0, 1.0))),
    ) | ({"ignore_index": IGNORE} if ignore else {}))


def _dice_ce_nan(case: Case, reduction: str | None) -> bool:
    # Cross-entropy's mean over no pixel is 0 / 0 (torch's convention), and 0 * NaN is NaN:
    # with every pixel ignored the sum is NaN whatever lambda_ce is.
    ignore = case.params.get("ignore_index")
    return ignore is not None and bool(np.all(case.inputs["target"] == ignore))


def _ce_part(input, target, ignore_index=None, **_):
    return cls_ref.cross_entropy(input, target,
                                 ignore_index=-100 if ignore_index is None else ignore_index)


SPECS.declare(LossSpec(
    name="dice_ce_loss",
    empty=EMPTY_SCORES,
    family="segmentation",
    summary="lambda_dice * soft Dice + lambda_ce * cross-entropy (softmax, label maps)",
    signature=("dice_ce_loss(input, target, lambda_dice=1.0, lambda_ce=1.0, smooth=0.0,"
               " ignore_index=None)"),
    reference=ref.dice_ce_loss,
    cases=_dice_ce_cases,
    reductions=(),
    magnitude=lambda case, loss: np.abs(loss) + 1.0 + np.max(np.abs(case.inputs["input"])),
    nan_expected=_dice_ce_nan,
    properties=("output_dtype", "no_input_mutation", "nonnegative", "gradient_matches_reference",
                IGNORED_PIXELS_CHANGE_NOTHING,
                Relation(
                    name="lambda_ce_zero_is_dice",
                    description="lambda_ce = 0 leaves the Dice loss",
                    lhs=target(label="dice_ce(lambda_dice=1, lambda_ce=0)"),
                    rhs=reference(lambda input, target, smooth=0.0, ignore_index=None, **_:
                                  ref.soft_dice_loss(input, target, smooth=smooth,
                                                     ignore_index=ignore_index),
                                  label="dice"),
                    adapt=lambda c: c.with_params(lambda_dice=1.0, lambda_ce=0.0),
                ),
                Relation(
                    name="lambda_dice_zero_is_cross_entropy",
                    description="lambda_dice = 0 leaves the cross-entropy",
                    lhs=target(label="dice_ce(lambda_dice=0, lambda_ce=1)"),
                    rhs=reference(_ce_part, label="cross_entropy"),
                    adapt=lambda c: c.with_params(lambda_dice=0.0, lambda_ce=1.0),
                )),
    implementations=("implementations.segmentation:dice_ce_loss",),
    conventions=("Dice over all classes of the batch (standard form), plus cross-entropy's"
                 " mean over non-ignored pixels; every pixel ignored makes that mean 0/0 = NaN,"
                 " and the sum NaN even with lambda_ce = 0 (declared)."),
))


# --------------------------------------------------------------------------- Lovasz


@st.composite
def _lovasz_softmax_cases(draw: st.DrawFn) -> Case:
    shape = draw(_layout(max_classes=5))
    n, c = shape[:2]
    x = draw(dom.array(shape, dom.logits(100.0)))
    ignore = draw(st.booleans())
    y = draw(_labels((n, *shape[2:]), c, ignore))
    return Case({"input": x, "target": y}, params(
        classes=draw(maybe(_class_selections(c))),
        per_image=draw(maybe(st.booleans())),
    ) | ({"ignore_index": IGNORE} if ignore else {}))


def _one_minus_mean_iou(input: np.ndarray, target: np.ndarray, classes="present",
                        per_image: bool = False, ignore_index: int | None = None) -> np.ndarray:
    """Mean over the selected classes of 1 - IoU(argmax prediction, labels): what the
    Lovasz-softmax equals on one-hot probabilities."""
    pred = np.argmax(input, axis=1)
    images = [(pred[i:i + 1], target[i:i + 1]) for i in range(len(pred))] if per_image else [
        (pred, target)]
    losses = []
    for p, y in images:
        valid = y != ignore_index if ignore_index is not None else np.ones(y.shape, bool)
        if not valid.any():
            losses.append(0.0)
            continue
        iou = ref.jaccard_index(p, y, input.shape[1], ignore_index=ignore_index)
        if isinstance(classes, str):
            ids = [c for c in range(input.shape[1])
                   if classes == "all" or np.any((y == c) & valid)]
        else:
            ids = list(classes)
        losses.append(float(np.mean(1.0 - iou[ids])) if ids else 0.0)
    return np.asarray(np.mean(losses))


def _hard_softmax(case: Case) -> Case:
    return _hard_prediction(case.with_params(activation="softmax")).without_params("activation")


SPECS.declare(LossSpec(
    name="lovasz_softmax",
    empty=EMPTY_SCORES,
    family="segmentation",
    summary="Lovasz-softmax (Berman et al. 2018): the Lovasz extension of 1 - IoU per class",
    signature=("lovasz_softmax(input, target, classes='present', per_image=False,"
               " ignore_index=None)"),
    reference=ref.lovasz_softmax,
    cases=_lovasz_softmax_cases,
    reductions=(),
    magnitude=lambda case, loss: np.abs(loss) + 1.0,
    properties=("output_dtype", "no_input_mutation", "nonnegative", "gradient_matches_reference",
                IGNORED_PIXELS_CHANGE_NOTHING, PIXEL_PERMUTATION_INVARIANCE,
                PER_IMAGE_EQUALS_BATCH_FOR_ONE_IMAGE,
                Relation(
                    name="equals_one_minus_iou_on_one_hot_predictions",
                    description="on one-hot probabilities the loss is the mean of 1 - IoU",
                    lhs=target(label="lovasz_softmax(one-hot)"),
                    rhs=reference(_one_minus_mean_iou, label="mean(1 - IoU)"),
                    adapt=_hard_softmax,
                )),
    edge_cases=(
        Case({"input": np.array([[[0.5, -1.0], [2.0, 0.0]]]),
              "target": np.array([[IGNORE, IGNORE]])}, {"ignore_index": IGNORE},
             label="every pixel ignored (loss 0)"),
        Case({"input": np.array([[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]]),
              "target": np.array([[0, 1, 0]])}, label="tied errors"),
        Case({"input": np.array([[[3.0], [-1.0], [0.5]]]), "target": np.array([[2]])},
             {"classes": "all"}, label="one pixel, classes='all' (absent classes count)"),
        # Library defaults on their own (kornia's lovasz_softmax_loss has no parameters):
        Case({"input": np.zeros((1, 3, 1, 1)), "target": np.array([[[0]]])},
             label="a class absent, classes left out ('present': 2/3; every class: 4/9)"),
        Case({"input": np.array([[[[0.0, 0.0]], [[0.0, 0.0]]], [[[2.0, 2.0]], [[0.0, 0.0]]]]),
              "target": np.array([[[0, 0]], [[1, 0]]])}, {"classes": "all"},
             label="two images, per_image left out (the batch as one image)"),
    ),
    implementations=("implementations.segmentation:lovasz_softmax",),
    conventions=("softmax over C; per class c, errors |1[y=c] - p_c| sorted descending,"
                 " dotted with the Lovasz gradient of 1 - IoU (Alg. 1); mean over 'present'"
                 " classes (default), 'all' or a list; a mean over no class is 0; per_image"
                 " averages images (an all-ignored image counts as 0)."),
))


@st.composite
def _lovasz_hinge_cases(draw: st.DrawFn) -> Case:
    shape = (draw(st.integers(1, 3)),
             *draw(st.lists(st.integers(1, 5), min_size=1, max_size=2)))
    x = draw(dom.array(shape, dom.logits(100.0)))
    y = draw(dom.array(shape, Integers(0, 1), np.int64))
    drawn = params(per_image=draw(maybe(st.booleans())))
    if draw(st.booleans()):
        hidden = draw(dom.array(shape, dom.booleans(), np.bool_))
        y = np.where(hidden, IGNORE, y)
        drawn["ignore_index"] = IGNORE
    return Case({"input": x, "target": y}, drawn)


def _unit_errors(case: Case) -> Case:
    """Logits +-1 on correctly signed pixels (error 0) and 0 on the others (error 1)."""
    x, y = case.inputs["input"], case.inputs["target"]
    sign = np.where(y == 1, 1.0, -1.0)
    correct = (x > 0) == (y == 1)
    return case.with_inputs(input=np.where(correct, sign, 0.0))


def _one_minus_foreground_iou(input: np.ndarray, target: np.ndarray, per_image: bool = True,
                              ignore_index: int | None = None) -> np.ndarray:
    correct = (input != 0)  # on _unit_errors' inputs: +-1 where right, 0 where wrong
    pred = np.where(correct, target, 1 - target)
    pred = np.where(target == ignore_index, 0, pred) if ignore_index is not None else pred
    iou = ref.jaccard_index(pred, target, 2, ignore_index=ignore_index, per_image=per_image)
    return np.asarray(1.0 - iou[1])


SPECS.declare(LossSpec(
    name="lovasz_hinge",
    empty=(no_samples(), no_pixels(min_ndim=2)),
    family="segmentation",
    summary="binary Lovasz hinge (Berman et al. 2018) on logits with {0, 1} labels",
    signature="lovasz_hinge(input, target, per_image=True, ignore_index=None)",
    reference=ref.lovasz_hinge,
    cases=_lovasz_hinge_cases,
    reductions=(),
    magnitude=lambda case, loss: np.abs(loss) + 1.0 + np.max(np.abs(case.inputs["input"])),
    properties=("output_dtype", "no_input_mutation", "nonnegative", "gradient_matches_reference",
                IGNORED_PIXELS_CHANGE_NOTHING, PIXEL_PERMUTATION_INVARIANCE,
                PER_IMAGE_EQUALS_BATCH_FOR_ONE_IMAGE,
                Relation(
                    name="equals_one_minus_iou_on_unit_errors",
                    description=("with hinge errors in {0, 1} the loss is 1 - IoU of the"
                                 " foreground (averaged over images with per_image)"),
                    lhs=target(label="lovasz_hinge"),
                    rhs=reference(_one_minus_foreground_iou, label="1 - IoU(foreground)"),
                    adapt=_unit_errors,
                )),
    edge_cases=(
        Case({"input": np.array([[2.0, -1.0, 0.5]]), "target": np.array([[IGNORE] * 3])},
             {"ignore_index": IGNORE}, label="every pixel ignored (loss 0)"),
        Case({"input": np.array([[0.0, 0.0, 0.0, 0.0]]), "target": np.array([[1, 0, 1, 0]])},
             label="all errors tied"),
        Case({"input": np.array([[-3.0]]), "target": np.array([[0]])},
             label="one pixel, no foreground"),
        Case({"input": np.array([[0.5, -1.0], [2.0, 0.0]]), "target": np.array([[1, 0], [0, 0]])},
             label="two flat images of two pixels (strided, a flattened sort is not contiguous)"),
        Case({"input": np.array([[[1.5, -0.5], [0.25, -2.0]], [[0.0, 1.0], [-1.0, 3.0]]]),
              "target": np.array([[[1, 0], [1, 1]], [[0, 0], [1, 0]]])},
             label="two 2 x 2 images (a layout `.view(-1)` cannot flatten when strided)"),
        Case({"input": np.array([[[1.5, -0.5], [0.25, -2.0]], [[0.0, 1.0], [-1.0, 3.0]]]),
              "target": np.array([[[1, 0], [1, 1]], [[0, 0], [1, 0]]])}, {"per_image": True},
             label="two 2 x 2 images, per_image=True given (some libraries default to False)"),
    ),
    implementations=("implementations.segmentation:lovasz_hinge",),
    conventions=("errors 1 - x (2y - 1) sorted descending, relu, dotted with the Lovasz gradient"
                 " (Alg. 1); per_image (default) averages images, an all-ignored image counts"
                 " as 0."),
))


# --------------------------------------------------------------------------- hard IoU metric


@st.composite
def _iou_cases(draw: st.DrawFn) -> Case:
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    spatial = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=2)))
    pred = draw(dom.array((n, *spatial), Integers(0, c - 1), np.int64))
    ignore = draw(st.booleans())
    y = draw(_labels((n, *spatial), c, ignore))
    drawn = params(per_image=draw(maybe(st.booleans())))
    if ignore:
        drawn["ignore_index"] = IGNORE
    return Case({"input": pred, "target": y}, {"num_classes": c, **drawn})


def _swap_labels(case: Case) -> Case:
    return case.with_inputs(input=case.inputs["target"], target=case.inputs["input"])


SPECS.declare(LossSpec(
    name="jaccard_index",
    empty=(no_samples(), no_pixels(min_ndim=2)),
    family="segmentation",
    summary="hard per-class IoU of label maps (what the Lovasz losses extend)",
    signature=("jaccard_index(input, target, num_classes, ignore_index=None, per_image=False,"
               " empty=1.0)"),
    reference=ref.jaccard_index,
    cases=_iou_cases,
    reductions=(),
    magnitude=lambda case, iou: np.abs(iou) + 1.0,
    dtypes=("float64",),
    differentiable=(),
    properties=("no_input_mutation",
                Relation(
                    name="symmetric_without_ignored_pixels",
                    description="IoU(prediction, labels) == IoU(labels, prediction)",
                    lhs=target(_swap_labels, label="IoU(y, pred)"),
                    rhs=target(label="IoU(pred, y)"),
                    adapt=lambda c: c.without_params("ignore_index").with_inputs(
                        target=np.where(c.inputs["target"] == IGNORE, 0, c.inputs["target"])),
                )),
    edge_cases=(Case({"input": np.array([[0, 0, 1]]), "target": np.array([[0, 2, 2]])},
                     {"num_classes": 4}, label="a class neither predicted nor present (empty)"),),
    implementations=("implementations.segmentation:jaccard_index",),
    conventions=("|pred = c and y = c| / |pred = c or y = c| per class, `empty` when neither;"
                 " ignored target pixels leave both; per_image averages images; float64."),
))
