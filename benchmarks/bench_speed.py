"""The speed targets of issue 12, measured before and after in one run.

Each figure is a command's wall time, run in a fresh process on this tree and, with
--baseline REV, on that revision too (extracted with `git archive` to a temporary folder; the
same machine, the same minute), so that the ratio holds where absolute times drift.

    python benchmarks/bench_speed.py                       # this tree only
    python benchmarks/bench_speed.py --baseline ac2672e    # before / after / ratio
    python benchmarks/bench_speed.py --only run-ci --only check-default

Figures (targets for a 2-core machine):
    run-ci          python -m conformance run --profile ci               <= 120 s
    run-default     python -m conformance run --profile default          <= 300 s
    matrix-ci       python -m conformance run --libraries --profile ci   <= 300 s
    check-default   the slowest single `check` of one spec's first implementation,
                    default profile, every spec in turn                   <= 30 s
    check-focal-ci, check-giou-ci   one check in one process (ci profile), cheap enough to
                    time against any baseline
The engine's share of a check's time is benchmarks/bench_properties.py's (<= 50%).

A command that outlives --limit is stopped and shown as "> limit" (a baseline may take hours).
Commands on this tree use `-n WORKERS` (default: every CPU); a baseline without the option runs
in one process, as it had nothing else.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Figure:
    name: str
    target: float  # seconds
    args: tuple[str, ...]  # after `python -m conformance`
    parallel: bool = True  # takes -n


FIGURES = {
    f.name: f for f in (
        Figure("run-ci", 120, ("run", "--profile", "ci")),
        Figure("run-default", 300, ("run", "--profile", "default")),
        Figure("matrix-ci", 300, ("run", "--libraries", "--profile", "ci")),
        # One target, one process: cheap enough to time a baseline beside it.
        Figure("check-focal-ci", 30, ("check", "implementations.focal:sigmoid_focal_loss",
                                      "--spec", "sigmoid_focal_loss", "--profile", "ci"),
               parallel=False),
        Figure("check-giou-ci", 30, ("check", "implementations.boxes:generalized_box_iou_loss",
                                     "--spec", "generalized_box_iou_loss", "--profile", "ci"),
               parallel=False),
    )
}
CHECK_DEFAULT = "check-default"
CHECK_TARGET = 30.0


def extract(revision: str, into: Path) -> Path:
    """The tree of `revision` under `into` (git archive; no .git, no build outputs)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision],
                             check=True, capture_output=True).stdout
    folder = into / revision
    folder.mkdir(parents=True)
    with tempfile.TemporaryFile() as tmp:
        tmp.write(archive)
        tmp.seek(0)
        with tarfile.open(fileobj=tmp) as tar:
            tar.extractall(folder, filter="data")
    return folder


def has_workers_option(tree: Path) -> bool:
    return (tree / "conformance" / "parallel.py").exists()


def timed(tree: Path, args: list[str], limit: float) -> tuple[float | None, int]:
    """Wall seconds of `python -m conformance ARGS` on `tree` (None past the limit), and its
    exit code. Run from an empty folder, so only PYTHONPATH says which tree it imports. A run
    that does not conform prints its failures (with their reproducers) to stderr: a random
    seed's finding is not lost."""
    env = {**os.environ, "PYTHONPATH": str(tree), "CONFORMANCE_PROFILE": ""}
    with tempfile.TemporaryDirectory() as cwd:
        start = time.perf_counter()
        try:
            done = subprocess.run([sys.executable, "-m", "conformance", *args], cwd=cwd, env=env,
                                  capture_output=True, text=True, timeout=limit)
        except subprocess.TimeoutExpired:
            return None, -1
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            failures = done.stdout[done.stdout.find("Failure 1:"):] if "Failure 1:" in \
                done.stdout else done.stdout[-4000:]
            print(f"--- {' '.join(args)} exited {done.returncode}:\n{failures}"
                  f"{done.stderr[-2000:]}", file=sys.stderr)
        return seconds, done.returncode


def first_implementations(tree: Path) -> list[tuple[str, str]]:
    """(spec, its first implementation) on `tree`."""
    code = ("from conformance import all_specs\n"
            "for s in all_specs():\n"
            "    if s.implementations: print(s.name, s.implementations[0])")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(tree)},
                         check=True, capture_output=True, text=True).stdout
    return [tuple(line.split()) for line in out.splitlines()]  # type: ignore[misc]


def measure(tree: Path, name: str, workers: int, limit: float) -> tuple[float | None, str]:
    """One figure on one tree: seconds (None: past the limit) and a note."""
    extra = ["-n", str(workers)] if has_workers_option(tree) and workers > 1 else []
    if name == CHECK_DEFAULT:
        worst, which = 0.0, ""
        for spec, target in first_implementations(tree):
            seconds, _ = timed(tree, ["check", target, "--spec", spec, "--profile", "default",
                                      *extra], limit)
            if seconds is None:
                return None, spec
            if seconds > worst:
                worst, which = seconds, spec
        return worst, which
    figure = FIGURES[name]
    seconds, code = timed(tree, [*figure.args, *(extra if figure.parallel else [])], limit)
    return seconds, f"exit {code}" if seconds is not None else ""


def _fmt(seconds: float | None, limit: float) -> str:
    return f"> {limit:.0f}" if seconds is None else f"{seconds:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [*FIGURES, CHECK_DEFAULT]
    parser.add_argument("--only", action="append", choices=names, help="this figure; repeatable")
    parser.add_argument("--baseline", default=None, help="a git revision to measure too")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--limit", type=float, default=900.0,
                        help="seconds after which a command is stopped (default 900)")
    args = parser.parse_args(argv)
    wanted = args.only or names

    with tempfile.TemporaryDirectory() as tmp:
        before = extract(args.baseline, Path(tmp)) if args.baseline else None
        print(f"{len(os.sched_getaffinity(0))} CPUs, workers {args.workers},"
              f" baseline {args.baseline or '-'}")
        header = f"{'figure':14} {'target s':>8} {'before s':>9} {'after s':>9} {'ratio':>6}  ok"
        print(header)
        for name in wanted:
            target = CHECK_TARGET if name == CHECK_DEFAULT else FIGURES[name].target
            after, note = measure(ROOT, name, args.workers, args.limit)
            old, old_note = (measure(before, name, 1, args.limit) if before else (None, ""))
            ratio = (f"{old / after:.1f}x" if old is not None and after else
                     (f"> {args.limit / after:.1f}x" if before and after else "-"))
            ok = "yes" if after is not None and after <= target else "NO"
            print(f"{name:14} {target:8.0f} {_fmt(old, args.limit) if before else '-':>9}"
                  f" {_fmt(after, args.limit):>9} {ratio:>6}  {ok}  {note}"
                  + (f" (before: {old_note})" if old_note else ""), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
