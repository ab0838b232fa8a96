"""The float64 CTC reference against brute force in mpmath at 40 significant digits.

The brute force shares nothing with ``reference.sequence``: it enumerates every path of
L_n classes (C^L of them, L <= 5 here), collapses each (repeats merged, then blanks removed)
and sums exp(sum of its log-probabilities) over the paths that collapse to the target, in
mpmath; the loss is -log of that sum, inf where it is empty. The float64 inputs are exact
binary numbers, so this is the true loss of exactly those inputs.

Agreement means |ref - mp| <= 1e-13 |mp| + 64 eps P, where P is the sample's path sum (the
sum over its steps of the largest |log-probability| it reads, plus 1 a step): the recursion
adds log-probabilities of size up to P into alphas and takes logaddexp of them, each step
correct to a few ulps of those sizes, so the error is absolute on that scale. It is below
1e-13 |mp| except where the alignments' probabilities sum to nearly 1 (a loss near 0 from
log-probabilities that are not), where no float64 sum of them resolves the remainder.

Grids: ordinary log-softmax rows, near-certain rows (logits of 1e4), rows that are not
normalized, a blank that is not 0, repeated labels, empty targets, inputs of length 0,
inputs shorter than T, and impossible alignments (inf, or 0 with zero_infinity). A small
derandomized Hypothesis search looks between them. The derivatives the gradient property
takes of the reference (Richardson differences, conformance.properties.gradient) are checked
against the exact ones: minus the posterior occupancy of each class at each step.
"""

from __future__ import annotations

import itertools

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reference as ref
from conformance.case import Case
from conformance.catalog import get_spec
from conformance.properties.gradient import reference_derivatives

mp = mpmath.MPContext()
mp.dps = 40

RTOL = 1e-13
EPS = 2.0**-52

HYPOTHESIS = settings(max_examples=40, derandomize=True, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))


# --------------------------------------------------------------------------- brute force


def collapse(path: tuple[int, ...], blank: int) -> tuple[int, ...]:
    """Merge repeated classes, then drop blanks (Graves et al. 2006, the map B)."""
    merged = [c for i, c in enumerate(path) if i == 0 or path[i - 1] != c]
    return tuple(c for c in merged if c != blank)


def mp_alignments(lp: np.ndarray, labels: tuple[int, ...], steps: int, blank: int
                  ) -> dict[tuple[int, ...], mpmath.mpf]:
    """Every path of `steps` classes that collapses to `labels`, with its probability."""
    found = {}
    for path in itertools.product(range(lp.shape[1]), repeat=steps):
        if collapse(path, blank) == labels:
            found[path] = mp.exp(mp.fsum(mp.mpf(float(lp[t, c])) for t, c in enumerate(path)))
    return found


def mp_loss(lp: np.ndarray, labels: tuple[int, ...], steps: int, blank: int):
    """-log of the summed probability of the alignments (inf for none)."""
    total = mp.fsum(mp_alignments(lp, labels, steps, blank).values())
    return mp.inf if total == 0 else -mp.log(total)


def mp_occupancy(lp: np.ndarray, labels: tuple[int, ...], steps: int, blank: int
                 ) -> np.ndarray:
    """d loss / d lp[t, c] exactly: minus the posterior probability that an alignment emits
    class c at step t (0 past the input length)."""
    paths = mp_alignments(lp, labels, steps, blank)
    total = mp.fsum(paths.values())
    out = np.zeros(lp.shape)
    for path, p in paths.items():
        for t, c in enumerate(path):
            out[t, c] -= float(p / total)
    return out


def path_sums(lp: np.ndarray, labels: tuple[int, ...], steps: int, blank: int) -> float:
    read = [blank, *labels]
    return float(sum(np.max(np.abs(lp[t, read])) + 1.0 for t in range(steps)))


# --------------------------------------------------------------------------- cases


def log_softmax(x: np.ndarray) -> np.ndarray:
    top = np.max(x, axis=-1, keepdims=True)
    return x - top - np.log(np.sum(np.exp(x - top), axis=-1, keepdims=True))


def rows_of(logits: list[list[float]]) -> np.ndarray:
    return log_softmax(np.asarray(logits, dtype=np.float64))


