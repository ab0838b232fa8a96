"""`python -m conformance`: list specs, check one target, run every built-in implementation.

Exit codes: 0 conforms, 1 does not conform, 2 usage error (bad spec, bad import path, ...),
3 no evidence (`check` ran no example: every drawn case was outside the spec's domain or not
applicable to the target; `run` exits 3 only when no report of the run has evidence).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from conformance import bridges, deviations, diff, export, parallel, variants
from conformance.case import DTYPES
from conformance.catalog import UnknownSpec, all_specs, get_spec
from conformance.empty import Empty
from conformance.loading import LoadError, load_attribute
from conformance.profiles import PROFILES
from conformance.properties.registry import properties_of
from conformance.report import CONFORMS, NO_EVIDENCE, NONCONFORMING, Report
from conformance.runner import DEFAULT_DTYPES, OptionError, check, select_properties
from conformance.snapshot import DEFAULT_SEED, DEFAULT_SIZE
from conformance.spec import LossSpec

EXIT_OK, EXIT_NONCONFORMING, EXIT_USAGE, EXIT_NO_EVIDENCE = 0, 1, 2, 3
_EXIT = {CONFORMS: EXIT_OK, NONCONFORMING: EXIT_NONCONFORMING, NO_EVIDENCE: EXIT_NO_EVIDENCE}


class UsageError(Exception):
    pass


def load_target(path: str) -> Callable[..., Any]:
    """Import 'package.module:attr' (or 'package.module.attr', or 'file.py:attr')."""
    try:
        obj = load_attribute(path)
    except LoadError as exc:
        raise UsageError(str(exc)) from exc
    if not callable(obj):
        raise UsageError(f"{path!r} is a {type(obj).__name__}, not a callable loss")
    return obj


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def _workers(text: str) -> int:
    try:
        return parallel.workers(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _writable(path: str | None) -> None:
    """Fail before a long run, not after it, when the report cannot be written."""
    if path and not Path(path).resolve().parent.is_dir():
        raise UsageError(f"cannot write {path!r}: its folder does not exist")


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=list(PROFILES), default=None,
                        help="Hypothesis profile (default: $CONFORMANCE_PROFILE or 'default')")
    parser.add_argument("--dtype", dest="dtypes", action="append", choices=list(DTYPES),
                        help=f"dtype to test; repeatable (default: {', '.join(DEFAULT_DTYPES)})")
    parser.add_argument("--max-examples", type=_count, default=None,
                        help="examples per property (overrides the profile; 0: the spec's"
                             " named edge cases only)")
    parser.add_argument("--seed", type=int, default=None, help="Hypothesis seed")
    parser.add_argument("--no-shrink", dest="shrink", action="store_false",
                        help="report the first failing input, not a minimal one (faster)")
    parser.add_argument("--shrink-budget", type=float, default=10.0, metavar="SECONDS",
                        help="how long one failing check may spend shrinking its input; then"
                             " the smallest failing input reached is reported (default 10)")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds one call of the target may take (default 10)")
    parser.add_argument("--json", dest="json_path", default=None,
                        help="also write the report(s) as JSON to this file")
    parser.add_argument("--deviations", default=None,
                        help="TOML file of accepted deviations (default: the project's,"
                             " implementations/deviations.toml)")
    parser.add_argument("--no-deviations", action="store_true",
                        help="accept no deviation: every failure counts")
    parser.add_argument("--plot", default=None, metavar="DIR",
                        help="write a PNG per failed value or gradient check to DIR: the"
                             " error over the input's magnitude per dtype (needs matplotlib)")
    parser.add_argument("-n", "--workers", type=_workers, default=1,
                        help="worker processes: a count or 'auto' (one per CPU); the verdicts"
                             " and reports are those of one process (default 1)")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "profile": args.profile,
        "dtypes": tuple(args.dtypes or DEFAULT_DTYPES),
        "max_examples": args.max_examples,
        "seed": args.seed,
        "timeout": args.timeout,
        "shrink": args.shrink,
        "shrink_budget": args.shrink_budget,
        "plot": args.plot,
    }


def _write_json(path: str | None, reports: list[Report],
                run: dict[str, Any] | None = None) -> None:
    """One report: a list of report dicts (as `check` always wrote); `run` adds the run's
    environment and summary around them."""

    def render() -> str:
        body: Any = [r.to_dict() for r in reports]
        return json.dumps(body if run is None else {**run, "reports": body}, indent=2)

    _write_text(path, render)


def _write_text(path: str | None, render: Callable[[], str]) -> None:
    if path:
        try:
            Path(path).write_text(render())
        except OSError as exc:
            raise UsageError(f"cannot write {path!r}: {exc}") from exc


def cmd_list(args: argparse.Namespace) -> int:
    specs = [s for s in all_specs() if args.family in (None, s.family)]
    if not specs:
        families = sorted({s.family for s in all_specs()})
        raise UsageError(f"no family {args.family!r}; families: {', '.join(families)}")
    width = max(len(s.name) for s in specs)
    for spec in specs:
        print(f"{spec.name.ljust(width)}  [{spec.family}] {spec.summary}")
        if args.verbose:
            print(f"{'':{width}}  {spec.signature}")
            props = ", ".join(p.name for p in properties_of(spec))
            print(f"{'':{width}}  properties: {props}")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    spec = get_spec(args.spec)
    print(f"{spec.name} [{spec.family}]: {spec.summary}")
    print(f"  signature:   {spec.signature}")
    print(f"  reductions:  {', '.join(spec.reductions)}")
    print(f"  conventions: {spec.conventions}")
    print(f"  at kinks:    {spec.subgradient} (gradient convention)")
    print(f"  reference:   {spec.reference.__module__}.{spec.reference.__name__}")
    print(f"  conforming:  {', '.join(spec.implementations) or '-'}")
    print("  properties:")
    for prop in properties_of(spec):
        print(f"    {prop.name}: {prop.description}")
    print("  edge cases:")
    for case in spec.edge_cases:
        print(f"    {case.label}")
    if spec.invalid:
        print("  invalid forms (what is owed):")
        for form in spec.invalid:
            print(f"    {form.name} ({form.owed})")
    if spec.empty:
        print("  empty forms (the reference's value there is owed):")
        for form in spec.empty:
            print(f"    {form.name}{_owed_when_empty(spec, form)}")
    if spec.regimes:
        print(f"  regimes (a deviation's `when`): {', '.join(sorted(spec.regimes))}")
    if spec.variants:
        print("  variants (check --convention NAME=VALUE):")
        for variant in spec.variants:
            for line in variant.describe():
                print(f"    {line}")
    return EXIT_OK


def _owed_when_empty(spec: LossSpec, form: Empty) -> str:
    """What the reference gives on the form applied to the first edge case it fits."""
    for case in spec.edge_cases:
        empty = form.make(case)
        if empty is None:
            continue
        owed = []
        for reduction in spec.calls:
            value = spec.call_reference(empty, reduction)
            shown = f"shape {value.shape}" if value.size != 1 or value.ndim else f"{value:g}"
            owed.append(shown if reduction is None else f"{reduction} -> {shown}")
        return f": {'; '.join(owed)}"
    return ""


def cmd_check(args: argparse.Namespace) -> int:
    spec = get_spec(args.spec)
    fn = load_target(args.target)
    _writable(args.json_path)
    entries = _deviation_entries(args)
    try:
        conventions = dict(map(variants.parse, args.conventions))
        spec.following_conventions({**variants.declared_by(fn), **conventions})  # fail early
    except variants.ConventionError as exc:
        raise UsageError(str(exc)) from exc
    if args.workers > 1:
        # One unit per dtype, every property in it: the properties of one dtype share their
        # draws, rounding, domain verdicts and reference values (conformance.cells).
        props = tuple(p.name for p in select_properties(spec, args.properties))
        options = {**_options(args), "known": entries, "conventions": conventions,
                   "framework": args.framework}
        dtypes = options.pop("dtypes")
        units = [parallel.Unit(i, args.target, args.spec, dtype, props, options)
                 for i, dtype in enumerate(dtypes)]
        parts = [(u, r) for u, r in parallel.run_units(_slow_first(units), args.workers)
                 if isinstance(r, Report)]
        report = parallel.merge(parts)
    else:
        report = check(fn, spec, properties=args.properties, target_path=args.target,
                       known=entries, conventions=conventions, framework=args.framework,
                       **_options(args))
    outcome = deviations.apply([report], entries, complete=False)
    print(report)
    for line in outcome.lines():
        print(line)
    _write_json(args.json_path, [report])
    return _EXIT[report.verdict]


def cmd_diff(args: argparse.Namespace) -> int:
    spec = get_spec(args.spec)
    original, port = load_target(args.original), load_target(args.port)
    _writable(args.json_path)
    try:
        conventions = dict(map(variants.parse, args.conventions))
        spec.following_conventions(conventions)  # fail early
        report = diff.diff(original, port, spec, dtypes=tuple(args.dtypes or DEFAULT_DTYPES),
                           max_examples=args.max_examples, seed=args.seed,
                           frameworks=(args.original_framework, args.port_framework),
                           conventions=conventions, timeout=args.timeout,
                           paths=(args.original, args.port))
    except (variants.ConventionError, bridges.FrameworkError) as exc:
        raise UsageError(str(exc)) from exc
    print(report)
    _write_text(args.json_path, lambda: json.dumps(report.to_dict(), indent=2))
    return EXIT_OK if report.ok else EXIT_NONCONFORMING


def _run_table(reports: list[Report], dtypes: Sequence[str]) -> str:
    header = ("property", *dtypes)
    rows: list[tuple[str, ...]] = [header]
    for report in reports:
        # A heading line, not a cell.
        rows.append((f"{report.spec}  ({report.target}): {report.finding}",))
        cells: dict[tuple[str, str], str] = {}
        order: list[str] = []
        for r in report.results:
            if r.property not in order:
                order.append(r.property)
            cells[(r.property, r.dtype)] = f"{r.verdict()} {r.examples}"
        for prop in order:
            rows.append(("  " + prop, *(cells.get((prop, d), "-") for d in dtypes)))
    cells_rows = [row for row in rows if len(row) == len(header)]
    widths = [max(len(row[i]) for row in cells_rows) for i in range(len(header))]
    return "\n".join(
        row[0] if len(row) == 1 else
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in rows)


def _verdict_counts(reports: Sequence[Report]) -> str:
    """How many reports found what: conforming, conforming up to documented conventions,
    with known defects, nonconforming, without evidence."""
    conforms = up_to = defects = 0
    for r in reports:
        if r.verdict != CONFORMS:
            continue
        if r.accepted("defect"):
            defects += 1
        elif r.accepted("convention"):
            up_to += 1
        else:
            conforms += 1
    bad = sum(r.verdict == NONCONFORMING for r in reports)
    unproven = sum(r.verdict == NO_EVIDENCE for r in reports)
    return ", ".join(
        [f"{conforms} conform", f"{up_to} conform up to documented conventions",
         f"{defects} with known defects", f"{bad} nonconforming"]
        + ([f"{unproven} with no evidence"] if unproven else []))


def builtin_targets(specs: Sequence[LossSpec]) -> list[tuple[LossSpec, str]]:
    return [(spec, path) for spec in specs for path in spec.implementations]


def _deviation_entries(args: argparse.Namespace) -> list[deviations.Deviation]:
    if args.no_deviations:
        return []
    try:
        return deviations.load(args.deviations) if args.deviations else deviations.builtin()
    except deviations.DeviationFileError as exc:
        raise UsageError(str(exc)) from exc


def matrix_targets(specs: Sequence[LossSpec],
                   libraries: bool) -> tuple[list[tuple[LossSpec, str]], dict[str, str]]:
    """The (spec, target path) pairs of `run` (every built-in implementation, and with
    `libraries` every third-party adapter: the matrix), and the versions of those libraries."""
    pairs = builtin_targets(specs)
    versions: dict[str, str] = {}
    if libraries:
        from implementations.adapters import registered
        from implementations.sources import version

        wanted = {s.name: s for s in specs}
        for adapter in registered():
            versions.setdefault(adapter.library, version(adapter.library))
            spec = wanted.get(adapter.spec)
            if spec is not None and (spec, adapter.path) not in pairs:
                pairs.append((spec, adapter.path))
    return pairs, versions


def _progress(done: int, total: int, start: float, label: str) -> None:
    if not sys.stderr.isatty():
        return
    elapsed = time.perf_counter() - start
    eta = elapsed / done * (total - done) if done else 0.0
    bar = "#" * (30 * done // max(total, 1))
    print(f"\r[{bar:<30}] {done}/{total} {elapsed:5.0f}s, ETA {eta:4.0f}s  {label[:40]:<40}",
          end="", file=sys.stderr, flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    specs = [get_spec(name) for name in args.specs] if args.specs else all_specs()
    for path in (args.json_path, args.markdown_path, args.junit_path):
        _writable(path)
    entries = _deviation_entries(args)
    options = _options(args)
    pairs, versions = matrix_targets(specs, args.libraries)
    start = time.perf_counter()
    if args.workers > 1:
        reports = _run_parallel(pairs, entries, options, args.workers, start)
    else:
        reports = []
        for i, (spec, path) in enumerate(pairs):
            _progress(i, len(pairs), start, f"{spec.name} ({path})")
            try:
                fn = load_target(path)
            except UsageError as exc:
                print(f"{spec.name}: {path} not available ({exc}); counted as skipped")
                continue
            reports.append(check(fn, spec, target_path=path, known=entries, **options))
    _progress(len(pairs), len(pairs), start, "done")
    if sys.stderr.isatty():
        print(file=sys.stderr)
    elapsed = time.perf_counter() - start
    complete = not args.specs and set(options["dtypes"]) == set(DTYPES) and args.libraries
    outcome = deviations.apply(reports, entries, complete=complete)
    print(_run_table(reports, options["dtypes"]))
    checks = sum(len(r.results) for r in reports)
    examples = sum(res.examples for r in reports for res in r.results)
    bad = [r for r in reports if r.verdict == NONCONFORMING]
    unproven = [r for r in reports if r.verdict == NO_EVIDENCE]
    profile = reports[0].profile if reports else "-"
    seed = options["seed"] if options["seed"] is not None else (
        "derandomized" if profile == "ci" else "random")
    summary = (f"{len(reports)} implementation(s) of {len(specs)} spec(s): {checks} checks,"
               f" {examples} examples; {_verdict_counts(reports)};"
               f" {len(outcome.known)} known-deviation cells,"
               f" {elapsed:.1f}s (profile {profile}, seed {seed})")
    print("\n" + summary)
    for line in outcome.lines():
        print(line)
    for report in (*bad, *unproven):
        print()
        print(report)
    env = export.environment(versions)
    _write_json(args.json_path, reports, {"environment": env, "summary": summary,
                                          "deviation_notes": outcome.lines()})
    command = "python -m conformance " + shlex.join(_without_other_outputs(args.argv))
    _write_text(args.markdown_path, lambda: export.markdown(reports, env, summary, command))
    _write_text(args.junit_path, lambda: export.junit(reports, elapsed))
    if bad:
        return EXIT_NONCONFORMING
    return EXIT_OK if len(unproven) < len(reports) else EXIT_NO_EVIDENCE


def _snapshot_pairs(args: argparse.Namespace) -> tuple[list[tuple[LossSpec, str]],
                                                      dict[str, str]]:
    """A target and its one spec, or the built-ins (and with --libraries the matrix)."""
    if args.target:
        if not args.specs or len(args.specs) != 1:
            raise UsageError("a target needs exactly one --spec")
        load_target(args.target)  # a bad path is a usage error before anything runs
        return [(get_spec(args.specs[0]), args.target)], {}
    specs = [get_spec(name) for name in args.specs] if args.specs else all_specs()
    return matrix_targets(specs, args.libraries)


def _say(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)


def cmd_snapshot(args: argparse.Namespace) -> int:
    from conformance.regression import take_snapshot

    pairs, versions = _snapshot_pairs(args)
    devices = args.devices or ["cpu"]
    if "cuda" in devices and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device here")
    start = time.perf_counter()
    baseline, size = take_snapshot(
        pairs, Path(args.out), load_target, dtypes=args.dtypes or list(DEFAULT_DTYPES),
        devices=devices, size=args.size, seed=args.seed, timeout=args.timeout,
        libraries=versions, progress=_say if args.verbose else None)
    for line in baseline.settings["not_loaded"]:
        print(f"not recorded: {line}")
    records = sum(len(t["records"]) for t in baseline.targets)
    cases = sum(len(c) for c in baseline.corpus.values())
    print(f"snapshot {args.out}: {len(baseline.targets)} target(s),"
          f" {len(baseline.corpus)} spec(s),"
          f" {cases} cases, {records} records, {size / 1024:.0f} KiB,"
          f" {time.perf_counter() - start:.1f}s (torch {torch.__version__})")
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from conformance.baseline import BaselineError
    from conformance.regression import compare_runs, compare_to

    for path in (args.json_path, args.markdown_path, args.junit_path):
        _writable(path)
    try:
        if args.new is not None:  # two saved run reports
            lines, ok = compare_runs(Path(args.baseline), Path(args.new))
            print("\n".join(lines) or "no verdict changed")
            return EXIT_OK if ok else EXIT_NONCONFORMING
        versions = {}
        if args.libraries:
            versions = matrix_targets([], True)[1]
        report, baseline = compare_to(Path(args.baseline), load_target, specs=args.specs,
                               stored_corpus=args.stored_corpus, timeout=args.timeout,
                               libraries=versions, progress=_say if args.verbose else None)
    except BaselineError as exc:
        raise UsageError(str(exc)) from exc
    print(report)
    _write_text(args.json_path, lambda: json.dumps(report.to_dict(), indent=2))
    _write_text(args.markdown_path, lambda: report.markdown(baseline.corpus))
    _write_text(args.junit_path, report.junit)
    return EXIT_OK if report.ok else EXIT_NONCONFORMING


def _slow_first(units: list[parallel.Unit]) -> list[parallel.Unit]:
    """Box losses and wide dtypes first (the family invariants run in float64 and float32):
    no long unit should start last."""
    def key(unit: parallel.Unit) -> tuple[bool, bool]:
        return (get_spec(unit.spec).family != "boxes", unit.dtype in ("float16", "bfloat16"))

    return sorted(units, key=key)


def _run_parallel(pairs: list[tuple[LossSpec, str]], entries: list[deviations.Deviation],
                  options: dict[str, Any], workers: int, start: float) -> list[Report]:
    """`run`'s checks, one unit per target x dtype, over `workers` processes."""
    options = {**options, "known": entries}
    dtypes = options.pop("dtypes")
    units = [parallel.Unit(i * len(dtypes) + j, path, spec.name, dtype, None, options)
             for i, (spec, path) in enumerate(pairs) for j, dtype in enumerate(dtypes)]
    finished: list[parallel.Unit] = []

    def done(unit: parallel.Unit) -> None:
        finished.append(unit)
        _progress(len(finished), len(units), start, f"{unit.spec} ({unit.target})")

    parts: dict[int, list[tuple[parallel.Unit, Report]]] = {}
    missing: dict[int, str] = {}
    for unit, outcome in parallel.run_units(_slow_first(units), workers, done):
        pair = unit.order // len(dtypes)
        if isinstance(outcome, Report):
            parts.setdefault(pair, []).append((unit, outcome))
        else:
            missing[pair] = outcome
    for pair, why in sorted(missing.items()):
        spec, path = pairs[pair]
        print(f"{spec.name}: {path} not available ({why}); counted as skipped")
    return [parallel.merge(parts[pair]) for pair in sorted(parts)]


