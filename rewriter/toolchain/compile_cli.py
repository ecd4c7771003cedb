"""The `rewrite compile OUT` verb: argparse wiring only; the work is in dfc_driver / emit_script.

Exit codes: 0 every segment compiled (or the script was emitted), 1 some segment failed,
2 user error (no plan, unreadable --model-script, no DFC without --emit-script).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from .plan_io import PlanError, load_plan
from .sdk import ToolchainMissing

ARCHES = ("hailo8", "hailo8l")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT", help="plan directory written by the rewriter (holds plan.json)")
    parser.add_argument("--hw-arch", choices=ARCHES, default=None,
                        help="DFC hardware architecture (default: the plan's target)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="compile N distinct segments at once, in threads (default 1)")
    parser.add_argument("--model-script", metavar="FILE",
                        help="model-script (.alls) lines appended to every segment's generated script")
    parser.add_argument("--retry-shrink", action="store_true",
                        help="on an allocator failure, re-tile the segment narrower and compile the pieces")
    parser.add_argument("--max-shrink", type=int, default=2, metavar="N",
                        help="at most N nested re-tilings per segment (default 2)")
    parser.add_argument("--emit-script", action="store_true",
                        help="write OUT/compile/compile.sh for Hailo's SDK container instead of compiling here")
    parser.add_argument("--use-random-calib", action="store_true",
                        help="calibrate segments without 'calib' on random data (test builds only)")


def _target(plan: dict):
    """The lead's Target object when the loader exists and knows this target, else None."""
    try:
        return importlib.import_module("rewriter.target").load_target(plan.get("target", "hailo8"))
    except Exception:  # noqa: BLE001 -- compile still works with defaults; say so below
        return None


def compile_settings_for(target) -> dict:
    """The target's [compile] table (attribute `compile` or `compile_settings`), else {} (defaults)."""
    for attr in ("compile", "compile_settings"):
        value = getattr(target, attr, None)
        if isinstance(value, dict):
            return value
    return {}


def default_hw_arch(plan: dict, target) -> str:
    name = plan.get("target")
    if name in ARCHES:
        return name
    arch = getattr(target, "arch", None)
    return arch if arch in ARCHES else "hailo8"


def _fail(msg: str) -> int:
    print(f"rewrite compile: {msg}", file=sys.stderr)
    return 2


def run(args) -> int:
    out = Path(args.out)
    try:
        plan = load_plan(out)
    except PlanError as exc:
        return _fail(str(exc))
    extra = None
    if args.model_script:
        try:
            extra = Path(args.model_script).read_text()
        except OSError as exc:
            return _fail(f"--model-script {args.model_script}: {exc.strerror or exc}")
    if args.jobs < 1 or args.max_shrink < 0:
        return _fail("--jobs must be >= 1 and --max-shrink >= 0")
    target = _target(plan)
    if target is None:
        print(f"note: target {plan.get('target')!r} not loadable here; using default [compile] settings",
              file=sys.stderr)
    settings = compile_settings_for(target)
    hw_arch = args.hw_arch or default_hw_arch(plan, target)

    if args.emit_script:
        from .emit_script import emit_compile_script
        try:
            emitted = emit_compile_script(out, hw_arch, settings, extra, args.use_random_calib)
        except (PlanError, ValueError) as exc:
            return _fail(str(exc))
        for w in emitted.warnings:
            print(f"warning: {w}")
        print(f"wrote {emitted.script} ({len(emitted.alls)} model scripts); see {emitted.readme}")
        print(f"in Hailo's container: cp -r {out} /tmp/plan && bash /tmp/plan/compile/compile.sh")
        return 0

    from .dfc_driver import compile_plan
    try:
        summary = compile_plan(out, hw_arch=hw_arch, jobs=args.jobs, model_script_extra=extra,
                               retry_shrink=args.retry_shrink, compile_settings=settings,
                               use_random_calib=args.use_random_calib, max_shrink=args.max_shrink)
    except ToolchainMissing as exc:
        return _fail(str(exc))
    except PlanError as exc:
        return _fail(str(exc))
    return 0 if summary.ok else 1


def main(argv=None) -> int:
    """Stand-alone entry (`python -m rewriter.toolchain.compile_cli OUT`) until the CLI wires it."""
    parser = argparse.ArgumentParser(prog="rewrite compile", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
