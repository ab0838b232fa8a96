"""Sequence losses: connectionist temporal classification (torch.nn.functional.ctc_loss).

log_probs is (T, N, C), or (T, C) for one unbatched sample; targets are padded (N, S) or
concatenated (the samples' labels one after the other, 1-D; an unbatched sample's are its own
labels), with a length per sample in input_lengths and target_lengths. A sample's loss reads
its own column log_probs[:, n, :] only, and only its first input_lengths[n] steps.

Drawn cases are log-softmax rows, as torch's documentation asks for, and every drawn target has
an alignment (an input at least as long as its labels plus a blank between each two equal
neighbours), except where zero_infinity=True owes 0 for it: an impossible alignment's loss is
inf, which no property can compare with a tolerance.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from conformance import domains as dom
from conformance.case import Case
from conformance.elements import Integers, Uniform
from conformance.empty import Empty
from conformance.invalid import RAISE_OR_NAN, Invalid, batch_of_one
from conformance.properties.relation import Relation, reference, target
from conformance.spec import Family, LossSpec
from conformance.specs.common import GENERIC, OMIT, maybe, params
from reference import classification as cls_ref
from reference import sequence as ref
from reference.reduction import reduce

# The specs this family declares, read by conformance.catalog.
SPECS = Family()

MAX_CLASSES = 6
MAX_TARGET = 4
LAYOUTS = st.sampled_from(["padded", "padded", "concatenated", "unbatched"])


def _normalized(logits: np.ndarray) -> np.ndarray:
    """log_softmax over the class axis, the last one of (T, N, C) and (T, C)."""
    if logits.ndim == 2:
        return cls_ref.log_softmax(logits)
    return np.moveaxis(cls_ref.log_softmax(np.moveaxis(logits, 2, 1)), 1, 2)


def _repeats(rows: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The number of adjacent equal labels within each sample's target."""
    inside = np.arange(1, rows.shape[1]) < lengths[:, None]
    return np.sum((rows[:, 1:] == rows[:, :-1]) & inside, axis=1)


def _blank(case: Case) -> int:
    return int(case.params.get("blank", 0))


def _batch(case: Case) -> int:
    lp = case.inputs["log_probs"]
    return 1 if lp.ndim == 2 else lp.shape[1]


def _columns(case: Case) -> np.ndarray:
    """log_probs as (T, N, C), one unbatched sample as a batch of 1."""
    lp = case.inputs["log_probs"]
    return lp[:, None, :] if lp.ndim == 2 else lp


def _lengths(case: Case, name: str) -> np.ndarray:
    return np.asarray(case.inputs[name], dtype=np.int64).reshape(-1)


def _rows(case: Case) -> np.ndarray:
    return ref.ctc_label_rows(case.inputs["targets"], _lengths(case, "target_lengths"),
                              _batch(case))


def _shortest(case: Case) -> np.ndarray:
    """The fewest input steps each sample's target can be aligned in."""
    lengths = _lengths(case, "target_lengths")
    return lengths + _repeats(_rows(case), lengths)


def _as_given(case: Case, name: str, values: np.ndarray) -> np.ndarray:
    """Per-sample lengths in the case's own form: (N,), or 0-d for an unbatched sample."""
    return np.asarray(values, dtype=np.int64).reshape(np.shape(case.inputs[name]))


