"""float64 NumPy/SciPy ground truth; never imports torch."""

from reference.classification import (
    balanced_bce_weights,
    balanced_binary_cross_entropy_with_logits,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    class_index_weight_sum,
    cross_entropy,
    kl_div,
    log_softmax,
    nll_loss,
    quality_focal_loss,
    sigmoid_focal_loss,
    softmax_focal_loss,
)
from reference.reduction import reduce

__all__ = [
    "balanced_bce_weights",
    "balanced_binary_cross_entropy_with_logits",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "class_index_weight_sum",
    "cross_entropy",
    "kl_div",
    "log_softmax",
    "nll_loss",
    "quality_focal_loss",
    "reduce",
    "sigmoid_focal_loss",
    "softmax_focal_loss",
]
