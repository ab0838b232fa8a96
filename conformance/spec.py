"""A loss spec: the one declaration of a loss that every check reads."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from conformance import variants
from conformance.case import Case, dtype_name
from conformance.empty import Empty
from conformance.invalid import Invalid
from conformance.timing import timed
from conformance.tolerance import DEFAULT_RULE, ToleranceRule
from conformance.variants import Variant
from reference.reduction import REDUCTIONS, reduce


def _elementwise_magnitude(case: Case, reference_none: np.ndarray) -> np.ndarray:
    return np.abs(reference_none)


def each_element(case: Case, name: str) -> tuple[int, ...]:
    """`separable` for elementwise losses: each output element reads one input element."""
    return ()


def each_box(case: Case, name: str) -> tuple[int, ...]:
    """`separable` for losses of (..., 4) boxes: each output element reads one box."""
    return (-1,)


SUBGRADIENT_CONVENTIONS = ("interval", "midpoint")

# The reason given for a case whose reference is NaN or infinite with no NaN declared: a gap in
# the spec (its domain or its nan_expected), counted apart so that a soak can find every one.
UNDEFINED_REFERENCE = "undefined reference (NaN or inf, not declared): a gap in the spec"


@dataclass(frozen=True)
class LossSpec:
    """Everything the engine knows about one loss. Adding one (what a spec owes, the traps, a
    worked example): docs/adding-a-loss.md.

    name:            the spec's name (what users pass as `spec=`).
    signature:       the canonical call, exactly torch.nn.functional's / torchvision.ops' where
                     they have the loss; positional tensors first, keyword parameters after.
    reference:       the float64 NumPy ground truth, called like the canonical signature.
    cases:           a Hypothesis strategy of valid inputs (the named input domains).
    reductions:      reductions the loss supports; each property checks every one of them.
                     Empty for a function without a `reduction` argument (a pairwise metric).
    mean_denominator: what 'mean' (and 'batchmean') divide the sum by, for this case; or an
                     array of the 'none' output's shape, each element's own divisor
                     before the plain mean (ctc_loss: each sample's target length).
    magnitude:       elementwise error scale (shape of the 'none' output) for the tolerance rule.
    properties:      generic properties (registered names) and relations (family invariants).
    dtypes:          the dtypes the spec is defined for (None: all).
    edge_cases:      named cases that run first in every profile.
    implementations: import paths ("module:attr") of targets that should conform as they are.
    nan_expected:    where the spec's value is NaN (e.g. a mean over zero elements).
    conventions:     the conventions the spec fixes, in words (eps placement, clamps, ...).
    variants:        the conventions real implementations choose differently, each a keyword
                     parameter of the reference (conformance.variants).
    """

    name: str
    family: str
    summary: str
    signature: str
    reference: Callable[..., np.ndarray]
    cases: Callable[[], st.SearchStrategy[Case]]
    reductions: tuple[str, ...] = REDUCTIONS
    mean_denominator: Callable[[Case, str], float | np.ndarray] | None = None
    magnitude: Callable[[Case, np.ndarray], np.ndarray] = _elementwise_magnitude
    properties: tuple[Any, ...] = ()
    edge_cases: tuple[Case, ...] = ()
    implementations: tuple[str, ...] = ()
    nan_expected: Callable[[Case, str | None], bool | np.ndarray] | None = None
    # Reductions whose value is owed >= 0 (a field left at None: every one; () none of them).
    nonnegative_reductions: tuple[str, ...] | None = None
    tolerance: ToleranceRule = DEFAULT_RULE
    conventions: str = ""
    # Inputs the gradient property differentiates; None: the first positional input.
    differentiable: tuple[str, ...] | None = None
    # Dtypes the output is defined for; None: every float dtype. A metric of integer label maps
    # has no input dtype to follow, and declares the one dtype it returns.
    dtypes: tuple[str, ...] | None = None
    # The loss with the spec's constants frozen at a case (CIoU's alpha): base case ->
    # (perturbed case, reduction) -> values. None: the reference itself.
    gradient_reference: Callable[[Case], Callable[[Case, str | None], np.ndarray]] | None = None
    # The axes of a differentiable input that one element of the unreduced output reads
    # together (case, input name) -> axes; the output's shape is the input's without them, and
    # each output element depends on the input only through its own slice along them:
    # elementwise losses (each_element: no axis), box-pair losses (each_box: a box's four
    # coordinates), losses of (N, C, ...) scores (the class axis). The gradient property then
    # moves one coordinate of every slice at once: one set of reference calls gives all their
    # derivatives. None: one coordinate at a time. A wrong declaration would mix derivatives
    # (tests/test_gradient_moves.py checks every declaration against one at a time).
    separable: Callable[[Case, str], tuple[int, ...]] | None = None
    # Whether the unreduced reference (and gradient_reference) is written over leading axes:
    # given every input with a new leading axis of P copies of one case, moved apart, it
    # returns their P outputs along that axis, each computed as if alone. The gradient property
    # then evaluates every point of its finite differences in one reference call instead of
    # one call per point (box references cost about a millisecond a call). A wrong declaration
    # would mix the copies (tests/test_gradient_moves.py checks every one against one call a
    # point).
    stacks: bool = False
    # How ill-conditioned the backward is on a case, as a multiple of eps(dtype) relative to
    # the gradient's size, where it exceeds the value's conditioning (its error scale over its
    # size, the gradient property's default). A gradient that exponentiates differences of
    # large accumulated sums (CTC's occupancies exp(alpha + beta - log p)) carries a relative
    # error of eps times the size of those sums, however large the loss itself is.
    gradient_condition: Callable[[Case], float] | None = None
    # Where the gradient property looks: a map that keeps cases off points where a one-
    # coordinate finite difference cannot see the generalized gradient (a zero-width box).
    gradient_domain: Callable[[Case], Case] | None = None
    # The derivative owed at a kink (where the one-sided derivatives differ): "interval", any
    # value between them (a Clarke subgradient: hinges, sorting ties, touching box edges, where
    # libraries legitimately differ); "midpoint", their average (sign(0) = 0 for |d|, the
    # minimum-norm subgradient at a minimum, which torch's abs and l1_loss use).
    subgradient: str = "interval"
    # Magnitudes a faithful implementation must hold in the tested dtype besides the inputs and
    # the elementwise loss (box areas, say). A case where one of them exceeds the dtype's
    # largest finite number is outside that dtype's domain: float16 cannot hold a 300 x 300
    # area, whatever the implementation. An overflow anywhere else is the target's.
    intermediates: Callable[[Case], np.ndarray] | None = None
    # Where a value is owed at all, judged on the case as the target sees it (rounded to the
    # tested dtype): None inside, else why not (CIoU's aspect angle needs positive sides; at
    # eps = 0 the IoU of two empty boxes is 0/0). A case outside is never an example, and
    # shrinking never walks onto one. Say it in `conventions` too.
    domain: Callable[[Case, torch.dtype], str | None] | None = None
    # Invalid forms of a drawn case (conformance.invalid) and what each owes: an error, or NaN
    # where the spec allows it. Declaring any brings the property rejects_invalid_input.
    invalid: tuple[Invalid, ...] = ()
    # Empty forms of a drawn case (conformance/empty.py): a batch of 0, an empty spatial axis,
    # no boxes. The reference's value there is owed; every built-in spec declares at least one.
    empty: tuple[Empty, ...] = ()
    # Named input regimes (case -> in it?) a deviations entry may scope itself to with `when`
    # (every target ignored, a class absent from the target), so the rest of a cell is still
    # checked. A regime that depends on the dtype (an overflow) takes it as a second argument,
    # the dtype's name (conformance.deviations passes the failing cell's).
    regimes: dict[str, Callable[..., bool]] = field(default_factory=dict)
    # Conventions real implementations differ on (conformance.variants), each a keyword
    # parameter of the reference; `following` holds the non-canonical ones this spec is
    # bound to (LossSpec.following_conventions), empty for the spec as declared.
    variants: tuple[Variant, ...] = ()
    following: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.subgradient not in SUBGRADIENT_CONVENTIONS:
            raise ValueError(f"spec {self.name!r}: subgradient must be one of"
                             f" {SUBGRADIENT_CONVENTIONS}, not {self.subgradient!r}")

    def following_conventions(self, conventions: Mapping[str, Any]) -> LossSpec:
        """This spec with its reference bound to the named conventions (conformance.variants):
        every property then holds the target to that variant. Unknown names and values raise
        ConventionError; the spec's own values change nothing."""
        chosen = variants.chosen(self.name, self.variants, conventions)
        if not chosen:
            return self
        if self.gradient_reference is not None:
            raise variants.ConventionError(
                f"spec {self.name!r} freezes constants in its own gradient reference: its"
                " variants must be passed to it too, which this spec does not do")
        return replace(self, reference=functools.partial(self.reference, **chosen),
                       following={**self.following, **chosen})

    def conventions_for(self, fn: Callable[..., Any]) -> dict[str, Any]:
        """The followed conventions `fn` takes by name: a spec's own helpers (its mean's
        denominator, where NaN is owed, a relation's other loss) follow the variant too."""
        if not self.following:
            return {}
        return {k: v for k, v in self.following.items() if k in _keywords(fn)}

    def as_declared(self) -> LossSpec:
        """This spec bound to none of its variants (its own conventions)."""
        if not self.following:
            return self
        # following_conventions binds one functools.partial, which flattens when bound again.
        base = self.reference.func  # type: ignore[attr-defined]
        return replace(self, reference=base, following={})

    def convention_sets(self) -> list[dict[str, Any]]:
        """Every combination of the declared variants' values, the spec's own first."""
        sets: list[dict[str, Any]] = [{}]
        for variant in self.variants:
            values = [variant.canonical, *(v for v in variant.choices if v != variant.canonical)]
            sets = [{**chosen, variant.name: value} for chosen in sets for value in values]
        return sets

    @property
    def calls(self) -> tuple[str | None, ...]:
        """The reductions to visit; None stands for a call without a reduction argument."""
        return self.reductions or (None,)

    @property
    def default_reduction(self) -> str | None:
        """The canonical signature's default reduction: the reference's (None: no reduction
        argument, or no default)."""
        if not self.reductions:
            return None
        parameter = inspect.signature(self.reference).parameters.get("reduction")
        if parameter is None or parameter.default is inspect.Parameter.empty:
            return None
        return parameter.default

    @property
    def elementwise_reduction(self) -> str | None:
        return "none" if "none" in self.reductions else None

    def call_reference(
        self, case: Case, reduction: str | None, fn: Callable[..., np.ndarray] | None = None
    ) -> np.ndarray:
        """The reference's value (read-only: it may be shared). One example asks for the same
        value many times (domain, properties, tolerance scale): the last few are remembered,
        by the identity of the case object, which is immutable."""
        fn = fn or self.reference
        if fn is not self.reference and self.following:
            # Another function of the spec's family (a relation's other side) computes under
            # the conventions the spec follows, where it takes them by name.
            taken = self.conventions_for(fn)
            if taken:
                fn = functools.partial(fn, **taken)
        key = (id(case), reduction, id(fn))
        hit = _REFERENCE_MEMO.get(key)
        if hit is not None and hit[0] is case and hit[1] is fn:
            return hit[2]
        kwargs = {} if reduction is None else {"reduction": reduction}
        with np.errstate(all="ignore"), timed("reference"):
            value = np.asarray(fn(*case.inputs.values(), **case.params, **kwargs),
                               dtype=np.float64)
        if value.base is not None or not value.flags.writeable:
            value = value.copy()  # not ours to freeze: the reference may keep it
        value.flags.writeable = False
        _remember(_REFERENCE_MEMO, key, (case, fn, value))
        return value

    def denominator(self, case: Case, reduction: str) -> float | np.ndarray:
        """What 'mean' divides by: one number for the sum (the element count by default), or
        an array of the 'none' output's shape whose entries divide the elements one by one
        before the plain mean (reference.reduction.reduce takes either)."""
        if self.mean_denominator is not None:
            found = self.mean_denominator(case, reduction,
                                          **self.conventions_for(self.mean_denominator))
            return float(found) if np.ndim(found) == 0 else np.asarray(found, dtype=np.float64)
        return float(self.call_reference(case, "none").size)

    def scale(self, case: Case, reduction: str | None) -> np.ndarray:
        """Error scale of the output of `reduction`: the elementwise magnitude, reduced alike."""
        elementwise = self.magnitude(case, self.call_reference(case, self.elementwise_reduction))
        if reduction in ("none", None):
            return elementwise
        denominator = None if reduction == "sum" else self.denominator(case, reduction)
        with np.errstate(all="ignore"):
            out = reduce(elementwise, "sum" if reduction == "sum" else "mean", denominator)
        return np.nan_to_num(out, nan=0.0, posinf=np.inf)

    def fits(self, case: Case, dtype: torch.dtype) -> bool:
        """Whether every magnitude the loss is built from is finite in `dtype`, and each
        declared intermediate that is not 0 is at least its smallest normal number (a box
        area of 4e-6 is subnormal in float16 and keeps a digit or two)."""
        info = torch.finfo(dtype)
        if info.max >= np.finfo(np.float64).max:
            return True
        loss = np.abs(self.call_reference(case, self.elementwise_reduction))
        if not np.all(np.nan_to_num(loss, nan=0.0) <= info.max):
            return False
        if self.intermediates is None:
            return True
        with np.errstate(all="ignore"):
            parts = np.nan_to_num(np.abs(np.asarray(self.intermediates(case), dtype=np.float64)))
        return bool(np.all(parts <= info.max) and np.all((parts == 0) | (parts >= info.tiny)))

    def outside_domain(self, case: Case, dtype: torch.dtype) -> str | None:
        """Why no value is owed on this (rounded) case in `dtype`, or None where one is.

        Three gaps, in this order: the spec's declared domain; a loss or declared intermediate
        that `dtype` cannot hold; a reference that is NaN or infinite where the spec declares
        no NaN. The last is a gap in the spec's declaration, never the target's fault: it is
        reported as such ("undefined reference") and the case is dropped like the others.
        Remembered by the case's identity, like the reference's values: every property of one
        example asks."""
        key = (id(case), dtype, id(self))
        hit = _DOMAIN_MEMO.get(key)
        if hit is not None and hit[0] is case and hit[1] is self:
            return hit[2]
        why = self._outside_domain(case, dtype)
        _remember(_DOMAIN_MEMO, key, (case, self, why))
        return why

    def _outside_domain(self, case: Case, dtype: torch.dtype) -> str | None:
        if self.domain is not None:
            why = self.domain(case, dtype)
            if why:
                return why
        if not self.fits(case, dtype):
            return f"beyond {dtype_name(dtype)}'s range"
        if self.owes_nonfinite:
            return None  # its infinities and NaNs are the variant's declared values
        for reduction in self.calls:
            value = self.call_reference(case, reduction)
            nan_ok = np.asarray(self.expects_nan(case, reduction), dtype=bool)
            if not np.all(np.isfinite(value) | (nan_ok & np.isnan(value))):
                return UNDEFINED_REFERENCE
        return None

    @property
    def owes_nonfinite(self) -> bool:
        """Whether the spec follows a variant whose infinities and NaNs are declared values."""
        return any(v.name in self.following and self.following[v.name] in v.nonfinite
                   for v in self.variants)

    def expects_nan(self, case: Case, reduction: str | None) -> bool | np.ndarray:
        """Where the spec's value is NaN: a bool, or an elementwise mask of the output."""
        declared = False if self.nan_expected is None else self.nan_expected(
            case, reduction, **self.conventions_for(self.nan_expected))
        if self.owes_nonfinite:
            return np.isnan(self.call_reference(case, reduction)) | np.asarray(declared)
        return declared

    def differentiable_inputs(self, case: Case) -> list[str]:
        """The inputs gradients are owed for: the declared ones (else the first input) that
        the case has, as floating-point arrays."""
        declared = self.differentiable or (next(iter(case.inputs)),)
        return [n for n in declared
                if n in case.inputs and np.issubdtype(case.inputs[n].dtype, np.floating)]

@functools.lru_cache(maxsize=256)
def _keywords(fn: Callable[..., Any]) -> frozenset[str]:
    """The parameters `fn` names (not those a **kwargs would swallow)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return frozenset()
    return frozenset(p.name for p in parameters
                     if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


# call_reference's memory: (id(case), reduction, id(fn)) -> (case, fn, value), oldest first.
# The case and fn are held, so their ids cannot be reused while an entry lives.
_REFERENCE_MEMO: dict[tuple[int, str | None, int], tuple[Case, Callable[..., Any], np.ndarray]] = {}
# outside_domain's: (id(case), dtype, id(spec)) -> (case, spec, verdict).
_DOMAIN_MEMO: dict[tuple[int, torch.dtype, int], tuple[Case, LossSpec, str | None]] = {}
_MEMO_SIZE = 64


def _remember(memo: dict[Any, Any], key: Any, entry: Any) -> None:
    """Keep the last _MEMO_SIZE entries, oldest out first."""
    if len(memo) >= _MEMO_SIZE:
        del memo[next(iter(memo))]
    memo[key] = entry

class Family(list):
    """The specs one family module declares, in order. The module writes `SPECS = Family()`
    and `SPECS.declare(LossSpec(...))`, which returns the spec; `conformance.catalog` reads
    the SPECS of every family module it lists."""

    def declare(self, spec: LossSpec) -> LossSpec:
        if any(s.name == spec.name for s in self):
            raise ValueError(f"spec {spec.name!r} is declared twice")
        self.append(spec)
        return spec