@st.composite
def _ctc_cases(draw: st.DrawFn) -> Case:
    layout = draw(LAYOUTS)
    batch = 1 if layout == "unbatched" else draw(st.integers(1, 4))
    classes = draw(st.integers(2, MAX_CLASSES))
    drawn_blank = draw(maybe(st.integers(0, MAX_CLASSES - 1)))
    blank = OMIT if drawn_blank is OMIT else drawn_blank % classes
    lengths = draw(dom.array((batch,), Integers(0, MAX_TARGET), np.int64))
    # Labels from an alphabet of the classes but the blank, often a narrow one: repeats, which
    # need a blank between them, are common.
    alphabet = draw(st.integers(1, classes - 1))
    extra = draw(st.integers(0, 2)) if layout == "padded" else 0
    codes = draw(dom.array((batch, int(lengths.max()) + extra), Integers(0, alphabet - 1),
                           np.int64))
    rows = codes + (codes >= (0 if blank is OMIT else blank))
    shortest = lengths + _repeats(rows, lengths)
    steps = max(int(shortest.max()), 1) + draw(st.integers(0, 3))
    zero_infinity = draw(maybe(st.booleans()))
    # Each input is the whole T, or any length from the shortest its target allows (from 0
    # where zero_infinity owes 0 for an impossible alignment) to T.
    lowest = np.zeros_like(shortest) if zero_infinity is True else shortest
    where = draw(dom.array((batch,), Uniform(0.0, 1.0)))
    inputs = np.minimum(lowest + np.floor(where * (steps - lowest + 1)).astype(np.int64), steps)
    inputs = np.where(draw(dom.array((batch,), dom.booleans(), np.bool_)), steps, inputs)
    shape = (steps, classes) if layout == "unbatched" else (steps, batch, classes)
    log_probs = _normalized(draw(dom.array(shape, dom.logits())))
    if layout == "padded":
        targets = rows
    else:
        targets = np.concatenate([rows[n, :lengths[n]] for n in range(batch)]).astype(np.int64)
    if layout == "unbatched":
        inputs, lengths = inputs.reshape(()), lengths.reshape(())
    return Case({"log_probs": log_probs, "targets": targets, "input_lengths": inputs,
                 "target_lengths": lengths},
                params(blank=blank, zero_infinity=zero_infinity))


def _read(case: Case) -> np.ndarray:
    """(T, N, C): whether sample n's loss reads log_probs[t, n, c] (a step within its input
    length, a class of its extended target: the blank and its labels)."""
    lp = _columns(case)
    steps, batch, classes = lp.shape
    rows, lengths = _rows(case), _lengths(case, "target_lengths")
    classes_read = np.zeros((batch, classes), dtype=bool)
    classes_read[:, _blank(case)] = True
    for n in range(batch):
        classes_read[n, rows[n, :lengths[n]]] = True
    steps_read = np.arange(steps)[:, None] < _lengths(case, "input_lengths")[None, :]
    return steps_read[:, :, None] & classes_read[None, :, :]


def _path_sums(case: Case) -> np.ndarray:
    """(N,): the sum over a sample's steps of the largest |log-probability| it reads there,
    plus 1 a step (the logaddexp's own log 3): the size of every path sum, alpha and beta of
    the recursions, and so of the loss where an alignment exists."""
    read = _read(case)
    largest = np.max(np.where(read, np.abs(_columns(case)), 0.0), axis=2, initial=0.0)
    return np.sum(largest + np.any(read, axis=2), axis=0)


def _ctc_magnitude(case: Case, loss: np.ndarray) -> np.ndarray:
    """Each alpha is a logaddexp plus a log-probability: a step's rounding is a few ulps of the
    path sums so far, so the loss carries that of its path sums, and of itself. The errors of
    L steps add up to L times that at worst, which the rule's (1 + log2 n) with n = T N C
    covers for every T drawn here."""
    return np.abs(loss) + _path_sums(case).reshape(np.shape(loss))


def _occupancy_condition(case: Case) -> float:
    """The gradient is -exp(alpha_t(s) + beta_t(s) - y_t(k) - log p) summed over the states of
    class k, exponentials of path sums: whatever computes them in a dtype has an error of eps
    times the path sums in their exponents, a relative error of the gradient that no size of
    the loss makes small (float16 at |log_probs| of 1e4 has ulps of 8 there: an occupancy is
    off by a factor e^8)."""
    return float(np.max(_path_sums(case), initial=0.0))


def _per_target_length(case: Case, reduction: str) -> np.ndarray:
    """'mean' divides each sample's loss by its target length, clamped to 1 (torch's
    target_lengths.clamp_min(1)), before the mean over the batch."""
    return np.maximum(np.asarray(case.inputs["target_lengths"], dtype=np.float64), 1.0)


def _each_sample(case: Case, name: str) -> tuple[int, ...]:
    """`separable`: a sample's loss reads its time steps and classes, log_probs[:, n, :]."""
    return (0, 2) if case.inputs[name].ndim == 3 else (0, 1)


def _reduced(case_losses: np.ndarray, target_lengths: np.ndarray, reduction: str) -> np.ndarray:
    return reduce(case_losses, reduction, np.maximum(np.asarray(target_lengths, float), 1.0))


# --------------------------------------------------------------------------- relations

STEP_SHIFT = 1.0  # exact in every dtype


def _first_step_raised(case: Case) -> Case:
    lp = np.array(case.inputs["log_probs"])
    lp[0] += STEP_SHIFT
    return case.with_inputs(log_probs=lp)


