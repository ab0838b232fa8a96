"""Import a library's pure-Python loss modules even where its package `__init__` cannot run.

Several libraries' top-level imports pull in what this machine cannot load: torchvision's CUDA
build registers compiled operators a CPU torch lacks ("operator torchvision::nms does not
exist"), timm and segmentation_models_pytorch import that torchvision, pytorch_toolbelt imports
OpenCV. Their loss modules need torch only. Where the normal import fails, the modules are
imported under empty stand-ins for their parent packages (packages whose `__init__` never runs),
so the functions are the library's own code, unchanged.

Adapters hold their library as `Sources`, imported on first use: an adapter module imports
(and registers its targets) whether or not its library is installed, and listing the adapters
never pays for importing JAX or monai.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path


class LibraryMissing(ImportError):
    """The library is not installed: its adapter's targets are skipped, not failed."""


def import_sources(package: str, modules: Sequence[str],
                   helpers: Mapping[str, Sequence[str]] | None = None,
                   ) -> dict[str, types.ModuleType]:
    """`package.m` for each m in `modules`, by a normal import where it works.

    helpers: other packages of the library that the loss modules import from, each with the
    submodules whose public names its `__init__` re-exports (`from .support import *`); where
    the normal import fails, they get stand-ins carrying those names only.
    """
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
        _stand_in(".".join(parts[:depth]), root.joinpath(*parts[1:depth]))
    for name, reexported in (helpers or {}).items():
        stub = _stand_in(name, root.joinpath(*name.split(".")[1:]))
        for sub in reexported:
            module = importlib.import_module(f"{name}.{sub}")
            public = getattr(module, "__all__", [n for n in vars(module) if not n.startswith("_")])
            for attr in public:
                setattr(stub, attr, getattr(module, attr))
    return {m: importlib.import_module(f"{package}.{m}") for m in modules}


class Sources:
    """`import_sources(package, modules, helpers)`, run on the first lookup: `sources["focal"]` is
    the module `package.focal`, and raises LibraryMissing while the library is not installed.

    quiet: warning categories the library's own import emits that are noise, not results.
    """

    def __init__(self, package: str, modules: Sequence[str],
                 helpers: Mapping[str, Sequence[str]] | None = None,
                 quiet: tuple[type[Warning], ...] = ()) -> None:
        self.package, self.modules, self.helpers, self.quiet = (
            package, tuple(modules), helpers, quiet)
        self._loaded: dict[str, types.ModuleType] | None = None

    def __getitem__(self, module: str) -> types.ModuleType:
        if self._loaded is None:
            with warnings.catch_warnings():
                for category in self.quiet:
                    warnings.simplefilter("ignore", category)
                self._loaded = import_sources(self.package, self.modules, self.helpers)
        return self._loaded[module]

    def __repr__(self) -> str:
        state = "imported" if self._loaded is not None else "not imported yet"
        return f"Sources({self.package!r}, {self.modules!r}; {state})"


def installed(module: str) -> bool:
    """Whether `module`'s top-level package can be imported (without importing it)."""
    return importlib.util.find_spec(module.split(".")[0]) is not None


def _stand_in(name: str, location: Path) -> types.ModuleType:
    """An empty package `name` at `location` whose `__init__` never runs."""
    stub = types.ModuleType(name)
    stub.__path__ = [str(location)]
    # A spec, so that importlib.util.find_spec(name) keeps working on the stand-in.
    stub.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
    stub.__spec__.submodule_search_locations = [str(location)]
    sys.modules[name] = stub
    return stub


def version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _version

    try:
        return _version(distribution)
    except PackageNotFoundError:
        return "not installed"
