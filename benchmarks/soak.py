"""Soak: every built-in conforming target under many random seeds, counting what nothing explains.

A conforming target must never fail: each failure a soak finds is either a real defect of the
target (then a deviation entry with a finding and a named edge case) or a defect of the suite
(then fixed, with a test). It also counts the drawn cases whose reference was undefined (NaN or
inf where the spec declares none): each is a gap in a spec's domain.

    python benchmarks/soak.py --examples 100000 --jobs 2
    python benchmarks/soak.py --seeds 3 --spec generalized_box_iou_loss

A script that prints figures, not a test. Seeds are explicit (1, 2, ...), so any finding
re-runs with `python -m conformance check TARGET --spec NAME --seed S --profile default`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from collections import Counter
from dataclasses import dataclass, field

import torch

from conformance import deviations
from conformance.catalog import all_specs, get_spec
from conformance.cli import builtin_targets, load_target
from conformance.report import ERROR, FAILED
from conformance.runner import check
from conformance.spec import UNDEFINED_REFERENCE


@dataclass
class Tally:
    runs: int = 0
    examples: int = 0
    cells: int = 0
    known: int = 0
    seconds: float = 0.0
    outside: Counter[str] = field(default_factory=Counter)
    undefined: list[str] = field(default_factory=list)
    unexplained: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.runs += other.runs
        self.examples += other.examples
        self.cells += other.cells
        self.known += other.known
        self.seconds += other.seconds
        self.outside.update(other.outside)
        self.undefined += other.undefined
        self.unexplained += other.unexplained


def soak_one(job: tuple[str, str, int, str]) -> Tally:
    spec_name, path, seed, profile = job
    torch.set_num_threads(1)
    tally = Tally(runs=1)
    try:
        fn = load_target(path)
    except Exception as exc:  # a library that is not installed: nothing to soak
        tally.runs = 0
        tally.outside[f"not loaded: {exc}"] += 1
        return tally
    entries = deviations.builtin()
    start = time.perf_counter()
    report = check(fn, spec_name, profile=profile, seed=seed, target_path=path, known=entries,
                   devices="cpu")
    tally.seconds = time.perf_counter() - start
    outcome = deviations.apply([report], entries, complete=False)
    tally.known = len(outcome.known)
    for r in report.results:
        tally.cells += 1
        tally.examples += r.examples
        tally.outside.update(r.outside)
        if r.outside.get(UNDEFINED_REFERENCE):
            tally.undefined.append(f"{path} {spec_name}/{r.property} [{r.dtype}] seed {seed}:"
                                   f" {r.outside[UNDEFINED_REFERENCE]} cases")
        if r.status in (FAILED, ERROR):
            what = str(r.failure) if r.failure else f"error: {r.reason}"
            tally.unexplained.append(f"--- {path} seed {seed}\n{what}")
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000,
                        help="stop after the seed in which this many examples were reached")
    parser.add_argument("--seeds", type=int, default=None, help="exactly this many seeds")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--spec", action="append", help="only this spec; repeatable")
    parser.add_argument("--profile", default="default")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    specs = [get_spec(s) for s in args.spec] if args.spec else all_specs()
    pairs = builtin_targets(specs)
    total = Tally()
    start = time.perf_counter()
    seed = args.first_seed
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        while True:
            jobs = [(spec.name, path, seed, args.profile) for spec, path in pairs]
            for tally in pool.imap_unordered(soak_one, jobs):
                total.add(tally)
                for line in tally.unexplained:
                    print(line, flush=True)
            print(f"seed {seed}: {total.examples} examples so far,"
                  f" {len(total.unexplained)} unexplained failures,"
                  f" {time.perf_counter() - start:.0f}s", flush=True)
            seed += 1
            done = seed - args.first_seed
            if (args.seeds is not None and done >= args.seeds) or (
                    args.seeds is None and total.examples >= args.examples):
                break
    wall = time.perf_counter() - start
    print()
    print(f"soak: {len(pairs)} targets x {seed - args.first_seed} seeds"
          f" ({args.first_seed}..{seed - 1}), profile {args.profile}")
    print(f"  {total.runs} checks, {total.cells} cells, {total.examples} examples,"
          f" {total.known} known deviations, {wall:.0f}s wall ({args.jobs} jobs)")
    print(f"  unexplained failures: {len(total.unexplained)}")
    print(f"  undefined-reference cases (gaps in a spec's domain):"
          f" {total.outside[UNDEFINED_REFERENCE]}")
    for line in total.undefined:
        print(f"    {line}")
    print("  outside the domain, by reason:")
    for why, n in total.outside.most_common():
        print(f"    {n:8d}  {why}")
    return 1 if total.unexplained or total.undefined else 0


if __name__ == "__main__":
    raise SystemExit(main())