def _less_the_shift(log_probs: np.ndarray, targets: np.ndarray, input_lengths: np.ndarray,
                    target_lengths: np.ndarray, blank: int = 0, reduction: str = "mean",
                    zero_infinity: bool = False) -> np.ndarray:
    """The loss less STEP_SHIFT for each sample that reads step 0 and has an alignment: every
    path crosses every step it reads once, so raising a step's log-probabilities by c lowers
    -log of their sum by c."""
    each = ref.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank, "none")
    read = np.asarray(input_lengths).reshape(np.shape(each)) > 0
    each = np.where(read & np.isfinite(each), each - STEP_SHIFT, each)
    if zero_infinity:
        each = np.where(np.isinf(each), 0.0, each)
    return _reduced(each, target_lengths, reduction)


SHIFTING_A_STEP = Relation(
    name="raising_a_step_lowers_the_loss_by_as_much",
    description=("adding c to every log-probability of step 0 lowers each loss that reads it"
                 " by c (every alignment crosses every step once): log_probs are used as"
                 " given, never renormalized"),
    lhs=target(_first_step_raised, label="loss(log_probs + c at step 0)"),
    rhs=reference(_less_the_shift, label="loss(log_probs) - c"),
)


def _at_the_shortest_length(case: Case) -> Case | None:
    """Every input cut to the fewest steps its target allows (None where T is shorter)."""
    shortest = _shortest(case)
    if np.any(shortest > _columns(case).shape[0]):
        return None
    return case.with_inputs(input_lengths=_as_given(case, "input_lengths", shortest))


def _cost_of_the_shortest_alignment(log_probs: np.ndarray, targets: np.ndarray,
                                    input_lengths: np.ndarray, target_lengths: np.ndarray,
                                    blank: int = 0, reduction: str = "mean",
                                    zero_infinity: bool = False) -> np.ndarray:
    """-sum_t log_probs[t, n, pi_t] along each sample's one alignment pi at its shortest length
    (reference.sequence.ctc_shortest_alignment): summed directly, no recursion."""
    lp = np.asarray(log_probs, dtype=np.float64)
    columns = lp[:, None, :] if lp.ndim == 2 else lp
    lengths = np.asarray(target_lengths, dtype=np.int64).reshape(-1)
    rows = ref.ctc_label_rows(targets, lengths, columns.shape[1])
    costs = np.zeros(columns.shape[1])
    for n in range(columns.shape[1]):
        path = ref.ctc_shortest_alignment(rows[n, :lengths[n]], blank)
        costs[n] = -np.sum(columns[np.arange(path.size), n, path])
    return _reduced(costs.reshape(np.shape(input_lengths)), target_lengths, reduction)


UNIQUE_ALIGNMENT = Relation(
    name="the_shortest_alignment_is_the_only_one",
    description=("at the shortest input length a target allows (its labels plus a blank"
                 " between equal neighbours), its one alignment costs the sum of its negated"
                 " log-probabilities"),
    lhs=target(label="loss at the shortest input lengths"),
    rhs=reference(_cost_of_the_shortest_alignment, label="-sum of log_probs along the path"),
    adapt=_at_the_shortest_length,
)


def _has_padding(case: Case) -> Case | None:
    """The case where some sample has steps past its input length or padded labels past its
    target length (None: nothing to change)."""
    steps = _columns(case).shape[0]
    targets = case.inputs["targets"]
    padded_labels = targets.ndim == 2 and bool(np.any(
        _lengths(case, "target_lengths") < targets.shape[1]))
    return case if padded_labels or np.any(_lengths(case, "input_lengths") < steps) else None


def _padding_changed(case: Case) -> Case:
    """Each step past a sample's input length reversed along the classes (still a
    log-softmax row, exactly), each padded label past its target length made another class."""
    lp = _columns(case)
    steps = np.arange(lp.shape[0])[:, None, None]
    past = steps >= _lengths(case, "input_lengths")[None, :, None]
    changed = np.where(past, lp[:, :, ::-1], lp).reshape(case.inputs["log_probs"].shape)
    targets = case.inputs["targets"]
    if targets.ndim == 2:
        classes, blank = lp.shape[2], _blank(case)
        other = np.where((targets + 1) % classes == blank, targets + 2, targets + 1) % classes
        pad = np.arange(targets.shape[1])[None, :] >= _lengths(case, "target_lengths")[:, None]
        targets = np.where(pad, other, targets)
    return case.with_inputs(log_probs=changed, targets=targets)


