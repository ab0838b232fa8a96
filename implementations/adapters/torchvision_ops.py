"""torchvision.ops' loss functions and box metrics, as torchvision computes them.

These are torchvision's own functions, taken as they are (the specs' calls are theirs). Where
`import torchvision` works, they come from it. Where it fails, only the pure-Python submodules
they live in are loaded. That happens with the CUDA torchvision wheel against a CPU torch:
`torchvision/__init__.py` registers compiled operators and raises "operator torchvision::nms
does not exist". The submodules (focal_loss, giou_loss, diou_loss, ciou_loss, boxes) are then
loaded by implementations.sources, so the compiled part never runs and the functions compute
exactly what torchvision's code says.

Install: `pip install --no-deps torchvision pillow` (pillow: torchvision.utils needs it). The
functions are imported on first use (the module's `__getattr__`); without torchvision, that
raises LibraryMissing, an ImportError.
"""

from __future__ import annotations

from typing import Any

from implementations.adapters import reexports
from implementations.sources import Sources

# attribute -> (torchvision.ops submodule, the spec it computes)
_FUNCTIONS = {
    "sigmoid_focal_loss": ("focal_loss", "sigmoid_focal_loss"),
    "generalized_box_iou_loss": ("giou_loss", "generalized_box_iou_loss"),
    "distance_box_iou_loss": ("diou_loss", "distance_box_iou_loss"),
    "complete_box_iou_loss": ("ciou_loss", "complete_box_iou_loss"),
    "box_iou": ("boxes", "box_iou"),
    "generalized_box_iou": ("boxes", "generalized_box_iou"),
}
_OPS = Sources("torchvision.ops", sorted({sub for sub, _ in _FUNCTIONS.values()}))

reexports(__name__, "torchvision", {attr: spec for attr, (_, spec) in _FUNCTIONS.items()})


def __getattr__(name: str) -> Any:
    if name not in _FUNCTIONS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(_OPS[_FUNCTIONS[name][0]], name)


def __dir__() -> list[str]:
    return sorted([*(name for name in globals() if not name.startswith("_")), *_FUNCTIONS])
