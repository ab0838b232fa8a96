"""torchvision.ops' loss functions and box metrics, as torchvision computes them.

Where `import torchvision` works, its functions are used as they are. Where it fails, this module
loads only the pure-Python submodules it needs. That happens with the CUDA torchvision wheel
against a CPU torch: `torchvision/__init__.py` registers compiled operators and raises "operator
torchvision::nms does not exist". The submodules (focal_loss, giou_loss, diou_loss, ciou_loss,
boxes) are then loaded by implementations.sources, so the compiled part never runs and the
functions compute exactly what torchvision's code says.

Install: `pip install --no-deps torchvision pillow` (pillow: torchvision.utils needs it). Import
this module only through `conformance` targets; it raises ImportError when torchvision is absent.
"""

from __future__ import annotations

from implementations.sources import import_sources

SUBMODULES = ("focal_loss", "giou_loss", "diou_loss", "ciou_loss", "boxes")
_OPS = import_sources("torchvision.ops", SUBMODULES)

sigmoid_focal_loss = _OPS["focal_loss"].sigmoid_focal_loss
generalized_box_iou_loss = _OPS["giou_loss"].generalized_box_iou_loss
distance_box_iou_loss = _OPS["diou_loss"].distance_box_iou_loss
complete_box_iou_loss = _OPS["ciou_loss"].complete_box_iou_loss
box_iou = _OPS["boxes"].box_iou
generalized_box_iou = _OPS["boxes"].generalized_box_iou
