"""Embedding losses: the cosine embedding loss, the triplet margin loss and the triplet loss of a
given distance.

All have torch.nn.functional's calls. An embedding lies along the last axis: (N, D) rows, or one
(D,) vector whose loss is 0-d; each row's loss reads that row of every input and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from conformance import domains as dom
from conformance.case import Case
from conformance.elements import Integers, Uniform, Values, mixture
from conformance.empty import no_samples
from conformance.invalid import batch_of_one
from conformance.properties.relation import Relation, reference, target
from conformance.spec import Family, LossSpec
from conformance.specs.common import GENERIC, choice, maybe, number, overflow_only, params
from conformance.variants import Variant
from reference import embedding as ref

# The specs this family declares, read by conformance.catalog.
SPECS = Family()

# A case's rows: a batch of N (D,) vectors is (N, D), one unbatched vector (D,).
EMPTY_ROWS = (no_samples(min_ndim=2),)
SIGNS = Values((1.0, -1.0))
# Offsets of a second vector from the first: on it, a half-integer step away, or anywhere near.
OFFSETS = Uniform(-3.0, 3.0) | Values((0.0, 0.5, -0.5, 1.0, -1.0, 2.0))
# Coordinates: everyday values half the time, else the logits' extremes (1e-3 to 1e4, float32's
# cliffs). A row holds a few of them, and one extreme coordinate puts a float16 squared norm
# out of range: everyday rows keep float16 in the draws.
COORDINATES = mixture(dom.ordinary(-8.0, 8.0), dom.logits())


@st.composite
def _rows_shape(draw: st.DrawFn) -> tuple[int, ...]:
    """(N, D) for N in 1..5, or one (D,) vector."""
    dim = draw(st.integers(1, 6))
    batch = draw(choice(2, 0, 1, 3, 5))  # 0: one unbatched (D,) vector
    return (batch, dim) if batch else (dim,)


def _each_row(case: Case, name: str) -> tuple[int, ...]:
    """`separable`: a row's loss reads its own D coordinates (the last axis)."""
    return (-1,)


