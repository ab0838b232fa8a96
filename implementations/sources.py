"""Import a library's pure-Python loss modules even where its package `__init__` cannot run.

Several libraries' top-level imports pull in what this machine cannot load: torchvision's CUDA
build registers compiled operators a CPU torch lacks ("operator torchvision::nms does not
exist"), timm and segmentation_models_pytorch import that torchvision, pytorch_toolbelt imports
OpenCV. Their loss modules need torch only. Where the normal import fails, the modules are
imported under empty stand-ins for their parent packages (packages whose `__init__` never runs),
so the functions are the library's own code, unchanged.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Sequence
from pathlib import Path


class LibraryMissing(ImportError):
    """The library is not installed: its adapter's targets are skipped, not failed."""


def import_sources(package: str, modules: Sequence[str]) -> dict[str, types.ModuleType]:
    """`package.m` for each m in `modules`, by a normal import where it works."""
    top = package.split(".")[0]
    if importlib.util.find_spec(top) is None:
        raise LibraryMissing(f"{top} is not installed")
    try:
        return {m: importlib.import_module(f"{package}.{m}") for m in modules}
    except Exception:
        for name in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
            del sys.modules[name]
    found = importlib.util.find_spec(top)
    assert found is not None and found.submodule_search_locations is not None
    root = Path(next(iter(found.submodule_search_locations)))
    parts = package.split(".")
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        location = str(root.joinpath(*parts[1:depth]))
        stub = types.ModuleType(name)
        stub.__path__ = [location]
        # A spec, so that importlib.util.find_spec(name) keeps working on the stand-in.
        stub.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
        stub.__spec__.submodule_search_locations = [location]
        sys.modules[name] = stub
    return {m: importlib.import_module(f"{package}.{m}") for m in modules}


def version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _version

    try:
        return _version(distribution)
    except PackageNotFoundError:
        return "not installed"
