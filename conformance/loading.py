"""Import a named object: 'package.module:attr', 'package.module.attr' or 'file.py:attr'.

Targets and user-declared specs are both named this way, on the command line, in a parallel
worker and in a reproducer.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any


class LoadError(ValueError):
    """The path names no module, or the module no such attribute."""


def load_attribute(path: str) -> Any:
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise LoadError(f"{path!r} is not MODULE:ATTR (for example torch.nn.functional:mse_loss)")
    # A user's local module, as `python -m` would see it; a file's own folder for its imports.
    folder = str(Path(module_name).resolve().parent) if module_name.endswith(".py") else str(
        Path.cwd())
    sys.path.insert(0, folder)
    try:
        module = _module(module_name)
    except LoadError:
        raise
    except Exception as exc:
        raise LoadError(
            f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from exc
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise LoadError(f"module {module_name!r} has no attribute {attr!r}") from None
        except ImportError as exc:  # a module that imports its library on first use
            raise LoadError(f"cannot import {path!r}: {exc}") from exc
    missing = missing_requirements(obj)
    if missing:
        raise LoadError(f"{path!r} needs {', '.join(missing)}, which"
                        f" {'is' if len(missing) == 1 else 'are'} not installed")
    return obj


def missing_requirements(fn: Any) -> list[str]:
    """The modules a target declares it imports on its first call (`fn.conformance_requires`,
    as adapters do) that cannot be imported here."""
    required = getattr(fn, "conformance_requires", None) or ()
    return [name for name in required if importlib.util.find_spec(name.split(".")[0]) is None]


def _module(module_name: str) -> Any:
    if not module_name.endswith(".py"):
        return importlib.import_module(module_name)
    name = Path(module_name).stem
    already = sys.modules.get(name)
    if already is not None and Path(getattr(already, "__file__", "") or "").resolve() == Path(
            module_name).resolve():
        return already  # a target and its spec in one file: one module, one set of objects
    file_spec = importlib.util.spec_from_file_location(name, module_name)
    if file_spec is None or file_spec.loader is None:
        raise LoadError(f"cannot load {module_name!r}")
    module = importlib.util.module_from_spec(file_spec)
    sys.modules[name] = module  # dataclasses and pickling look a module up by name
    file_spec.loader.exec_module(module)
    return module
