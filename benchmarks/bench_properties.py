"""Where a conformance run spends its time, per spec (x property) x dtype.

For each spec's first built-in implementation, on the CPU, in float32 and float16 (--dtype),
prints the examples run, examples per second, and the share of wall time spent inside the
target, inside the float64 reference, and in the engine (everything else: Hypothesis, case
generation, comparisons, reproducer building). By default a row is one spec's whole check in a
dtype, as users run it (the properties share their draws: conformance.cells); --per-property
runs each property alone, the worst case for the engine's share, since nothing is shared.

    python benchmarks/bench_properties.py --profile ci
    python benchmarks/bench_properties.py --spec cross_entropy --max-examples 200 --per-property
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

import conformance
from conformance import deviations, timing
from conformance.cli import load_target
from conformance.profiles import PROFILES
from conformance.properties.registry import properties_of

DTYPES = ("float32", "float16")
KNOWN = deviations.builtin()
ALL = "(all, shared draws)"


@dataclass
class Row:
    spec: str
    prop: str
    verdict: str
    examples: int
    wall: float
    target: float
    reference: float

    @property
    def engine(self) -> float:
        return self.wall - self.target - self.reference


def measure(
    fn: object, spec: conformance.LossSpec, prop: str, dtype: str, profile: str,
    max_examples: int | None, path: str = "",
) -> Row:
    """One check of `prop` (ALL: every property, together) in `dtype`, judged as the CLI
    judges it: with the project's accepted deviations (a known defect is not shrunk)."""
    before = timing.snapshot()
    start = time.perf_counter()
    # devices="cpu": with CUDA present 'auto' would add a second device and mix two timings.
    report = conformance.check(fn, spec, properties=None if prop == ALL else [prop],
                               dtypes=[dtype], devices="cpu", profile=profile,
                               max_examples=max_examples, target_path=path or None,
                               known=KNOWN)
    wall = time.perf_counter() - start
    after = timing.snapshot()
    deviations.apply([report], KNOWN, complete=False)
    verdicts = sorted({r.verdict() for r in report.results})
    return Row(
        spec=spec.name,
        prop=f"{prop} [{dtype}]",
        verdict="/".join(verdicts),
        examples=sum(r.examples for r in report.results),
        wall=wall,
        target=after["target"] - before["target"],
        reference=after["reference"] - before["reference"],
    )


def _share(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole > 0 else "-"


def _per_example(seconds: float, examples: int) -> str:
    return f"{1000 * seconds / examples:.2f}" if examples else "-"


def _rate(examples: int, wall: float) -> str:
    return f"{examples / wall:.1f}" if wall > 0 else "-"


def format_table(rows: Sequence[Row]) -> str:
    header = ("spec", "property", "verdict", "examples", "ex/s", "wall s", "target",
              "reference", "engine", "engine ms/ex")
    total = Row("TOTAL", "", "", sum(r.examples for r in rows), sum(r.wall for r in rows),
                sum(r.target for r in rows), sum(r.reference for r in rows))
    body = [
        (r.spec, r.prop, r.verdict, str(r.examples), _rate(r.examples, r.wall), f"{r.wall:.3f}",
         _share(r.target, r.wall), _share(r.reference, r.wall), _share(r.engine, r.wall),
         _per_example(r.engine, r.examples))
        for r in [*rows, total]
    ]
    table = [header, *body]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    numeric = set(range(3, len(header)))  # right-align numbers so their digits line up

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()

    rule = "-" * len(line(header))
    return "\n".join([line(header), rule, *(line(r) for r in body[:-1]), rule, line(body[-1])])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=list(PROFILES), default="default")
    parser.add_argument("--spec", dest="specs", action="append",
                        help="only this spec; repeatable (default: every spec)")
    parser.add_argument("--max-examples", type=int, default=None,
                        help="examples per property (overrides the profile)")
    parser.add_argument("--dtype", dest="dtypes", action="append",
                        help=f"dtype; repeatable (default: {', '.join(DTYPES)})")
    parser.add_argument("--per-property", action="store_true",
                        help="each property alone (no shared draws)")
    args = parser.parse_args(argv)
    dtypes = args.dtypes or DTYPES

    # One intra-op thread: shares stay comparable between machines and runs, and a target's
    # time is not inflated by thread start-up on tiny tensors.
    torch.set_num_threads(1)
    try:
        specs = ([conformance.get_spec(n) for n in args.specs] if args.specs
                 else conformance.all_specs())
    except conformance.UnknownSpec as exc:
        parser.error(str(exc))

    targets = []
    for spec in specs:
        if not spec.implementations:
            print(f"{spec.name}: no built-in implementation; skipped", file=sys.stderr)
            continue
        targets.append((spec, spec.implementations[0], load_target(spec.implementations[0])))
    if not targets:
        parser.error("nothing to measure")

    # Warm-up outside the measurements: a process pays once for lazy imports and for torch's
    # first call down each kernel path (BCE's first call with `weight` alone costs ~0.2 s),
    # which would be charged to whichever row met it first. One unmeasured pass of each
    # target's first property, with the same examples, reaches those paths.
    for spec, path, fn in targets:
        measure(fn, spec, properties_of(spec)[0].name, dtypes[0], args.profile,
                args.max_examples, path)

    rows = [measure(fn, spec, prop, dtype, args.profile, args.max_examples, path)
            for spec, path, fn in targets for dtype in dtypes
            for prop in ([p.name for p in properties_of(spec)] if args.per_property
                         else [ALL])]
    generated = args.max_examples or PROFILES[args.profile]["max_examples"]
    print(f"profile {args.profile}: up to {generated} generated examples per property, plus"
          f" the spec's edge cases; cpu, torch {torch.__version__},"
          f" {torch.get_num_threads()} thread")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
