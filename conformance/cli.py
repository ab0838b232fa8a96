"""`python -m conformance`: list specs, check one target, run every built-in implementation.

Exit codes: 0 conforms, 1 does not conform, 2 usage error (bad spec, bad import path, ...).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from conformance.case import DTYPES
from conformance.profiles import PROFILES
from conformance.report import Report
from conformance.runner import DEFAULT_DTYPES, OptionError, check
from conformance.spec import LossSpec, UnknownSpec, all_specs, get_spec

EXIT_OK, EXIT_NONCONFORMING, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


def load_target(path: str) -> Callable[..., Any]:
    """Import 'package.module:attr' (or 'package.module.attr', or 'file.py:attr')."""
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise UsageError(f"{path!r} is not MODULE:ATTR (for example torch.nn.functional:mse_loss)")
    # A user's local module, as `python -m` would see it; a file's own folder for its imports.
    folder = str(Path(module_name).resolve().parent) if module_name.endswith(".py") else str(
        Path.cwd())
    sys.path.insert(0, folder)
    try:
        if module_name.endswith(".py"):
            name = Path(module_name).stem
            file_spec = importlib.util.spec_from_file_location(name, module_name)
            if file_spec is None or file_spec.loader is None:
                raise UsageError(f"cannot load {module_name!r}")
            module = importlib.util.module_from_spec(file_spec)
            sys.modules[name] = module  # dataclasses and pickling look a module up by name
            file_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except UsageError:
        raise
    except Exception as exc:
        raise UsageError(
            f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from exc
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UsageError(f"{path!r} is a {type(obj).__name__}, not a callable loss")
    return obj


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _writable(path: str | None) -> None:
    """Fail before a long run, not after it, when the report cannot be written."""
    if path and not Path(path).resolve().parent.is_dir():
        raise UsageError(f"cannot write {path!r}: its folder does not exist")


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=list(PROFILES), default=None,
                        help="Hypothesis profile (default: $CONFORMANCE_PROFILE or 'default')")
    parser.add_argument("--dtype", dest="dtypes", action="append", choices=list(DTYPES),
                        help=f"dtype to test; repeatable (default: {', '.join(DEFAULT_DTYPES)})")
    parser.add_argument("--max-examples", type=_positive_int, default=None,
                        help="examples per property (overrides the profile)")
    parser.add_argument("--seed", type=int, default=None, help="Hypothesis seed")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds one call of the target may take (default 10)")
    parser.add_argument("--json", dest="json_path", default=None,
                        help="also write the report(s) as JSON to this file")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "profile": args.profile,
        "dtypes": tuple(args.dtypes or DEFAULT_DTYPES),
        "max_examples": args.max_examples,
        "seed": args.seed,
        "timeout": args.timeout,
    }


def _write_json(path: str | None, reports: list[Report]) -> None:
    if path:
        try:
            Path(path).write_text(json.dumps([r.to_dict() for r in reports], indent=2))
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
            props = ", ".join(p.name for p in spec.property_list())
            print(f"{'':{width}}  properties: {props}")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    spec = get_spec(args.spec)
    print(f"{spec.name} [{spec.family}]: {spec.summary}")
    print(f"  signature:   {spec.signature}")
    print(f"  reductions:  {', '.join(spec.reductions)}")
    print(f"  conventions: {spec.conventions}")
    print(f"  reference:   {spec.reference.__module__}.{spec.reference.__name__}")
    print(f"  conforming:  {', '.join(spec.implementations) or '-'}")
    print("  properties:")
    for prop in spec.property_list():
        print(f"    {prop.name}: {prop.description}")
    print("  edge cases:")
    for case in spec.edge_cases:
        print(f"    {case.label}")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    spec = get_spec(args.spec)
    fn = load_target(args.target)
    _writable(args.json_path)
    report = check(fn, spec, properties=args.properties, target_path=args.target,
                   **_options(args))
    print(report)
    _write_json(args.json_path, [report])
    return EXIT_OK if report.ok else EXIT_NONCONFORMING


def _run_table(reports: list[Report], dtypes: Sequence[str]) -> str:
    header = ("property", *dtypes)
    rows: list[tuple[str, ...]] = [header]
    for report in reports:
        rows.append((f"{report.spec}  ({report.target})",))  # a heading line, not a cell
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


def builtin_targets(specs: Sequence[LossSpec]) -> list[tuple[LossSpec, str]]:
    return [(spec, path) for spec in specs for path in spec.implementations]


def cmd_run(args: argparse.Namespace) -> int:
    specs = [get_spec(name) for name in args.specs] if args.specs else all_specs()
    _writable(args.json_path)
    options = _options(args)
    reports: list[Report] = []
    start = time.perf_counter()
    for spec, path in builtin_targets(specs):
        try:
            fn = load_target(path)
        except UsageError as exc:
            print(f"{spec.name}: {path} not available ({exc}); counted as skipped")
            continue
        reports.append(check(fn, spec, target_path=path, **options))
    elapsed = time.perf_counter() - start
    print(_run_table(reports, options["dtypes"]))
    checks = sum(len(r.results) for r in reports)
    examples = sum(res.examples for r in reports for res in r.results)
    bad = [r for r in reports if not r.ok]
    print(f"\n{len(reports)} implementation(s) of {len(specs)} spec(s): {checks} checks,"
          f" {examples} examples, {len(bad)} nonconforming, {elapsed:.1f}s"
          f" (profile {reports[0].profile if reports else '-'})")
    for report in bad:
        print()
        print(report)
    _write_json(args.json_path, reports)
    return EXIT_OK if reports and not bad else EXIT_NONCONFORMING


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
    _common_options(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("run", help="check every built-in implementation of every spec")
    p.add_argument("--spec", dest="specs", action="append", help="only this spec; repeatable")
    _common_options(p)
    p.set_defaults(func=cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (UsageError, UnknownSpec, OptionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
