"""`rewrite` command line: convert (default verb), inspect, run, check, rules, compile."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import threading
import traceback
from pathlib import Path

from rewriter.errors import UserError, missing_compiler

VERBS = ("inspect", "run", "check", "rules", "compile", "cache", "serve", "bench")
USAGE = """rewrite MODEL.onnx --target hailo8 [-o OUT]     write a plan
       rewrite inspect MODEL.onnx --target hailo8      print the placement, write nothing
       rewrite run OUT --input NAME=x.npy [--profile]  execute a plan
       rewrite check OUT --against MODEL.onnx          parity of a plan against its model
       rewrite rules list|verify ...                   rule files
       rewrite compile OUT                             DFC compile (needs hailo_sdk_client)
       rewrite cache list|prune                        the HEF cache of `rewrite compile`
       rewrite serve OUT [--port 9000]                 HTTP sidecar: /infer, /healthz, /metrics
       rewrite bench OUT [--contract C.toml] [--url U] latency, throughput, memory vs the contract"""


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="ONNX model")
    p.add_argument("--target", default="hailo8", help="built-in target name or path to a target.toml (default: hailo8)")
    p.add_argument(
        "--input-shape",
        action="append",
        default=[],
        metavar="NAME=D1,D2,..",
        help="pin a model input's shape (batch defaults to 1)",
    )
    p.add_argument(
        "--freeze",
        action="append",
        default=[],
        metavar="NAME=V1,V2,..",
        help="hold a model input at a fixed value (it becomes a constant; e.g. sr=16000)",
    )
    p.add_argument(
        "--rules",
        action="append",
        type=Path,
        default=[],
        metavar="FILE.rw",
        help="your rule file (repeatable: --rules a.rw --rules b.rw), applied after the target's "
        "(before them with --rules-first)",
    )
    p.add_argument("--rules-first", action="store_true", help="apply the --rules files before the target's rule files")
    p.add_argument(
        "--keep-float16",
        action="store_true",
        help="keep float16/bfloat16 values in their type (by default a model computes in float32 where the "
        "target's segments hold float32 only; its inputs and outputs keep their type either way)",
    )
    p.add_argument(
        "--disable-rule", action="append", default=[], metavar="RULE", help="do not apply this rule (repeatable)"
    )
    p.add_argument(
        "--helpers",
        action="append",
        type=Path,
        default=[],
        metavar="FILE.py",
        help="Python file whose @helper functions rules may call (repeatable)",
    )
    p.add_argument(
        "--start-node",
        action="append",
        default=[],
        metavar="NAME",
        help="Hailo part starts at this node; what comes before runs on the host",
    )
    p.add_argument(
        "--end-node",
        action="append",
        default=[],
        metavar="NAME",
        help="Hailo part ends at this node; what comes after runs on the host",
    )
    p.add_argument("--tile-channels", type=int, help="override the target's channels per tile block")
    p.add_argument("--tile-width", type=int, help="override the target's max tensor width")
    p.add_argument(
        "--normalize",
        type=Path,
        metavar="STATS.json",
        help="add per-channel z-score as a host pre-step (mean/std JSON)",
    )
    p.add_argument("--calib", type=Path, metavar="FILE", help="calibration windows (.npy / .npz)")
    p.add_argument("--explain", action="store_true", help="print which pass changed which nodes")
    p.add_argument(
        "--trace-rule",
        action="append",
        default=[],
        metavar="RULE",
        help="say why RULE did not match each candidate, and which rule consumed the nodes it wanted (repeatable)",
    )
    p.add_argument("--debug", action="store_true", help="check the graph after every pass")
    p.add_argument("--json", action="store_true", help="print the placement as JSON on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.add_argument("--verbose", action="store_true", help="show tracebacks")


def convert_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rewrite", usage=USAGE, description="Rewrite an ONNX model into a Hailo plan.")
    _add_model_options(p)
    p.add_argument("-o", "--output", type=Path, help="plan folder (default: MODEL.plan next to the model)")
    return p


def verb_parser(verb: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"rewrite {verb}")
    if verb == "inspect":
        _add_model_options(p)
    elif verb == "run":
        p.add_argument("plan", type=Path)
        p.add_argument("--input", action="append", default=[], metavar="NAME=x.npy")
        p.add_argument("--backend", default="auto", choices=["auto", "onnxruntime", "hailo", "emulate-int8"])
        p.add_argument("--profile", action="store_true", help="time per step and runtime overhead")
        p.add_argument("--repeat", type=int, default=1, help="run N times (profile shows the last)")
        p.add_argument("--save", type=Path, metavar="DIR", help="write each output to DIR/NAME.npy")
        p.add_argument("--verbose", action="store_true")
    elif verb == "check":
        p.add_argument("plan", type=Path)
        p.add_argument("--against", type=Path, required=True, metavar="MODEL.onnx")
        p.add_argument("--samples", type=int, default=3)
        p.add_argument(
            "--input",
            action="append",
            default=[],
            metavar="NAME=x.npy",
            help="check on these inputs instead of random ones",
        )
        p.add_argument("--backend", default="onnxruntime", choices=["onnxruntime", "emulate-int8", "hailo"])
        p.add_argument("--min-cosine", type=float, help="default 0.99999 (0.95 for emulate-int8 / hailo)")
        p.add_argument(
            "--max-rel-error", type=float, default=1e-4, help="max abs error / max |reference| (float backends only)"
        )
        p.add_argument(
            "--atol",
            type=float,
            default=0.0,
            help="absolute noise floor: an output whose max abs error is within it passes "
            "(default: twice onnxruntime's own difference on the original model)",
        )
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--json", action="store_true")
        p.add_argument("--verbose", action="store_true")
    elif verb == "rules":
        sub = p.add_subparsers(dest="rules_verb", required=True)
        ls = sub.add_parser("list")
        ls.add_argument("files", nargs="*", type=Path)
        ls.add_argument("--target", default=None)
        vf = sub.add_parser("verify")
        vf.add_argument("files", nargs="*", type=Path)
        vf.add_argument("--target", default=None)
        vf.add_argument("--samples", type=int, default=5)
        vf.add_argument("--seed", type=int, default=0)
        vf.add_argument(
            "--prove",
            action="store_true",
            help="prove rules with z3 over the elementwise/affine fragment; test the rest",
        )
        vf.add_argument(
            "--counterexamples",
            type=Path,
            metavar="DIR",
            help="where failing instances are saved (default: a new temporary folder)",
        )
        vf.add_argument("--json", action="store_true", help="results as JSON on stdout")
        hp = sub.add_parser("helpers")
        for q in (ls, vf, hp):
            q.add_argument("--helpers", action="append", type=Path, default=[], metavar="FILE.py")
            q.add_argument("--verbose", action="store_true")
    elif verb == "compile":
        from rewriter.toolchain.compile_cli import add_arguments

        add_arguments(p)
        if not any(a.dest == "verbose" for a in p._actions):
            p.add_argument("--verbose", action="store_true")
    elif verb == "cache":
        from rewriter.toolchain.cache_cli import add_arguments

        add_arguments(p)
    elif verb == "serve":  # runtime/ only: works on a Pi-light install (no onnx, lark, networkx)
        from runtime.serve.options import add_arguments as add_serve_arguments

        add_serve_arguments(p)
    elif verb == "bench":
        from runtime.bench.options import add_arguments as add_bench_arguments

        add_bench_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in VERBS:
        verb, parser = argv[0], verb_parser(argv[0])
        args = parser.parse_args(argv[1:])
    else:
        verb, parser = "convert", convert_parser()
        args = parser.parse_args(argv)
    prefetched = verb in ("convert", "inspect")
    if prefetched:  # the model is read beside the imports below
        from rewriter.ir import prefetch

        prefetch.prefetch(args.model)
        import_numpy_with_one_blas_thread()
    try:
        from rewriter.cli import commands

        return getattr(commands, f"cmd_{verb}")(args)
    except KeyboardInterrupt:
        print("rewrite: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rewrite ... | head`: the reader left, nothing more to say
        sys.stderr.close()
        return 0
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, not a traceback
        known = _known_error(exc)
        if known is None:
            return _internal_error(args, exc)
        return _fail(args, known)
    finally:
        if prefetched:  # a process that runs main() again (tests, a caller) holds no stale bytes
            prefetch.forget(args.model)


BLAS_THREADS = "OPENBLAS_NUM_THREADS"


def import_numpy_with_one_blas_thread() -> None:
    """numpy's OpenBLAS starts a worker thread per extra core when numpy is imported, and each spins
    for about 0.1 s of CPU before it sleeps: on a 2-core board, the core the prefetch and the plan
    writer run on. A conversion calls no BLAS routine worth a second thread, so it imports numpy
    with one (unless the user set OPENBLAS_NUM_THREADS); the variable is not left set for anything
    the process starts later."""
    if "numpy" in sys.modules or BLAS_THREADS in os.environ:
        return
    os.environ[BLAS_THREADS] = "1"
    try:
        import numpy  # noqa: F401
    finally:
        del os.environ[BLAS_THREADS]


def run() -> None:
    """The `rewrite` command (and `python -m rewriter.cli`): main(), then exit without tearing the
    interpreter down. Freeing the models, graphs and arrays a rewrite leaves behind object by
    object took a sixth of a whole `rewrite` run; the operating system frees them at once. Only
    when nothing can be lost: output flushed, logging shut down, no other Python thread alive, no
    profiler or tracer (coverage, cProfile) waiting to write its report at exit, and
    REWRITER_FULL_EXIT unset.
    A conversion (the default verb, `inspect`) also runs without the cyclic garbage collector:
    it is short-lived and ends here, so the cycles a rewrite leaves behind are never worth
    collecting; collections during imports and plan writing (where the rewrite's own pause has
    ended) took 0.1 s of a ConvTasNet rewrite. Long-lived verbs (serve, compile, bench) keep it."""
    if not sys.argv[1:] or sys.argv[1] not in VERBS or sys.argv[1] == "inspect":
        gc.disable()
    code = main()
    code = 0 if code is None else int(code)
    if (
        os.environ.get("REWRITER_FULL_EXIT")
        or sys.getprofile() is not None
        or sys.gettrace() is not None
        or threading.active_count() > 1
    ):
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # a reader that left, a stream already closed
        pass
    logging.shutdown()
    os._exit(code)


def _known_error(exc: Exception) -> Exception | None:
    """Errors about the user's input (by type), mapped to one-line messages. The runtime's errors
    (PlanError, OptionError) come from runtime/, which cannot import the compiler's UserError."""
    from runtime.errors import OptionError, PlanError

    if isinstance(exc, (UserError, PlanError, OptionError)):
        return exc
    if isinstance(exc, ImportError):
        return missing_compiler(exc)
    return None


INTERNAL_ERROR = 3  # exit code of a bug (not the user's input): the fuzzer counts these


def _internal_error(args, exc: BaseException) -> int:
    """A bug, not the user's input: one line that says so, the traceback with --verbose, exit 3."""
    if getattr(args, "verbose", False):
        traceback.print_exception(exc)
    detail = (str(exc).strip().partition("\n")[0] or "no message")[:300]
    print(
        f"rewrite: internal error (a bug in rewrite, not in your input): {type(exc).__name__}: {detail}"
        + ("" if getattr(args, "verbose", False) else "; rerun with --verbose for the traceback"),
        file=sys.stderr,
    )
    return INTERNAL_ERROR


def _fail(args, exc: Exception) -> int:
    if getattr(args, "verbose", False):
        traceback.print_exception(exc)
    message = str(exc).strip() or type(exc).__name__
    first, _, rest = message.partition("\n")
    # rule syntax errors carry a source line and caret: keep them, they are the point
    keep = rest and getattr(exc, "shows_source", False)
    print(f"rewrite: error: {first}" + (f"\n{rest}" if keep else ""), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