PADDING_IS_NOT_READ = Relation(
    name="padding_changes_nothing",
    description=("log-probabilities past a sample's input length and padded labels past its"
                 " target length change nothing"),
    lhs=target(_padding_changed, label="loss(other padding)"),
    rhs=target(label="loss"),
    adapt=_has_padding,
)


def _blank_swapped(case: Case) -> Case:
    """The blank and the next class trade places: their log-probability columns swap, labels of
    that class become the old blank's index, and blank names the other class."""
    lp = case.inputs["log_probs"]
    classes, blank = lp.shape[-1], _blank(case)
    other = (blank + 1) % classes
    swap = np.arange(classes)
    swap[[blank, other]] = other, blank
    return case.with_inputs(log_probs=lp[..., swap], targets=swap[case.inputs["targets"]]
                            ).with_params(blank=int(other))


RENAMING_THE_BLANK = Relation(
    name="renaming_the_blank_changes_nothing",
    description=("swapping the blank's class index with another's (its log-probabilities, the"
                 " labels and the blank argument) leaves the loss unchanged"),
    lhs=target(_blank_swapped, label="loss with the blank at another index"),
    rhs=target(label="loss"),
)


# --------------------------------------------------------------------------- empty, invalid


def _no_samples(case: Case) -> Case | None:
    """A batch of 0: log_probs (T, 0, C), no target rows (or no concatenated label), no
    lengths. An unbatched sample has no batch axis to empty."""
    lp = case.inputs["log_probs"]
    if lp.ndim != 3:
        return None
    targets = case.inputs["targets"]
    return case.with_inputs(log_probs=lp[:, :0], targets=targets[:0],
                            input_lengths=case.inputs["input_lengths"][:0],
                            target_lengths=case.inputs["target_lengths"][:0])


def _label_set_to(value: str) -> Invalid:
    """The first label of the first non-empty target made `value`: 'C' (one past the last
    class) or 'blank'."""

    def make(case: Case) -> Case | None:
        lengths = _lengths(case, "target_lengths")
        if not np.any(lengths > 0):
            return None
        bad = case.inputs["log_probs"].shape[-1] if value == "C" else _blank(case)
        targets = np.array(case.inputs["targets"])
        if targets.ndim == 2:
            targets[int(np.argmax(lengths > 0)), 0] = bad
        else:
            targets[0] = bad
        return case.with_inputs(targets=targets)

    what = ("equal to the number of classes" if value == "C" else "equal to the blank")
    return Invalid(f"a target label {what}", make, RAISE_OR_NAN)


def _input_longer_than_t(case: Case) -> Case | None:
    lengths = np.array(_lengths(case, "input_lengths"))
    lengths[0] = _columns(case).shape[0] + 1
    return case.with_inputs(input_lengths=_as_given(case, "input_lengths", lengths))


def _a_target_label_is_not_a_class(case: Case) -> bool:
    """Some label within a target lies outside [0, C) or is the blank."""
    lengths = _lengths(case, "target_lengths")
    try:
        rows = _rows(case)
    except ValueError:
        return False
    used = np.arange(rows.shape[1]) < lengths[:, None]
    classes = case.inputs["log_probs"].shape[-1]
    return bool(np.any(used & ((rows < 0) | (rows >= classes) | (rows == _blank(case)))))


def _concatenated_targets_of_several_samples(case: Case) -> bool:
    """Targets in the concatenated (1-D) form for a batch of two or more: where a sample's
    labels start at an offset into the tensor (an unbatched sample's start at 0)."""
    return case.inputs["targets"].ndim == 1 and case.inputs["log_probs"].ndim == 3 and (
        _batch(case) > 1)


# --------------------------------------------------------------------------- edge cases


def _lp(logits: list) -> np.ndarray:
    return _normalized(np.asarray(logits, dtype=np.float64))