# (log_probs (T, C) of one sample, labels, input length, blank)
RNG = np.random.default_rng(20240611)
SAMPLES = [
    (rows_of(RNG.normal(size=(4, 3))), (1, 2), 4, 0),
    (rows_of(RNG.normal(size=(5, 3))), (1, 1), 5, 0),  # a repeat: a blank between
    (rows_of(RNG.normal(size=(3, 3))), (1, 1), 3, 0),  # the repeat at its shortest: one path
    (rows_of(RNG.normal(size=(5, 4))), (2, 2, 2), 5, 0),  # three equal labels, shortest
    (rows_of(RNG.normal(size=(4, 3))), (), 4, 0),  # the empty target: the all-blank path
    (rows_of(RNG.normal(size=(4, 3))), (1,), 0, 0),  # input length 0: no alignment
    (rows_of(RNG.normal(size=(4, 3))), (), 0, 0),  # ... but for the empty target (loss 0)
    (rows_of(RNG.normal(size=(5, 4))), (0, 1), 3, 3),  # blank 3, an input shorter than T
    (rows_of(RNG.normal(size=(4, 3))), (2, 2), 2, 0),  # impossible: inf
    (rows_of(RNG.normal(size=(5, 4)) * 8.0), (1, 3, 1), 5, 2),
    (rows_of([[0.0, 1e4, 0.0], [0.0, 0.0, 1e4], [1e4, 0.0, 0.0]]), (1, 2), 3, 0),
    (rows_of([[1e4, 0.0, -1e4], [0.0, 1e4, 0.0], [-1e4, 0.0, 1e4], [0.0, 0.0, 0.0]]),
     (1, 2), 4, 0),
    (rows_of(RNG.normal(size=(4, 3))) - 1.0, (1, 2), 4, 0),  # rows not normalized
    (RNG.normal(size=(4, 3)) * 3.0, (2, 0), 4, 1),  # arbitrary real rows
]


