"""The `rewrite compile OUT` verb: argparse wiring only; the work is in dfc_driver / emit_script.

Exit codes: 0 every segment compiled (or the script was emitted), 1 some segment failed,
2 user error (no plan, unreadable --model-script, no DFC without --emit-script, no scheduler).
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import time
from pathlib import Path

from .model_script import merged_settings
from .plan_io import PlanError, load_plan
from .sdk import SDK_MODULE_ENV, ToolchainMissing, sdk_module_name

ARCHES = ("hailo8", "hailo8l")
# A segment's compile process may run this long past the allocator's own time-out (parse, optimize
# with calibration and the rest of the compile come on top of the allocator search).
TIMEOUT_MARGIN_S = 60 * 60
FALLBACK_ALLOCATOR_S = 25 * 60


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT", help="plan directory written by the rewriter (holds plan.json)")
    parser.add_argument(
        "--hw-arch", choices=ARCHES, default=None, help="DFC hardware architecture (default: the plan's target)"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="compile N distinct segments at once, each in its own process (default 1); "
        "with --executor dask and no --scheduler: N local Dask workers",
    )
    parser.add_argument(
        "--executor",
        choices=("local", "dask"),
        default="local",
        help="local: processes on this machine (default); dask: a Dask cluster",
    )
    parser.add_argument(
        "--scheduler",
        metavar="tcp://HOST:8786",
        help="Dask scheduler address for --executor dask (default: a local cluster)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="MIN",
        help="kill a segment's compile after MIN minutes (0: never; default: the target's allocator_timeout + 60)",
    )
    parser.add_argument(
        "--cache", metavar="DIR", help="HEF cache folder (default $HAILO_REWRITER_CACHE or ~/.cache/hailo-rewriter/hef)"
    )
    parser.add_argument("--no-cache", action="store_true", help="neither read nor fill the HEF cache")
    parser.add_argument(
        "--sdk-module",
        metavar="MODULE",
        help=f"testing hook: a module providing the hailo_sdk_client API, importable where "
        f"compiles run (default ${SDK_MODULE_ENV} or hailo_sdk_client)",
    )
    parser.add_argument(
        "--model-script", metavar="FILE", help="model-script (.alls) lines appended to every segment's generated script"
    )
    parser.add_argument(
        "--retry-shrink",
        action="store_true",
        help="on an allocator failure, re-tile the segment narrower and compile the pieces",
    )
    parser.add_argument(
        "--max-shrink", type=int, default=2, metavar="N", help="at most N nested re-tilings per segment (default 2)"
    )
    parser.add_argument(
        "--emit-script",
        action="store_true",
        help="write OUT/compile/compile.sh for Hailo's SDK container instead of compiling here",
    )
    parser.add_argument(
        "--use-random-calib",
        action="store_true",
        help="calibrate segments without 'calib' on random data (test builds only)",
    )


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


def parse_duration(value) -> float | None:
    """DFC durations: '25m', '1h', '90s', 90 (seconds) -> seconds; None if not one of those."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(value))
    if value is None or isinstance(value, bool) or not m:
        return None
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def timeout_seconds(minutes: float | None, settings: dict) -> float | None:
    """--timeout MIN (0: none), else the target's allocator_timeout + TIMEOUT_MARGIN_S."""
    if minutes is not None:
        return minutes * 60 or None
    allocator = parse_duration(merged_settings(settings)[0]["allocator_timeout"])
    return (allocator or FALLBACK_ALLOCATOR_S) + TIMEOUT_MARGIN_S


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
    if args.timeout is not None and args.timeout < 0:
        return _fail("--timeout must be >= 0 minutes")
    if args.scheduler and args.executor != "dask":
        return _fail("--scheduler needs --executor dask")
    target = _target(plan)
    if target is None:
        print(
            f"note: target {plan.get('target')!r} not loadable here; using default [compile] settings", file=sys.stderr
        )
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

    return _compile(args, out, hw_arch, settings, extra)


def _compile(args, out: Path, hw_arch: str, settings: dict, extra) -> int:
    from .dfc_driver import compile_plan
    from .executors import ExecutorError, LocalExecutor
    from .hef_cache import HefCache
    from .progress import LiveProgress

    sdk_module = sdk_module_name(args.sdk_module)
    timeout_s = timeout_seconds(args.timeout, settings)
    cache = None if args.no_cache else HefCache(args.cache)
    t0 = time.monotonic()
    executor = None
    try:
        if args.executor == "dask":
            from .dask_executor import DaskExecutor

            executor = DaskExecutor(args.scheduler, sdk_module, timeout_s, jobs=args.jobs)
        else:
            executor = LocalExecutor(sdk_module, args.jobs, timeout_s)
        progress = LiveProgress(sys.stdout) if sys.stdout.isatty() else print
        summary = compile_plan(
            out,
            hw_arch=hw_arch,
            model_script_extra=extra,
            retry_shrink=args.retry_shrink,
            compile_settings=settings,
            use_random_calib=args.use_random_calib,
            max_shrink=args.max_shrink,
            executor=executor,
            cache=cache,
            progress=progress,
        )
    except (ToolchainMissing, PlanError, ExecutorError) as exc:
        return _fail(str(exc))
    except BaseException:
        if executor is not None:
            executor.close(cancel=True)
            executor = None
        raise
    finally:
        if executor is not None:
            executor.close()
    where = f"executor {executor_name(args)}" + (f", cache {cache.root}" if cache else ", no cache")
    print(f"finished in {time.monotonic() - t0:.1f} s ({where})")
    return 0 if summary.ok else 1


def executor_name(args) -> str:
    if args.executor == "dask":
        return f"dask {args.scheduler or f'local cluster of {args.jobs}'}"
    return f"local, {args.jobs} at a time"


def main(argv=None) -> int:
    """Stand-alone entry (`python -m rewriter.toolchain.compile_cli OUT`) until the CLI wires it."""
    parser = argparse.ArgumentParser(prog="rewrite compile", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
