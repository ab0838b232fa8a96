"""timm.loss's cross-entropy modules under cross_entropy's call.

LabelSmoothingCrossEntropy(smoothing) is torch's cross_entropy with label_smoothing for (N, C)
logits and class indices, reduced by 'mean' only; SoftTargetCrossEntropy is the probability-
target form, without smoothing. Neither has class weights or ignore_index, nor K-dimensional
inputs, and its constructor asserts smoothing < 1 (torch allows 1.0): those combinations are
not applicable, never counted as passes or failures.
"""

from __future__ import annotations

import torch

from conformance.guard import NotApplicable
from implementations.adapters import LIBRARY_DEFAULT, adapts, given
from implementations.sources import Sources

_TIMM = Sources("timm.loss", ("cross_entropy",))


@adapts("cross_entropy", library="timm", reductions=("mean",))
def cross_entropy(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                  ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = LIBRARY_DEFAULT) -> torch.Tensor:
    if reduction != "mean":
        raise NotApplicable(f"timm's cross-entropy losses reduce by 'mean' only, not {reduction!r}")
    if weight is not None:
        raise NotApplicable("timm's cross-entropy losses have no class weights")
    if input.dim() != 2:
        raise NotApplicable("timm's cross-entropy losses take (N, C) logits only")
    if target.is_floating_point():
        if label_smoothing is not LIBRARY_DEFAULT and label_smoothing:
            raise NotApplicable("SoftTargetCrossEntropy has no label smoothing")
        return _TIMM["cross_entropy"].SoftTargetCrossEntropy()(input, target)
    if bool((target == ignore_index).any()):
        raise NotApplicable("timm's cross-entropy losses have no ignore_index")
    if label_smoothing is not LIBRARY_DEFAULT and label_smoothing >= 1.0:
        # its constructor asserts smoothing < 1.0
        raise NotApplicable("timm's LabelSmoothingCrossEntropy takes smoothing < 1 only")
    smoothed = _TIMM["cross_entropy"].LabelSmoothingCrossEntropy(**given(smoothing=label_smoothing))
    return smoothed(input, target)