def batch(samples: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(T, N, C) log_probs, padded targets, input and target lengths, one blank for all."""
    steps = max(s[0].shape[0] for s in samples)
    classes = samples[0][0].shape[1]
    lp = np.zeros((steps, len(samples), classes))
    width = max((len(s[1]) for s in samples), default=0)
    targets = np.zeros((len(samples), width), dtype=np.int64)
    for n, (rows, labels, _, _) in enumerate(samples):
        lp[:rows.shape[0], n] = rows
        targets[n, :len(labels)] = labels
        targets[n, len(labels):] = next(c for c in range(classes) if c != samples[n][3])
    inputs = np.array([s[2] for s in samples], dtype=np.int64)
    lengths = np.array([len(s[1]) for s in samples], dtype=np.int64)
    return lp, targets, inputs, lengths


def assert_close(actual: float, exact, scale: float, what: str) -> None:
    if exact == mp.inf:
        assert actual == np.inf, f"{what}: ref={actual!r}, mp=inf"
        return
    want = float(exact)
    assert abs(actual - want) <= RTOL * abs(want) + 64 * EPS * scale, (
        f"{what}: ref={actual!r} mp={want!r} diff={actual - want:.3g}")


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("index", range(len(SAMPLES)))
def test_each_sample_against_every_path(index: int) -> None:
    lp, labels, steps, blank = SAMPLES[index]
    loss = ref.ctc_loss(lp, np.array(labels, dtype=np.int64), np.array(steps),
                        np.array(len(labels)), blank=blank, reduction="none")
    assert loss.shape == ()
    assert_close(float(loss), mp_loss(lp, labels, steps, blank),
                 path_sums(lp, labels, steps, blank), f"sample {index}")


def test_a_batch_reads_each_sample_alone() -> None:
    """Samples of one blank batched together, padded and concatenated, in every reduction:
    each loss as alone, 'mean' = mean of loss / max(target length, 1), zero_infinity."""
    samples = [s for s in SAMPLES if s[3] == 0 and s[0].shape[1] == 3]
    lp, targets, inputs, lengths = batch(samples)
    exact = [mp_loss(s[0], s[1], s[2], 0) for s in samples]
    scales = [path_sums(s[0], s[1], s[2], 0) for s in samples]
    concatenated = np.concatenate([targets[n, :k] for n, k in enumerate(lengths)])
    for layout in (targets, concatenated):
        none = ref.ctc_loss(lp, layout, inputs, lengths, reduction="none")
        for n, (value, want, scale) in enumerate(zip(none, exact, scales, strict=True)):
            assert_close(float(value), want, scale, f"sample {n}")
        kept = [mp.mpf(0) if w == mp.inf else w for w in exact]
        zeroed = ref.ctc_loss(lp, layout, inputs, lengths, reduction="none", zero_infinity=True)
        assert np.array_equal(zeroed, np.where(np.isinf(none), 0.0, none))
        mean = mp.fsum(w / max(k, 1) for w, k in zip(kept, lengths, strict=True)) / len(kept)
        assert_close(float(ref.ctc_loss(lp, layout, inputs, lengths, zero_infinity=True)),
                     mean, max(scales), "mean")
        assert_close(float(ref.ctc_loss(lp, layout, inputs, lengths, reduction="sum",
                                        zero_infinity=True)),
                     mp.fsum(kept), sum(scales), "sum")
        assert float(ref.ctc_loss(lp, layout, inputs, lengths, reduction="sum")) == np.inf


def test_an_empty_batch() -> None:
    none = ref.ctc_loss(np.zeros((3, 0, 4)), np.zeros((0, 2), dtype=np.int64),
                        np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), reduction="none")
    assert none.shape == (0,)
    assert np.isnan(ref.ctc_loss(np.zeros((3, 0, 4)), np.zeros(0, dtype=np.int64),
                                 np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)))


@pytest.mark.parametrize("labels", [(1,), (1, 2), (1, 1), (2, 2, 2), (1, 2, 1), (2, 1, 1, 2)])
def test_the_shortest_alignment_is_the_only_path(labels: tuple[int, ...]) -> None:
    path = tuple(ref.ctc_shortest_alignment(np.array(labels), blank=0))
    shorter = [p for p in itertools.product(range(3), repeat=len(path) - 1)
               if collapse(p, 0) == labels]
    at_length = [p for p in itertools.product(range(3), repeat=len(path))
                 if collapse(p, 0) == labels]
    assert not shorter and at_length == [path]


@pytest.mark.parametrize("bad", [
    dict(targets=np.array([[3]])), dict(targets=np.array([[0]])),  # past C; the blank
    dict(input_lengths=np.array([5])), dict(blank=3),
])
def test_invalid_inputs_raise(bad: dict) -> None:
    call = dict(log_probs=rows_of(np.zeros((4, 1, 3))), targets=np.array([[1]]),
                input_lengths=np.array([4]), target_lengths=np.array([1]))
    blank = bad.pop("blank", 0)
    with pytest.raises(ValueError):
        ref.ctc_loss(**{**call, **bad}, blank=blank)


def _case(index: int) -> Case:
    lp, labels, steps, blank = SAMPLES[index]
    return Case({"log_probs": lp, "targets": np.array(labels, dtype=np.int64),
                 "input_lengths": np.array(steps), "target_lengths": np.array(len(labels))},
                {"blank": blank})


@pytest.mark.parametrize("index", [0, 1, 4, 7, 9, 12])
def test_the_gradient_propertys_derivatives_are_the_occupancies(index: int) -> None:
    """The engine's Richardson differences of the reference, along every coordinate, equal
    minus the exact posterior occupancies (so a gradient failure is the target's)."""
    spec = get_spec("ctc_loss")
    lp, labels, steps, blank = SAMPLES[index]
    exact = mp_occupancy(lp, labels, steps, blank)
    found = reference_derivatives(spec, _case(index), "log_probs", np.ones(()), None)
    assert len(found) == min(lp.size, 12)
    for flat, derivative in found:
        assert not derivative.kink
        assert abs(derivative.value - exact.flat[flat]) <= 1e-7 + 10 * derivative.error, (
            index, flat, derivative, exact.flat[flat])


@HYPOTHESIS
@given(st.data())
def test_hypothesis(data: st.DataObject) -> None:
    classes = data.draw(st.integers(2, 4))
    steps = data.draw(st.integers(1, 5 if classes < 4 else 4))
    blank = data.draw(st.integers(0, classes - 1))
    others = [c for c in range(classes) if c != blank]
    labels = tuple(data.draw(st.lists(st.sampled_from(others), max_size=3)))
    length = data.draw(st.integers(0, steps))
    scale = data.draw(st.sampled_from([1.0, 4.0, 50.0]))
    logits = np.array(data.draw(st.lists(st.floats(-3.0, 3.0), min_size=steps * classes,
                                         max_size=steps * classes))).reshape(steps, classes)
    lp = log_softmax(scale * logits)
    loss = ref.ctc_loss(lp[:, None], np.array([labels], dtype=np.int64).reshape(1, -1),
                        np.array([length]), np.array([len(labels)]), blank=blank,
                        reduction="none")
    assert_close(float(loss[0]), mp_loss(lp, labels, length, blank),
                 path_sums(lp, labels, length, blank), "drawn")
