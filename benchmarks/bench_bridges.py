"""What a framework bridge costs: per call, per example of a check, and per new input shape.

One loss, BCE with logits, written four ways (torch.nn.functional's, the NumPy and JAX ports of
tests/ports/losses.py, and Keras' BinaryCrossentropy(from_logits=True) through
implementations/adapters/keras_losses.py), is
called on the same float32 inputs through conformance.bridges. Prints, for each:

- call: microseconds per warm call of the target as the suite sees it (torch tensors in and
  out), and its forward + backward where the framework has gradients;
- first call of a new shape: what JAX's compilation adds (each drawn shape pays it once);
- per example: seconds of `conformance.check` (profile ci, float32, the values and gradient
  properties) divided by the examples those properties ran (values only for NumPy).

    python benchmarks/bench_bridges.py
    python benchmarks/bench_bridges.py --repeat 500 --shape 64 10
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import conformance
from conformance.bridges import bridged
from conformance.report import SKIPPED

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the ports the tests check
from tests.ports import losses

SPEC = "binary_cross_entropy_with_logits"


def targets() -> dict[str, Callable[..., Any]]:
    found: dict[str, Callable[..., Any]] = {
        "torch": F.binary_cross_entropy_with_logits,
        "numpy": bridged(losses.numpy_bce_with_logits, "numpy"),
    }
    if importlib.util.find_spec("jax") is not None:
        found["jax"] = bridged(losses.jax_bce_with_logits, "jax")
    if importlib.util.find_spec("keras") is not None:
        from implementations.adapters import keras_losses

        found["keras"] = keras_losses.binary_cross_entropy_with_logits
    return found


def _per_call(fn: Callable[..., Any], x: torch.Tensor, y: torch.Tensor, repeat: int,
              backward: bool) -> float:
    def once() -> None:
        xi = x.detach().requires_grad_(backward)
        out = fn(xi, y)
        if backward:
            out.backward()

    once()  # warm: compiled, cached
    start = time.perf_counter()
    for _ in range(repeat):
        once()
    return (time.perf_counter() - start) / repeat * 1e6


def _first_call(fn: Callable[..., Any], rows: int) -> float:
    x, y = torch.randn(rows, 3), torch.rand(rows, 3)
    start = time.perf_counter()
    fn(x, y)
    return time.perf_counter() - start


def _per_example(fn: Callable[..., Any]) -> tuple[float, int]:
    start = time.perf_counter()
    report = conformance.check(fn, SPEC, profile="ci", dtypes=("float32",), devices="cpu",
                               properties=["matches_reference", "gradient_matches_reference"])
    seconds = time.perf_counter() - start
    # A NumPy target's gradient property is n/a: its draws did no work there.
    examples = sum(r.drawn for r in report.results if r.status != SKIPPED)
    return seconds / max(examples, 1), examples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--shape", type=int, nargs="+", default=[8, 4])
    args = parser.parse_args(argv)
    x, y = torch.randn(*args.shape), torch.rand(*args.shape)
    print(f"{SPEC}, float32 inputs of shape {tuple(args.shape)}, {args.repeat} warm calls each")
    print(f"{'framework':10} {'call us':>9} {'call+grad us':>13} {'new shape s':>12} "
          f"{'check s/example':>16} {'examples':>9}")
    _per_example(F.binary_cross_entropy_with_logits)  # warm: imports, the reference's caches
    for name, fn in targets().items():
        call = _per_call(fn, x, y, args.repeat, backward=False)
        grad = "n/a" if name == "numpy" else f"{_per_call(fn, x, y, args.repeat, True):.0f}"
        first = _first_call(fn, rows=args.shape[0] + 13)
        per_example, examples = _per_example(fn)
        print(f"{name:10} {call:9.0f} {grad:>13} {first:12.3f} {per_example:16.4f} "
              f"{examples:9d}")


if __name__ == "__main__":
    main()
