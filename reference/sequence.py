"""Sequence losses in float64: connectionist temporal classification (CTC).

Conventions follow ``torch.nn.functional.ctc_loss``: argument names and defaults, log_probs of
shape (T, N, C) (or (T, C) for one unbatched sample), targets padded (N, S) or concatenated
(sum of the target lengths,), and the reductions: 'none' gives each sample's loss (0-d when
unbatched), 'sum' their sum, 'mean' the mean over the batch of each loss divided by its target
length clamped to at least 1 (0/0 = nan over a batch of 0). The log-probabilities are used as
they are given: nothing renormalizes a row that is not a log-softmax. Every function returns a
float64 array.
"""

from __future__ import annotations

import numpy as np

from reference.reduction import check_reduction, reduce

__all__ = ["ctc_label_rows", "ctc_loss", "ctc_shortest_alignment"]


def ctc_label_rows(targets: np.ndarray, target_lengths: np.ndarray,
                   batch: int) -> np.ndarray:
    """The target sequences as an (N, S) array, one row a sample (entries past a sample's
    length are padding, never read): padded targets as they are, concatenated ones (1-D, the
    samples' labels one after the other) cut at the cumulated lengths."""
    y = np.asarray(targets)
    lengths = np.asarray(target_lengths, dtype=np.int64).reshape(-1)
    if y.ndim == 2:
        if y.shape[0] != batch:
            raise ValueError(f"padded targets have {y.shape[0]} rows for a batch of {batch}")
        if np.any(lengths > y.shape[1]):
            raise ValueError(f"a target length exceeds the padded length {y.shape[1]}")
        return y.astype(np.int64)
    if y.ndim != 1:
        raise ValueError(f"targets must be (N, S) or concatenated (sum(lengths),), got {y.shape}")
    if y.size != int(lengths.sum()):
        raise ValueError(f"concatenated targets hold {y.size} labels, the lengths sum to"
                         f" {int(lengths.sum())}")
    rows = np.zeros((batch, int(lengths.max(initial=0))), dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    for n, (start, length) in enumerate(zip(starts, lengths, strict=True)):
        rows[n, :length] = y[start:start + length]
    return rows


def ctc_shortest_alignment(labels: np.ndarray, blank: int = 0) -> np.ndarray:
    """The one alignment of a label sequence in the fewest steps: each label once, and a blank
    between two equal neighbours only (the collapse would merge them otherwise). Its length,
    len(labels) + the number of adjacent repeats, is the shortest input a target can have; at
    that length no other path collapses to the target."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    path: list[int] = []
    for i, label in enumerate(labels):
        if i > 0 and labels[i - 1] == label:
            path.append(blank)
        path.append(int(label))
    return np.asarray(path, dtype=np.int64)


def _forward_log_likelihood(log_probs: np.ndarray, rows: np.ndarray, target_lengths: np.ndarray,
                            input_lengths: np.ndarray, blank: int) -> np.ndarray:
    """log p(target | log_probs) of each sample: the forward recursion of Graves et al. (2006,
    eq. 6-8) over the extended sequence l' = (blank, l_1, blank, l_2, ..., l_S, blank), in log
    space and vectorized over the batch.

        alpha_0(0) = y_0(blank),  alpha_0(1) = y_0(l'_1)
        alpha_t(s) = y_t(l'_s) + log(e^alpha_{t-1}(s) + e^alpha_{t-1}(s-1)
                                     + [l'_s != blank and l'_s != l'_{s-2}] e^alpha_{t-1}(s-2))
        log p = logaddexp(alpha_{L-1}(2S), alpha_{L-1}(2S - 1))

    with y_t(k) = log_probs[t, n, k], L the sample's input length, S its target length; an
    input of length 0 aligns only the empty target (log p = 0). A sample's recursion stops at
    its own length, so steps past it are never read.
    """
    steps, batch, _ = log_probs.shape
    width = 2 * rows.shape[1] + 1
    extended = np.full((batch, width), blank, dtype=np.int64)
    extended[:, 1::2] = rows
    # Entries past a sample's target are padding: any class index will do (states above 2S
    # never feed the states read at the end: transitions only move up the sequence).
    extended = np.where(np.arange(width) <= 2 * target_lengths[:, None], extended, blank)
    # The skip from s - 2 to s: onto a label, from a different label (never blank to blank).
    skip = np.zeros((batch, width), dtype=bool)
    skip[:, 3::2] = rows[:, 1:] != rows[:, :-1]
    log_likelihood = np.where(target_lengths == 0, 0.0, -np.inf)  # input length 0
    if steps == 0:
        return log_likelihood
    emit = np.take_along_axis(log_probs, extended[None], axis=2)  # (T, N, 2S + 1)
    alpha = np.full((batch, width), -np.inf)
    alpha[:, :2] = emit[0, :, :2]
    none = np.full((batch, 2), -np.inf)
    for t in range(1, int(input_lengths.max(initial=0))):
        previous = np.concatenate([none[:, :1], alpha[:, :-1]], axis=1)
        before = np.where(skip, np.concatenate([none, alpha[:, :-2]], axis=1), -np.inf)
        moved = np.logaddexp(np.logaddexp(alpha, previous), before) + emit[t]
        alpha = np.where((t < input_lengths)[:, None], moved, alpha)
    last = np.take_along_axis(alpha, 2 * target_lengths[:, None], axis=1)[:, 0]
    label = np.take_along_axis(alpha, np.maximum(2 * target_lengths - 1, 0)[:, None], axis=1)
    label = np.where(target_lengths > 0, label[:, 0], -np.inf)
    return np.where(input_lengths > 0, np.logaddexp(last, label), log_likelihood)


def ctc_loss(
    log_probs: np.ndarray,
    targets: np.ndarray,
    input_lengths: np.ndarray,
    target_lengths: np.ndarray,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> np.ndarray:
    """Connectionist temporal classification loss (Graves et al. 2006;
    torch.nn.functional.ctc_loss): the negative log-probability of a target sequence summed
    over every alignment, a path of one class per input step that collapses to the target
    once repeats are merged and blanks removed.

        l_n = -log sum_{pi in B^-1(y_n), |pi| = L_n} prod_{t < L_n} exp(log_probs[t, n, pi_t])

    computed by the forward recursion (`_forward_log_likelihood`). l_n is inf where no
    alignment exists (L_n < S_n + the number of adjacent repeats in y_n); zero_infinity=True
    makes those losses 0. 'mean' = mean_n l_n / max(S_n, 1).

    Accuracy: every alpha is a logaddexp of at most three terms plus a log-probability, each
    correctly rounded up to a few ulps of its size, and nothing is subtracted but inside
    logaddexp (max + log1p(exp(-|a - b|)), exact in the small term). The error after L steps is
    therefore a few ulps of the sum over the steps of |alpha_t|, itself at most the sum of the
    log-probabilities read plus log 3 a step: an absolute error, which is the loss's own scale
    unless the alignments' probabilities sum to nearly 1 (a loss near 0 from log-probabilities
    that are not).
    """
    check_reduction(reduction)
    lp = np.asarray(log_probs, dtype=np.float64)
    unbatched = lp.ndim == 2
    if unbatched:
        lp = lp[:, None, :]
    if lp.ndim != 3:
        raise ValueError(f"log_probs must be (T, N, C) or (T, C), got shape {lp.shape}")
    steps, batch, classes = lp.shape
    inputs = np.asarray(input_lengths, dtype=np.int64).reshape(-1)
    lengths = np.asarray(target_lengths, dtype=np.int64).reshape(-1)
    if inputs.shape != (batch,) or lengths.shape != (batch,):
        raise ValueError(f"input_lengths {inputs.shape} and target_lengths {lengths.shape}"
                         f" must hold one length per sample ({batch})")
    if not 0 <= blank < classes:
        raise ValueError(f"blank {blank} is not a class of {classes}")
    if np.any(inputs < 0) or np.any(inputs > steps) or np.any(lengths < 0):
        raise ValueError(f"input lengths must lie in [0, {steps}], target lengths be >= 0")
    rows = ctc_label_rows(targets, lengths, batch)
    used = np.arange(rows.shape[1]) < lengths[:, None]
    if np.any(used & ((rows < 0) | (rows >= classes) | (rows == blank))):
        raise ValueError(f"target labels must be classes in [0, {classes}) other than the"
                         f" blank {blank}")
    with np.errstate(invalid="ignore"):
        losses = -_forward_log_likelihood(lp, rows, lengths, inputs, blank)
    if zero_infinity:
        losses = np.where(np.isinf(losses), 0.0, losses)
    if unbatched and reduction == "none":
        return np.asarray(losses[0])
    # 'mean': each loss over its own clamped target length, then the plain mean.
    return reduce(losses, reduction, np.maximum(lengths, 1).astype(np.float64))
