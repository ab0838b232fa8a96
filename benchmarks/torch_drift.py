"""Drift of the built-in losses across torch releases: what docs/torch-version-drift.md shows.

For each release V: a venv outside the repository (never the project's environment, never in
CI) with torch==V pinned and the suite's small dependencies at this environment's versions (the
same Hypothesis draws the same corpus); `python -m conformance snapshot` there, with this tree
on PYTHONPATH; then `python -m conformance compare` here. Each comparison is the upgrade from V
to this environment's torch: "worse" means this torch is further from float64 than V was.

    python benchmarks/torch_drift.py --versions 2.12.0 2.14.1 --out docs/torch-version-drift.md

A release's venv is about 5 GB (a CUDA build, which imports fine on a CPU machine) and is
kept under --venvs for the next run. The same check for your own upgrade, without this script:
snapshot under the old torch, upgrade, compare (README, "Regression across torch versions").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMALL_DEPENDENCIES = ("numpy", "scipy", "hypothesis")


def venv_python(venvs: Path, torch_version: str) -> Path:
    """The Python of a venv holding torch==torch_version (made on first use)."""
    folder = venvs / f"torch-{torch_version}"
    python = folder / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        pins = [f"torch=={torch_version}", *(f"{d}=={version(d)}" for d in SMALL_DEPENDENCIES)]
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *pins], check=True)
    return python


def conformance(python: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([str(python), "-m", "conformance", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", nargs="+", required=True, help="torch releases")
    parser.add_argument("--venvs", type=Path, default=Path("/tmp/torch-venvs"),
                        help="where the releases' venvs live (outside the repository)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/torch-drift"),
                        help="where the snapshots and comparisons are written")
    parser.add_argument("--size", type=int, default=16, help="drawn cases per spec")
    parser.add_argument("--out", type=Path, default=None, help="the Markdown report")
    args = parser.parse_args(argv)
    if ROOT in args.venvs.resolve().parents:
        parser.error("--venvs must lie outside the repository")
    args.work.mkdir(parents=True, exist_ok=True)

    here = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"],
                          capture_output=True, text=True, check=True).stdout.strip()
    sections, summary = [], []
    for release in args.versions:
        start = time.perf_counter()
        python = venv_python(args.venvs, release)
        setup = time.perf_counter() - start
        baseline = args.work / f"torch-{release}"
        start = time.perf_counter()
        made = conformance(python, "snapshot", "--out", str(baseline), "--size", str(args.size))
        if made.returncode != 0:
            print(made.stdout, made.stderr, file=sys.stderr)
            return 1
        snapshot_s = time.perf_counter() - start
        md, js = args.work / f"{release}.md", args.work / f"{release}.json"
        start = time.perf_counter()
        done = conformance(sys.executable, "compare", str(baseline), "--markdown", str(md),
                           "--json", str(js))
        compare_s = time.perf_counter() - start
        if done.returncode not in (0, 1):
            print(done.stdout, done.stderr, file=sys.stderr)
            return 1
        result = json.loads(js.read_text())
        rows = result["rows"]
        counts = {v: sum(r["verdict"] == v for r in rows)
                  for v in ("WORSE", "better", "changed", "identical")}
        size = sum(p.stat().st_size for p in baseline.rglob("*") if p.is_file())
        line = (f"torch {release} -> {here}: {len(rows)} rows, {counts['identical']} bitwise"
                f" identical, {counts['changed']} changed within the rule,"
                f" {counts['better']} closer to float64, {counts['WORSE']} worse"
                f" ({made.stdout.strip().splitlines()[-1]}; venv {setup:.0f}s, snapshot"
                f" {snapshot_s:.0f}s,"
                f" compare {compare_s:.0f}s, baseline {size / 1024:.0f} KiB)")
        print(line, flush=True)
        summary.append(f"- {line}")
        body = md.read_text().replace("# Drift against a baseline",
                                      f"## torch {release} -> {here}", 1)
        sections.append(body.replace("\n## Changes beyond", "\n### Changes beyond")
                        .replace("\n### `", "\n#### `"))
    if args.out:
        args.out.write_text("\n".join([
            "# Drift of the built-in losses across torch releases", "",
            f"Made by `python benchmarks/torch_drift.py --versions {' '.join(args.versions)}"
            f" --size {args.size}`: for each release a snapshot of every built-in"
            " implementation (every spec, four dtypes, every reduction, values and gradients)"
            " on the same corpus (each spec's edge cases and"
            f" {args.size} seeded draws), compared under torch {here}. Read each section as"
            f" the upgrade from that release to {here}: *changed* rows drifted within the"
            " tolerance rule (values) or moved a gradient (gradients are reported, not"
            " gated); *worse* ones moved away from the float64 reference. The torchvision"
            " targets are not in the releases' venvs (torch only). What the changes mean:"
            " docs/findings.md, \"Drift across torch releases\".", "",
            *summary, "", *sections]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