def _rows(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(-1, np.shape(x)[-1])


@st.composite
def _beside(draw: st.DrawFn, first: np.ndarray) -> np.ndarray:
    """A second array of rows for `first`: each row drawn on its own, the first's row plus an
    offset, or the first's row itself (identical vectors)."""
    own = draw(dom.array(first.shape, COORDINATES))
    offset = draw(dom.array(first.shape, OFFSETS))
    kind = draw(dom.array(first.shape[:-1], Integers(0, 2)))[..., None]
    return np.where(kind == 0, own, np.where(kind == 1, first + offset, first))


def _no_loss(first: np.ndarray, *_: object, reduction: str = "mean", **__: object
             ) -> np.ndarray:
    """0 for every row ((N,), 0-d for one (D,) vector), or 0 once reduced."""
    return np.zeros(np.shape(first)[:-1] if reduction == "none" else ())


# --------------------------------------------------------------------------- cosine


@st.composite
def _cosine_cases(draw: st.DrawFn) -> Case:
    """Pairs of vectors: unrelated, identical or offset (`_beside`), parallel and antiparallel
    (a multiple of the first), and zero vectors on either side, each labelled +1 or -1."""
    shape = draw(_rows_shape())
    x1 = draw(dom.array(shape, COORDINATES))
    x2 = draw(_beside(x1))
    factor = draw(dom.array(shape[:-1], Values((2.0, -1.0, 0.5, -3.0))))[..., None]
    # 0: as `_beside` drew it, 1: a multiple of x1; zero vectors in a case of their own (one
    # is outside float16's domain, and so is every case holding one).
    kind = draw(dom.array(shape[:-1], Integers(0, 1)))[..., None]
    x2 = np.where(kind == 1, factor * x1, x2)
    if draw(choice(False, True, False)):
        zero = draw(dom.array(shape[:-1], Integers(0, 2)))[..., None]
        x1, x2 = np.where(zero == 1, 0.0, x1), np.where(zero == 2, 0.0, x2)
    y = draw(dom.array(shape[:-1], SIGNS))
    margin = draw(maybe(number((0.0, 0.5, -0.5, 1.0, -1.0), -1.0, 1.0)))
    return Case({"input1": x1, "input2": x2, "target": y}, params(margin=margin))


@dataclass(frozen=True)
class _Cosine:
    """A case's rows: squared norms with torch's eps, |x1| |x2|-scaled products, the cosine."""

    squares1: np.ndarray  # |x1|^2 + eps, per row
    squares2: np.ndarray
    spread: np.ndarray  # sum_i |x1_i x2_i| / n1 n2 <= 1: the scale of the dot's rounding
    cos: np.ndarray
    dissimilar: np.ndarray  # y = -1
    margin: float


def _cosine_parts(case: Case) -> _Cosine:
    x1, x2 = _rows(case.inputs["input1"]), _rows(case.inputs["input2"])
    squares1 = np.sum(x1 * x1, axis=-1) + ref.COSINE_EPS
    squares2 = np.sum(x2 * x2, axis=-1) + ref.COSINE_EPS
    norms = np.sqrt(squares1) * np.sqrt(squares2)
    return _Cosine(squares1, squares2, np.sum(np.abs(x1 * x2), axis=-1) / norms,
                   np.sum(x1 * x2, axis=-1) / norms,
                   np.asarray(case.inputs["target"]).reshape(-1) == -1,
                   float(case.params.get("margin", 0.0)))


def _cosine_magnitude(case: Case, loss: np.ndarray) -> np.ndarray:
    """The cosine is a ratio of a dot product and two norms, each good to a few ulps of its
    own size relative to n1 n2: the dot's terms sum_i |x1_i x2_i| / n1 n2 (<= 1, cancelling
    for nearly orthogonal vectors), 2 |cos| for the norms; 1 for the subtraction from 1 (a
    cosine near 1 keeps only its absolute accuracy), |margin| for the hinge's."""
    c = _cosine_parts(case)
    scale = 1.0 + c.spread + 2.0 * np.abs(c.cos) + np.where(c.dissimilar, abs(c.margin), 0.0)
    return np.abs(loss) + scale.reshape(np.shape(loss))


def _cosine_intermediates(case: Case) -> np.ndarray:
    """|x|^2 + eps of each input, as they are: torch's eps (1e-12) is below float16's smallest
    normal, so there a zero vector's norm is 0 and its cosine 0/0, and a norm under 7.8e-3 is a
    subnormal that keeps a digit or two; and their overflow (doubled, for the backward's
    cotangent): |x| above 181 in float16."""
    c = _cosine_parts(case)
    return np.concatenate([c.squares1, c.squares2,
                           overflow_only(np.concatenate([c.squares1, c.squares2]))])


def _norm_product_leaves_the_dtype(case: Case, dtype: str) -> bool:
    """Some row's (|x1|^2 + eps)(|x2|^2 + eps) is past `dtype`'s largest number or below its
    smallest normal, though each factor is inside: in float16 from |x1| |x2| = 256 (norms of
    16 each), and below 7.8e-3. torch multiplies the two squared norms before the root."""
    info = torch.finfo(getattr(torch, dtype))
    c = _cosine_parts(case)
    product = c.squares1 * c.squares2
    return bool(np.any((product > info.max) | (product < info.tiny)))


def _cosine_condition(case: Case) -> float:
    """The gradient of a row for x1, x2 / (n1 n2) - cos x1 / n1^2, is a difference of terms
    of size up to 1 / n1 that cancel for nearly parallel vectors (to 0 for parallel ones): its
    error stays a few eps of 1 / n1 however small it is (1 / n2 for x2's, x1 / (n1 n2) -
    cos x2 / n2^2). Relative to the input's largest gradient coordinate over the rows with a
    gradient (a similar pair, or a dissimilar one past the margin), that is this many eps;
    the larger of the two inputs' figures (the gradient property asks once per case)."""
    c = _cosine_parts(case)
    active = ~c.dissimilar | (c.cos >= c.margin)
    if not active.any():
        return 1.0
    x1, x2 = _rows(case.inputs["input1"])[active], _rows(case.inputs["input2"])[active]
    n1, n2 = np.sqrt(c.squares1[active])[:, None], np.sqrt(c.squares2[active])[:, None]
    cos = c.cos[active][:, None]
    own = ((x2 / (n1 * n2) - cos * x1 / n1**2, n1), (x1 / (n1 * n2) - cos * x2 / n2**2, n2))
    return float(max(4.0 * np.max(1.0 / n) / (1.0 + np.max(np.abs(g))) for g, n in own))


def _cosine_off_the_kink(case: Case) -> Case:
    """Moves x2 of a dissimilar pair along x1 where cos - margin is nonzero but closer to 0
    than bfloat16 resolves a cosine (products, squares and roots each round, up to 1e-2 in all):
    the target would stand on the other side of the hinge than the reference. Exact kinks
    (orthogonal vectors at the default margin 0) stay: the subgradient interval applies."""
    x1, x2 = _rows(case.inputs["input1"]), _rows(case.inputs["input2"]).copy()
    c = _cosine_parts(case)
    band = 3e-2 * max(1.0, abs(c.margin))
    z = c.cos - c.margin
    near = c.dissimilar & (z != 0) & (np.abs(z) < band)
    if not near.any():
        return case
    for r in np.flatnonzero(near):
        n1 = np.linalg.norm(x1[r])
        if n1 == 0:
            continue  # a zero x1 has cosine 0 whatever x2 is
        along = x1[r] / n1 * max(float(np.linalg.norm(x2[r])), 1e-3)
        for t in (0.1, -0.1, 0.2, -0.2, 0.4, -0.4, 0.8, -0.8, 1.6, -1.6):
            moved = x2[r] + t * along
            cos = float(ref.cosine_similarity(x1[r], moved))
            if abs(cos - c.margin) >= 2 * band:
                x2[r] = moved
                break
    return case.with_inputs(input2=x2.reshape(case.inputs["input2"].shape))


def _swap_inputs(case: Case) -> Case:
    return case.with_inputs(input1=case.inputs["input2"], input2=case.inputs["input1"])


def _rescaled(case: Case) -> Case:
    """x1 times 8 and x2 over 4: powers of two, exact wherever the dtype has the range."""
    return case.with_inputs(input1=8.0 * case.inputs["input1"],
                            input2=0.25 * case.inputs["input2"])


def _similar_with_x2_negated(case: Case) -> Case:
    y = case.inputs["target"]
    return case.with_inputs(input2=-case.inputs["input2"], target=np.ones_like(y))


def _dissimilar_at_margin_minus_one(case: Case) -> Case:
    y = case.inputs["target"]
    return case.with_inputs(target=-np.ones_like(y)).with_params(margin=-1.0)


COSINE_EDGE_CASES = (
    Case({"input1": np.array([[1.0, 2.0, 2.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0],
                              [3.0, 0.0, 4.0], [0.0, 0.0, 0.0]]),
          "input2": np.array([[2.0, 4.0, 4.0], [0.0, 1.0, 0.0], [1.0, 2.0, 2.0],
                              [-3.0, 0.0, -4.0], [0.0, 0.0, 0.0]]),
          "target": np.array([1.0, -1.0, 1.0, -1.0, -1.0])},
         label="parallel (loss ~1e-13), orthogonal at margin 0 (the kink, 0), a zero vector"
               " (cosine 0: loss 1), antiparallel (0), two zero vectors (0)"),
    Case({"input1": np.array([[1e-6, 0.0], [1e-3, 1e-3]]),
          "input2": np.array([[1e-6, 0.0], [1e-3, 1e-3]]),
          "target": np.array([1.0, 1.0])},
         label="identical vectors of norms 1e-6 and 1.4e-3: torch's eps in the squared norms"
               " gives loss 0.5 and 5e-7 (0 and 0 with norms clamped at 1e-8)"),
    Case({"input1": np.full((2, 4), 16.0), "input2": np.full((2, 4), 16.0),
          "target": np.array([1.0, -1.0])}, {"margin": 0.5},
         label="identical vectors of norm 32: loss 0 (similar) and 0.5 (dissimilar at margin"
               " 0.5); |x1|^2 |x2|^2 = 1e6 is past float16's range"),
    Case({"input1": np.array([1.0, 2.0, -1.0]), "input2": np.array([2.0, 1.0, 0.5]),
          "target": np.array(-1.0)}, {"margin": 0.2},
         label="one unbatched pair, dissimilar (cos 0.62, loss 0.42)"),
    Case({"input1": np.array([[0.0078125, 0.0]]), "input2": np.array([[0.015625, 0.0]]),
          "target": np.array([1.0])},
         label="parallel vectors of norms 7.8e-3 and 1.6e-2 (loss 1e-8); |x1|^2 |x2|^2 ="
               " 1.5e-8 is below float16's smallest normal"),
)


SPECS.declare(LossSpec(
    name="cosine_embedding_loss",
    family="embedding",
    summary="1 - cos(x1, x2) for similar pairs (y = 1), max(0, cos - margin) for dissimilar",
    signature="cosine_embedding_loss(input1, input2, target, margin=0, reduction='mean')",
    reference=ref.cosine_embedding_loss,
    cases=_cosine_cases,
    magnitude=_cosine_magnitude,
    intermediates=_cosine_intermediates,
    differentiable=("input1", "input2"),
    separable=_each_row,
    stacks=True,
    gradient_domain=_cosine_off_the_kink,
    gradient_condition=_cosine_condition,
    empty=EMPTY_ROWS,
    invalid=(batch_of_one("target"),),
    regimes={"norm_product_leaves_the_dtype": _norm_product_leaves_the_dtype},
    properties=(
        *GENERIC,
        Relation(
            name="symmetric_in_the_two_inputs",
            description="loss(x1, x2, y) == loss(x2, x1, y)",
            lhs=target(_swap_inputs, label="loss(x2, x1, y)"),
            rhs=target(label="loss(x1, x2, y)"),
        ),
        Relation(
            name="positive_scaling_changes_nothing",
            description=("loss(8 x1, x2 / 4, y) == loss(x1, x2, y): the cosine does not see"
                         " lengths, up to torch's eps (the spec's own values bound the gap)"),
            lhs=target(_rescaled, label="loss(8 x1, x2 / 4, y)"),
            rhs=target(label="loss(x1, x2, y)"),
            up_to_the_spec=True,
        ),
        Relation(
            name="negating_x2_swaps_the_branches",
            description=("loss(x1, -x2, 1) == loss(x1, x2, -1, margin=-1): both are"
                         " 1 + cos(x1, x2)"),
            lhs=target(_similar_with_x2_negated, label="loss(x1, -x2, 1)"),
            rhs=target(_dissimilar_at_margin_minus_one, label="loss(x1, x2, -1, margin=-1)"),
        ),
    ),
    edge_cases=COSINE_EDGE_CASES,
    implementations=("torch.nn.functional:cosine_embedding_loss",),
    variants=(Variant("cosine_eps", "added", {
        "added": "x1 . x2 / sqrt((|x1|^2 + 1e-12) (|x2|^2 + 1e-12)) (torch's aten, 1e-12 a"
                 " float32 constant)",
        "clamped": "x1 . x2 / (max(|x1|, 1e-8) max(|x2|, 1e-8)) (F.cosine_similarity: a loss"
                   " built on it); differs below norms of about 1e-5"}),),
    conventions=("cos = x1 . x2 / sqrt((|x1|^2 + eps) (|x2|^2 + eps)) with torch's eps = 1e-12"
                 " (a float32 constant, 9.999999960041972e-13) added to each squared norm, so"
                 " a zero vector has cosine 0 (loss 1 when similar, max(0, -margin) when"
                 " dissimilar); l = 1 - cos for y = 1, max(0, cos - margin) for y = -1; y is"
                 " +1 or -1; (N, D) inputs with y (N,), or (D,) with a 0-d y; 'none' is (N,)"
                 " or 0-d; mean = sum / N. At the hinge's kink any derivative between the"
                 " one-sided ones. In float16 eps is 0 and a norm under 7.8e-3 subnormal:"
                 " such a case is outside float16's domain."),
))


# --------------------------------------------------------------------------- triplets


@dataclass(frozen=True)
class Distance:
    """A distance_function a case passes to triplet_margin_with_distance_loss: one formula in
    torch (for the target) and in NumPy (for the reference), chosen by what it is called on.
    A case holds it as a parameter: printed as the expression that names it, so a reproducer
    rebuilds it, and stored in a snapshot by its import path.

    `p` and `eps`: the norm ||x - y + eps||_p it is, or None where it is no p-norm (then no
    backward of a norm to declare)."""

    attr: str  # its name in this module
    on_tensors: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    on_arrays: Callable[[np.ndarray, np.ndarray], np.ndarray]
    p: float | None = None
    eps: float = 0.0

    def __call__(self, x1: torch.Tensor | np.ndarray, x2: torch.Tensor | np.ndarray
                 ) -> torch.Tensor | np.ndarray:
        if isinstance(x1, torch.Tensor):
            return self.on_tensors(x1, x2)
        return self.on_arrays(x1, x2)

    @property
    def import_path(self) -> str:
        return f"{__name__}:{self.attr}"

    def __repr__(self) -> str:
        return f"{__name__}.{self.attr}"  # `import conformance` loads it (the catalog's)


def _torch_squared_distance(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    return (x1 - x2).pow(2).sum(-1)


def _torch_manhattan_distance(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    return torch.pairwise_distance(x1, x2, p=1.0, eps=0.0)


def _manhattan_distance(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    return ref.pairwise_distance(x1, x2, p=1.0, eps=0.0)


# torch's own default passed explicitly (nn.PairwiseDistance() in torch's documentation), the
# squared Euclidean distance (FaceNet's), and the L1 distance without eps (kinks at ties).
PAIRWISE_DISTANCE = Distance("PAIRWISE_DISTANCE", torch.pairwise_distance, ref.pairwise_distance,
                             p=2.0, eps=1e-6)
SQUARED_DISTANCE = Distance("SQUARED_DISTANCE", _torch_squared_distance, ref.squared_distance)
MANHATTAN_DISTANCE = Distance("MANHATTAN_DISTANCE", _torch_manhattan_distance,
                              _manhattan_distance, p=1.0)
DISTANCES = (PAIRWISE_DISTANCE, SQUARED_DISTANCE, MANHATTAN_DISTANCE)


def _case_norm(case: Case) -> tuple[float | None, float]:
    """The (p, eps) of the case's distance: its own parameters, the named distance's, or the
    default pairwise distance's (2, 1e-6)."""
    fn = case.params.get("distance_function")
    if isinstance(fn, Distance):
        return fn.p, fn.eps
    return case.params.get("p", 2.0), case.params.get("eps", 1e-6)


def _case_distance(case: Case) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    fn = case.params.get("distance_function")
    if fn is not None:
        return fn
    p, eps = _case_norm(case)
    return lambda x1, x2: ref.pairwise_distance(x1, x2, p, eps)


@dataclass(frozen=True)
class _Triplet:
    """A case's rows and distances d(a, p), d(a, n), d(p, n) (the last where swap)."""

    anchor: np.ndarray
    positive: np.ndarray
    negative: np.ndarray
    d_positive: np.ndarray
    d_anchor_negative: np.ndarray
    d_swap: np.ndarray | None
    margin: float

    @property
    def d_negative(self) -> np.ndarray:
        if self.d_swap is None:
            return self.d_anchor_negative
        return np.minimum(self.d_anchor_negative, self.d_swap)

    @property
    def z(self) -> np.ndarray:
        return self.margin + self.d_positive - self.d_negative

    def distances(self) -> list[np.ndarray]:
        out = [self.d_positive, self.d_anchor_negative]
        return out if self.d_swap is None else [*out, self.d_swap]


def _triplet_parts(case: Case, positive: np.ndarray | None = None,
                   negative: np.ndarray | None = None) -> _Triplet:
    """The case's triplet, with its positive or negative rows replaced where given."""
    a = _rows(case.inputs["anchor"])
    pos = _rows(case.inputs["positive"]) if positive is None else positive
    neg = _rows(case.inputs["negative"]) if negative is None else negative
    d = _case_distance(case)
    swap = bool(case.params.get("swap", False))
    return _Triplet(a, pos, neg, np.asarray(d(a, pos), float), np.asarray(d(a, neg), float),
                    np.asarray(d(pos, neg), float) if swap else None,
                    float(case.params.get("margin", 1.0)))


def _triplet_magnitude(case: Case, loss: np.ndarray) -> np.ndarray:
    """margin + d(a, p) - d(a, n) cancels: each distance is good to a few ulps of itself (the
    difference rounds relative to itself, then a few powers, a sum and a root), so their
    sizes and the margin's are the scale; with swap, d(p, n) too."""
    t = _triplet_parts(case)
    return np.abs(loss) + (t.margin + sum(t.distances())).reshape(np.shape(loss))


def _triplet_intermediates(case: Case) -> np.ndarray:
    """Each distance (and its doubling by the cotangent); for a p-norm ||v||_p, v = x - y +
    eps, the sum of |v_i|^p it takes the root of, and d^(p - 1), which its backward
    sign(v_i) |v_i|^(p - 1) / d^(p - 1) divides by (p = 2: v / d), as it is: below a dtype's
    smallest normal it keeps a digit or two (identical float16 vectors are sqrt(D) 1e-6
    apart), past its largest it overflows (float16 at p = 3 and d = 256)."""
    t = _triplet_parts(case)
    parts = [overflow_only(np.concatenate(t.distances()))]
    p, eps = _case_norm(case)
    if p is not None:
        pairs = [(t.anchor, t.positive), (t.anchor, t.negative)]
        if t.d_swap is not None:
            pairs.append((t.positive, t.negative))
        for (x, y), d in zip(pairs, t.distances(), strict=True):
            with np.errstate(over="ignore"):
                parts.append(overflow_only(np.sum(np.abs(x - y + eps) ** p, axis=-1)))
                if p != 1:
                    parts.append(d ** (p - 1))
    return np.concatenate(parts)


# Where a triplet sits nearer a kink of its loss than the finite differences (steps of 1e-3 to
# 1e-8 of max(1, |x|)) or the dtype can tell which side it is on, the gradient check moves it.
# Kinks of the hinge (z = margin + d(a, p) - d_neg) and, with swap, of the min of d(a, n) and
# d(p, n): each distance carries a few roundings of bfloat16 (the difference, the powers, the
# root), up to 1e-2 of it, hence four times the band of `near_a_kink`. Kinks of a p-norm
# ||v||_p, v = x - y + eps: where v = 0, and for p < 2 where one coordinate is 0 (a corner at
# p = 1, below 2 a derivative that turns within |v_i|); eps puts identical vectors eps from one,
# inside the steps, so their gradient is checked apart from each other (their value as drawn).
KINK_BAND = 4e-2
NORM_BAND = 1e-2


def _pairs(t: _Triplet) -> list[tuple[str, str]]:
    """The pairs the distances are taken of, as d(x, y): the second is the one moved."""
    pairs = [("anchor", "positive"), ("anchor", "negative")]
    return pairs if t.d_swap is None else [*pairs, ("positive", "negative")]


def _norm_kinks(x: np.ndarray, y: np.ndarray, degree: float, eps: float,
                widen: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The coordinates of v = x - y + eps (rows, D) near a kink of ||v||_p but not on it, and
    the band: a nonzero |v_i| under it (p < 2, or one coordinate), or a row whose every |v_i|
    is under it and not all 0 (the cone's tip)."""
    v = x - y + eps
    band = widen * NORM_BAND * np.maximum(1.0, np.maximum(np.abs(x), np.abs(y)))
    small = np.abs(v) < band
    near = np.all(small, axis=-1, keepdims=True) & np.any(v != 0, axis=-1, keepdims=True)
    if degree < 2 or v.shape[-1] == 1:
        near = near | (small & (v != 0))
    return near, band


def _near_kinks(t: _Triplet, norm: tuple[float | None, float], widen: float = 1.0
                ) -> np.ndarray:
    """Rows near a kink (not on one): of the hinge, of the swap's min where the hinge may be
    active, or of a p-norm (`_norm_kinks`)."""
    band = widen * KINK_BAND * np.maximum.reduce([np.ones_like(t.z), np.full_like(t.z, t.margin),
                                                  t.d_positive, t.d_negative])
    near = (t.z != 0) & (np.abs(t.z) < band)
    if t.d_swap is not None:
        w = t.d_anchor_negative - t.d_swap
        tie_band = widen * KINK_BAND * np.maximum.reduce(
            [np.ones_like(w), t.d_anchor_negative, t.d_swap])
        near |= (w != 0) & (np.abs(w) < tie_band) & (t.z > -band)
    degree, eps = norm
    if degree is not None:
        rows = {"anchor": t.anchor, "positive": t.positive, "negative": t.negative}
        for first, second in _pairs(t):
            near |= np.any(_norm_kinks(rows[first], rows[second], degree, eps, widen)[0],
                           axis=-1)
    return near


def _off_the_norm_kinks(case: Case) -> Case:
    """Moves a positive or a negative coordinate near a kink of its distance's norm 3 bands
    away from it, on the side it is on: v' = v + 3 band sign(v). Moving one vector moves
    another pair's difference too, hence a few passes."""
    degree, eps = _case_norm(case)
    if degree is None:
        return case
    rows = {k: _rows(v).copy() for k, v in case.inputs.items()}
    pairs = _pairs(_triplet_parts(case))
    for _ in range(3):
        moved = False
        for first, second in pairs:
            near, band = _norm_kinks(rows[first], rows[second], degree, eps)
            if near.any():
                v = rows[first] - rows[second] + eps
                rows[second] = rows[second] - np.where(near, 3 * band, 0.0) * np.where(
                    v >= 0, 1.0, -1.0)
                moved = True
        if not moved:
            break
    shape = case.inputs["anchor"].shape
    return case.with_inputs(positive=rows["positive"].reshape(shape),
                            negative=rows["negative"].reshape(shape))


# Factors that move a row's positive and negative towards or away from its anchor, smallest
# moves first.
SCALES = (1.0, 1.05, 0.95, 1.1, 0.9, 1.2, 0.8, 1.4, 0.7, 2.0, 0.5)


def _triplet_off_the_kinks(case: Case) -> Case:
    """The gradient's domain: coordinates off the norms' kinks (`_off_the_norm_kinks`), then
    each row still near a kink (`_near_kinks`) moved along the lines from its anchor, p' = a +
    s (p - a) and n' = a + u (n - a), by the first factors that leave it twice the band away.
    Other rows, and exact kinks (a hinge met exactly, identical vectors at eps = 0, ties
    under swap), stay as they are."""
    case = _off_the_norm_kinks(case)
    norm = _case_norm(case)
    t = _triplet_parts(case)
    near = _near_kinks(t, norm)
    if not near.any():
        return case
    pos, neg = t.positive.copy(), t.negative.copy()
    for r in np.flatnonzero(near):
        a = t.anchor[r:r + 1]
        for s in SCALES:
            moved = [(a + s * (t.positive[r:r + 1] - a), a + u * (t.negative[r:r + 1] - a))
                     for u in SCALES if (s, u) != (1.0, 1.0)]
            found = next((m for m in moved if not _near_kinks(
                _triplet_parts(_one_row(case, r), *m), norm, widen=2.0).any()), None)
            if found is not None:
                pos[r], neg[r] = found[0][0], found[1][0]
                break
    shape = case.inputs["anchor"].shape
    return case.with_inputs(positive=pos.reshape(shape), negative=neg.reshape(shape))


def _one_row(case: Case, r: int) -> Case:
    return case.with_inputs(**{k: _rows(v)[r:r + 1] for k, v in case.inputs.items()})


def _negatives_far_away(case: Case) -> Case:
    """Each row's negative moved to max(a, p) + c in every coordinate, c = 2 (D max|a - p| +
    margin + 1): every distance used here (p-norms with p >= 1, with or without eps, and the
    squared distance) then puts it at least c - eps from both the anchor and the positive, far
    past d(a, p) + margin: the loss is 0, with or without swap."""
    a, p = case.inputs["anchor"], case.inputs["positive"]
    margin = float(case.params.get("margin", 1.0))
    gap = np.max(np.abs(a - p), axis=-1, keepdims=True) * a.shape[-1]
    return case.with_inputs(negative=np.maximum(a, p) + 2.0 * (gap + margin + 1.0))


def _swap_off(case: Case) -> Case:
    return case.with_params(swap=False)


def _swap_on(case: Case) -> Case:
    return case.with_params(swap=True)


ZERO_WHEN_THE_MARGIN_IS_MET = Relation(
    name="zero_when_the_margin_is_met",
    description="loss == 0 when every negative is farther than d(a, p) + margin from the anchor"
                " and the positive",
    lhs=target(label="loss(a, p, n far away)"),
    rhs=reference(_no_loss, label="0"),
    adapt=_negatives_far_away,
)

SWAP_NEVER_LOWERS_THE_LOSS = Relation(
    name="swap_never_lowers_the_loss",
    description="loss(swap=False) <= loss(swap=True) elementwise: the swap takes the smaller of"
                " d(a, n) and d(p, n)",
    lhs=target(_swap_off, label="loss(swap=False)"),
    rhs=target(_swap_on, label="loss(swap=True)"),
    op="le",
    reductions=("none",),
)


@st.composite
def _triplet_inputs(draw: st.DrawFn) -> dict[str, np.ndarray]:
    """Anchors, and positives and negatives beside them (`_beside`): unrelated, offset, or the
    anchor itself (identical vectors, a distance of D^(1/p) eps)."""
    anchor = draw(dom.array(draw(_rows_shape()), COORDINATES))
    return {"anchor": anchor, "positive": draw(_beside(anchor)),
            "negative": draw(_beside(anchor))}


MARGINS = number((1.0, 0.5, 2.0, 0.1), 1e-2, 10.0)


@st.composite
def _triplet_cases(draw: st.DrawFn) -> Case:
    inputs = draw(_triplet_inputs())
    return Case(inputs, params(
        margin=draw(maybe(MARGINS)), p=draw(maybe(number((2.0, 1.0, 3.0, 1.5), 1.0, 4.0))),
        eps=draw(maybe(choice(1e-6, 0.0, 1e-3))), swap=draw(maybe(st.booleans()))))


def _drop_distance_parameters(case: Case) -> Case:
    return case.without_params("p", "eps")


TRIPLET_EDGE_CASES = (
    Case({"anchor": np.array([[0.0, 0.0], [1.0, 2.0], [0.0, 0.0]]),
          "positive": np.array([[0.0, 0.0], [1.0, 2.0], [3.0, 4.0]]),
          "negative": np.array([[3.0, 4.0], [1.0, 2.5], [0.0, 0.0]])},
         label="identical anchors and positives, 1.4e-6 apart by eps (losses 0 and 0.5), and"
               " a negative on its anchor (6 - 1.4e-6)"),
    Case({"anchor": np.array([[0.0], [0.0], [2.0]]), "positive": np.array([[0.0], [1.0], [2.0]]),
          "negative": np.array([[1.0], [0.5], [4.5]])}, {"eps": 0.0},
         label="eps = 0: a hinge met exactly (1 + 0 - 1, the kink), a loss of 1.5, and"
               " identical vectors 0 apart (0)"),
    Case({"anchor": np.array([[0.0, 0.0], [1.0, -1.0]]),
          "positive": np.array([[2.0, 0.0], [1.0, 1.0]]),
          "negative": np.array([[2.5, 0.0], [1.0, 3.0]])}, {"swap": True, "margin": 2.0},
         label="swap: the positive is nearer the negative than the anchor is (losses 3.5 and"
               " 2)"),
    Case({"anchor": np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]),
          "positive": np.array([[1.5, 2.0, 2.0], [1.0, 1.0, 1.0]]),
          "negative": np.array([[0.0, 0.0, 0.0], [1.0, -1.0, 0.5]])}, {"p": 1.5, "margin": 0.5},
         label="a fractional norm degree, p = 1.5 (losses 0 and 0.81)"),
    Case({"anchor": np.array([1.0, 2.0]), "positive": np.array([1.0, 3.0]),
          "negative": np.array([2.0, 2.0])}, {"p": 1.0},
         label="one unbatched (D,) triplet, p = 1 (loss 1)"),
)


def triplet_spec(*, relation: Relation, **fields: Any) -> LossSpec:
    """A triplet loss max(margin + d(a, p) - d(a, n), 0) of (N, D) rows: the family's error
    scale, intermediates, gradient moves, empty and invalid forms and invariants (zero once
    the margin is met; swap never lowers the loss), plus the spec's own `relation`; `fields`
    are the spec's other LossSpec fields (name, signature, reference, cases, ...)."""
    return LossSpec(
        family="embedding",
        magnitude=_triplet_magnitude,
        intermediates=_triplet_intermediates,
        differentiable=("anchor", "positive", "negative"),
        separable=_each_row,
        stacks=True,
        gradient_domain=_triplet_off_the_kinks,
        empty=EMPTY_ROWS,
        invalid=(batch_of_one("negative", min_ndim=2),),
        properties=(*GENERIC, ZERO_WHEN_THE_MARGIN_IS_MET, SWAP_NEVER_LOWERS_THE_LOSS,
                    relation),
        **fields,
    )


SPECS.declare(triplet_spec(
    name="triplet_margin_loss",
    summary="max(margin + d(a, p) - d(a, n), 0) with d(x, y) = ||x - y + eps||_p",
    signature=("triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-06,"
               " swap=False, reduction='mean')"),
    reference=ref.triplet_margin_loss,
    cases=_triplet_cases,
    relation=Relation(
        name="p2_is_the_default_distance_loss",
        description=("triplet_margin_loss(p=2, eps=1e-6) =="
                     " triplet_margin_with_distance_loss with its default distance"),
        lhs=target(label="triplet_margin_loss(p=2, eps=1e-6)"),
        rhs=reference(ref.triplet_margin_with_distance_loss,
                      transform=_drop_distance_parameters,
                      label="triplet_margin_with_distance_loss(distance_function=None)"),
        adapt=lambda c: c.with_params(p=2.0, eps=1e-6),
    ),
    edge_cases=TRIPLET_EDGE_CASES,
    implementations=("torch.nn.functional:triplet_margin_loss",),
    conventions=("d(x, y) = ||x - y + eps||_p: eps is added to every coordinate of the"
                 " difference (torch.pairwise_distance), so identical vectors are D^(1/p) eps"
                 " apart and d is not symmetric; p >= 1 is drawn (torch computes p < 1 too);"
                 " l = max(margin + d(a, p) - d(a, n), 0), with swap d(a, n) replaced by"
                 " min(d(a, n), d(p, n)); margin > 0 (torch raises otherwise); (N, D) rows or"
                 " one (D,) triplet; 'none' is (N,) or 0-d; mean = sum / N. At a kink (the"
                 " hinge, the min, v = x - y + eps at 0) any derivative between the one-sided"
                 " ones; the gradient is checked with vectors moved off kinks nearer than the"
                 " finite differences resolve (identical vectors at eps > 0), their values as"
                 " drawn. In float16 a distance's d^(p - 1) (the backward divides by it) below"
                 " the smallest normal, as identical vectors' sqrt(D) 1e-6 is, is outside the"
                 " domain."),
))


@st.composite
def _distance_cases(draw: st.DrawFn) -> Case:
    return Case(draw(_triplet_inputs()), params(
        distance_function=draw(maybe(choice(*DISTANCES))), margin=draw(maybe(MARGINS)),
        swap=draw(maybe(st.booleans()))))


def _default_distance(case: Case) -> Case:
    return case.without_params("distance_function")


SPECS.declare(triplet_spec(
    name="triplet_margin_with_distance_loss",
    summary="max(margin + d(a, p) - d(a, n), 0) for a given distance d (pairwise_distance by"
            " default)",
    signature=("triplet_margin_with_distance_loss(anchor, positive, negative,"
               " distance_function=None, margin=1.0, swap=False, reduction='mean')"),
    reference=ref.triplet_margin_with_distance_loss,
    cases=_distance_cases,
    relation=Relation(
        name="the_default_distance_is_pairwise_distance",
        description=("with distance_function left out, the loss is triplet_margin_loss"
                     " with p = 2 and eps = 1e-6"),
        lhs=target(label="loss(distance_function omitted)"),
        rhs=reference(ref.triplet_margin_loss, label="triplet_margin_loss(p=2, eps=1e-6)"),
        adapt=_default_distance,
    ),
    edge_cases=(
        *(case.with_params(distance_function=PAIRWISE_DISTANCE).without_params("p", "eps")
          for case in TRIPLET_EDGE_CASES[:1]),
        Case(dict(TRIPLET_EDGE_CASES[2].inputs), {"swap": True},
             label="swap with the default distance: d(p, n) < d(a, n) (losses 2.5 and 1)"),
        Case(dict(TRIPLET_EDGE_CASES[0].inputs), {"distance_function": SQUARED_DISTANCE},
             label="the squared distance: identical vectors 0 apart (losses 0, 0.75 and 26)"),
        Case(dict(TRIPLET_EDGE_CASES[1].inputs), {"distance_function": MANHATTAN_DISTANCE},
             label="the L1 distance without eps: a hinge met exactly (the kink; losses 0, 1.5"
                   " and 0)"),
        Case({"anchor": np.array([1.0, 2.0]), "positive": np.array([1.0, 3.0]),
              "negative": np.array([2.0, 2.0])},
             label="one unbatched (D,) triplet, the default distance"),
    ),
    implementations=("torch.nn.functional:triplet_margin_with_distance_loss",),
    conventions=("l = max(margin + d(a, p) - d(a, n), 0) for the distance_function d, called"
                 " as d(a, p), d(a, n) and, with swap, d(p, n) (whose min with d(a, n) is"
                 " taken); the default (None) is torch.pairwise_distance, ||x - y + 1e-6||_2;"
                 " margin > 0. Cases draw distance_function from the default and named"
                 " callables with a torch and a NumPy form (conformance.specs.embedding:"
                 " PAIRWISE_DISTANCE, SQUARED_DISTANCE, MANHATTAN_DISTANCE): the spec owes the"
                 " loss of whatever distance it is given, which its reference computes with"
                 " the NumPy form. (N, D) rows or one (D,) triplet; 'none' is (N,) or 0-d;"
                 " mean = sum / N. At a kink any derivative between the one-sided ones (kinks"
                 " nearer than the finite differences resolve are moved off for the gradient,"
                 " as for triplet_margin_loss)."),
))