EDGE_CASES = (
    Case({"log_probs": _lp([[[2.0, 0.0, 1.0]], [[0.5, 0.0, -1.0]], [[0.0, 3.0, 0.0]]]),
          "targets": np.array([[1, 1]]), "input_lengths": np.array([3]),
          "target_lengths": np.array([2])},
         label="a repeated label in exactly 3 steps: the one path (a, blank, a), loss"
               " -(y_0(a) + y_1(blank) + y_2(a)) = 3.1067"),
    Case({"log_probs": _lp(np.sin(np.arange(6 * 3 * 4) * 1.3).reshape(6, 3, 4) * 3.0),
          "targets": np.array([[1, 2, 0], [0, 0, 0], [3, 3, 3]]),
          "input_lengths": np.array([4, 5, 6]), "target_lengths": np.array([2, 0, 3])},
         label="an empty target (the all-blank path, its 'mean' term divided by 1, not 0)"
               " beside a target of three equal labels in 6 steps"),
    Case({"log_probs": _lp(np.cos(np.arange(3 * 2 * 3) * 0.7).reshape(3, 2, 3)),
          "targets": np.array([[1, 1], [2, 1]]), "input_lengths": np.array([2, 3]),
          "target_lengths": np.array([2, 2])}, {"zero_infinity": True},
         label="an input too short for its target (2 steps for a, blank, a): with"
               " zero_infinity=True that loss and its gradient are 0"),
    Case({"log_probs": _lp(np.sin(np.arange(5 * 2 * 4) * 2.1).reshape(5, 2, 4) * 2.0),
          "targets": np.array([0, 2, 1]), "input_lengths": np.array([5, 3]),
          "target_lengths": np.array([2, 1])}, {"blank": 3},
         label="blank = 3, the last class, with concatenated targets and an input shorter"
               " than T"),
    Case({"log_probs": _lp(np.cos(np.arange(4 * 3) * 1.1).reshape(4, 3)),
          "targets": np.array([2]), "input_lengths": np.array(3),
          "target_lengths": np.array(1)},
         label="one unbatched (T, C) sample read for 3 of its 4 steps: 'none' is 0-d"),
    Case({"log_probs": _lp([[[0.0, 1e4, 0.0]], [[0.0, 0.0, 1e4]], [[1e4, 0.0, 0.0]]]),
          "targets": np.array([[1, 2]]), "input_lengths": np.array([3]),
          "target_lengths": np.array([2])},
         label="a near-certain alignment (log-probabilities 0 and -1e4): loss 0"),
    Case({"log_probs": _lp(np.sin(np.arange(4 * 2 * 3) * 0.9).reshape(4, 2, 3)) - 1.0,
          "targets": np.array([[1, 2], [2, 2]]), "input_lengths": np.array([4, 3]),
          "target_lengths": np.array([2, 2])},
         label="rows that are not log-softmax outputs (each lowered by 1): used as given,"
               " each loss 1 higher a step it reads, nothing renormalized"),
)


SPECS.declare(LossSpec(
    name="ctc_loss",
    family="sequence",
    summary="connectionist temporal classification: -log of the sum over every alignment",
    signature=("ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0,"
               " reduction='mean', zero_infinity=False)"),
    reference=ref.ctc_loss,
    cases=_ctc_cases,
    mean_denominator=_per_target_length,
    magnitude=_ctc_magnitude,
    differentiable=("log_probs",),
    gradient_condition=_occupancy_condition,
    separable=_each_sample,
    properties=(
        # All of GENERIC: nonnegative holds on the drawn and named cases, log-softmax rows
        # (the sum over the alignments is at most the sum over every path, 1), except the one
        # lowered by 1, whose losses only rise.
        *GENERIC,
        UNIQUE_ALIGNMENT,
        SHIFTING_A_STEP,
        PADDING_IS_NOT_READ,
        RENAMING_THE_BLANK,
    ),
    edge_cases=EDGE_CASES,
    empty=(Empty("a batch of 0 samples", _no_samples),),
    invalid=(_label_set_to("C"), _label_set_to("blank"),
             Invalid("an input length past T", _input_longer_than_t),
             batch_of_one("input_lengths")),
    regimes={"a_target_label_is_not_a_class": _a_target_label_is_not_a_class,
             "concatenated_targets_of_several_samples": _concatenated_targets_of_several_samples},
    implementations=("torch.nn.functional:ctc_loss",),
    conventions=(
        "log_probs (T, N, C) or (T, C) are used as given (torch does not renormalize a row"
        " that is not a log-softmax); targets padded (N, S) or concatenated, labels in"
        " [0, C) other than the blank. An input with no alignment (shorter than its labels"
        " plus a blank between equal neighbours) has loss inf, 0 with zero_infinity=True;"
        " an input of length 0 aligns only the empty target (loss 0). 'mean' = mean over the"
        " batch of loss / max(target length, 1); 'sum' the sum; 'none' one loss a sample"
        " (0-d unbatched). Gradients are owed for log_probs: the derivative of the loss as"
        " a function of log_probs itself."
    ),
))