def _without_other_outputs(argv: Sequence[str]) -> list[str]:
    """The command line minus --json/--junit and their paths: what reproduces the Markdown."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--json", "--junit"):
            skip = True
        elif not arg.startswith(("--json=", "--junit=")):
            kept.append(arg)
    return kept


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m conformance",
        description="Check loss implementations against float64 references and invariants.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list the specs")
    p.add_argument("--family", default=None)
    p.add_argument("-v", "--verbose", action="store_true", help="signatures and properties too")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="a spec's signature, conventions, properties, edge cases")
    p.add_argument("spec")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("check", help="check one target: MODULE:ATTR --spec NAME")
    p.add_argument("target", help="import path of the loss, e.g. mypkg.losses:focal")
    p.add_argument("--spec", required=True, help="spec name (see `list`)")
    p.add_argument("--property", dest="properties", action="append",
                   help="only this property; repeatable")
    p.add_argument("--convention", dest="conventions", action="append", default=[],
                   metavar="NAME=VALUE",
                   help="hold the target to this declared variant of the spec (`show NAME`"
                        " lists them); repeatable")
    p.add_argument("--framework", choices=list(bridges.FRAMEWORKS), default=None,
                   help="the target's framework (default: told from the target; torch)")
    _common_options(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("diff", help="an original loss and its port on the same cases: where"
                                    " they disagree, which one the reference agrees with")
    p.add_argument("original", help="MODULE:ATTR of the original")
    p.add_argument("port", help="MODULE:ATTR of the port")
    p.add_argument("--spec", required=True, help="spec name (see `list`)")
    p.add_argument("--original-framework", choices=list(bridges.FRAMEWORKS), default=None)
    p.add_argument("--port-framework", choices=list(bridges.FRAMEWORKS), default=None)
    p.add_argument("--convention", dest="conventions", action="append", default=[],
                   metavar="NAME=VALUE", help="the original's declared convention; repeatable")
    p.add_argument("--dtype", dest="dtypes", action="append", choices=list(DTYPES))
    p.add_argument("--max-examples", type=_count, default=60,
                   help="drawn cases per dtype, after the spec's edge cases (default 60)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per call")
    p.add_argument("--json", dest="json_path", default=None)
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("run", help="check every built-in implementation of every spec")
    p.add_argument("--spec", dest="specs", action="append", help="only this spec; repeatable")
    p.add_argument("--libraries", action="store_true",
                   help="also every installed third-party library's adapters (the matrix)")
    p.add_argument("--markdown", dest="markdown_path", default=None,
                   help="also write a Markdown report to this file")
    p.add_argument("--junit", dest="junit_path", default=None,
                   help="also write JUnit XML to this file")
    _common_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("snapshot", help="record targets' values and gradients on a fixed corpus"
                                        " (a baseline for `compare`)")
    p.add_argument("target", nargs="?", help="MODULE:ATTR with one --spec (default: the"
                                             " built-in implementations)")
    p.add_argument("--out", required=True, help="the baseline folder to write")
    p.add_argument("--spec", dest="specs", action="append", help="only this spec; repeatable")
    p.add_argument("--libraries", action="store_true",
                   help="also every installed third-party library's adapters")
    p.add_argument("--dtype", dest="dtypes", action="append", choices=list(DTYPES),
                   help=f"repeatable (default: {', '.join(DEFAULT_DTYPES)})")
    p.add_argument("--device", dest="devices", action="append", choices=["cpu", "cuda"],
                   help="repeatable (default: cpu)")
    p.add_argument("--size", type=_count, default=DEFAULT_SIZE,
                   help=f"cases drawn per spec besides its edge cases (default {DEFAULT_SIZE})")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help=f"the corpus's seed (default {DEFAULT_SEED})")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per target call")
    p.add_argument("-v", "--verbose", action="store_true", help="say each target as it starts")
    p.set_defaults(func=cmd_snapshot)

    p = sub.add_parser("compare", help="recompute a snapshot here and report drift (or: two"
                                       " saved run --json reports, the verdicts that changed)")
    p.add_argument("baseline", help="a snapshot folder, or an old run --json report")
    p.add_argument("new", nargs="?", default=None, help="a new run --json report")
    p.add_argument("--spec", dest="specs", action="append", help="only this spec; repeatable")
    p.add_argument("--libraries", action="store_true",
                   help="name the installed libraries' versions in the environment")
    p.add_argument("--stored-corpus", action="store_true",
                   help="compare on the baseline's stored inputs even where the spec now"
                        " draws another corpus")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per target call")
    p.add_argument("--json", dest="json_path", default=None, help="also write JSON here")
    p.add_argument("--markdown", dest="markdown_path", default=None,
                   help="also write Markdown here")
    p.add_argument("--junit", dest="junit_path", default=None, help="also write JUnit XML here")
    p.add_argument("-v", "--verbose", action="store_true", help="say each target as it starts")
    p.set_defaults(func=cmd_compare)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return int(args.func(args))
    except (UsageError, UnknownSpec, OptionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
