"""torchvision.ops' loss functions and box metrics, as torchvision computes them.

Where `import torchvision` works, its functions are used as they are. Where it fails, this module
loads only the pure-Python submodules it needs. That happens with the CUDA torchvision wheel
against a CPU torch: `torchvision/__init__.py` registers compiled operators and raises "operator
torchvision::nms does not exist". The submodules are focal_loss, giou_loss, diou_loss, ciou_loss
and boxes. They are loaded under empty namespace packages for `torchvision` and
`torchvision.ops`, so the compiled part never runs and the functions compute exactly what
torchvision's code says.

Install: `pip install --no-deps torchvision pillow` (pillow: torchvision.utils needs it). Import
this module only through `conformance` targets; it raises ImportError when torchvision is absent.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

SUBMODULES = ("focal_loss", "giou_loss", "diou_loss", "ciou_loss", "boxes")


def _load_ops() -> dict[str, types.ModuleType]:
    try:
        import torchvision.ops as ops  # noqa: F401  (the normal, working installation)

        return {name: importlib.import_module(f"torchvision.ops.{name}") for name in SUBMODULES}
    except ImportError:
        raise
    except Exception:  # the compiled extension failed to register: fall back to the sources
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
    found = importlib.util.find_spec("torchvision")
    if found is None or found.origin is None:
        raise ImportError("torchvision is not installed")
    root = Path(found.origin).parent
    for name, path in (("torchvision", root), ("torchvision.ops", root / "ops")):
        stub = types.ModuleType(name)
        stub.__path__ = [str(path)]  # a package whose __init__ never runs
        sys.modules[name] = stub
    return {name: importlib.import_module(f"torchvision.ops.{name}") for name in SUBMODULES}


_OPS = _load_ops()

sigmoid_focal_loss = _OPS["focal_loss"].sigmoid_focal_loss
generalized_box_iou_loss = _OPS["giou_loss"].generalized_box_iou_loss
distance_box_iou_loss = _OPS["diou_loss"].distance_box_iou_loss
complete_box_iou_loss = _OPS["ciou_loss"].complete_box_iou_loss
box_iou = _OPS["boxes"].box_iou
generalized_box_iou = _OPS["boxes"].generalized_box_iou
