"""`rewrite bench` flags (added to the rewriter CLI's parser) and the call behind the verb."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..backends import BACKENDS
from ..errors import OptionError

DEFAULT_REQUESTS = 1000


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("plan", type=Path, help="plan folder (its inputs shape the request windows)")
    p.add_argument(
        "--contract",
        type=Path,
        metavar="FILE.toml",
        help="gates overriding the seed deployment contract (examples/contract.toml lists the keys)",
    )
    p.add_argument(
        "--url", help="bench a running `rewrite serve` at this URL (http://HOST:PORT) instead of the plan in process"
    )
    p.add_argument(
        "--against",
        type=Path,
        metavar="MODEL.onnx",
        help="the original model: cosine gate, and (in process) a bare 1-thread onnxruntime session "
        "timed call for call with the plan",
    )
    p.add_argument(
        "--requests", type=int, default=DEFAULT_REQUESTS, help="windows per phase (bounded, also with --url)"
    )
    p.add_argument("--concurrency", type=int, default=4, help="clients in the concurrent phase (1: skip it)")
    p.add_argument("--warmup", type=int, default=20, help="untimed windows first")
    p.add_argument("--backend", default="auto", choices=BACKENDS, help="in process: backend for the hailo steps")
    p.add_argument("--threads", type=int, default=1, help="in process: onnxruntime intra-op threads per session")
    p.add_argument("--workers", type=int, default=1, help="in process: plan instances in the concurrent phase")
    p.add_argument("--seed", type=int, default=0, help="seed of the random windows")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--verbose", action="store_true")


def run(args) -> int:
    """Exit 0 when every gate passes, 1 when one fails."""
    from ..schema import load_spec
    from .contract import gates, load_contract
    from .http_load import bench_url
    from .measure import Reference, bench_in_process
    from .report import format_report, with_gates

    for name in ("requests", "concurrency", "threads", "workers"):
        if getattr(args, name) < 1:
            raise OptionError(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.warmup < 0:
        raise OptionError(f"--warmup must be at least 0, got {args.warmup}")
    contract = load_contract(args.contract)
    spec = load_spec(args.plan)
    reference = Reference(args.against, spec) if args.against else None

    def progress(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    if args.url:
        result = bench_url(
            spec,
            args.url,
            requests=args.requests,
            concurrency=args.concurrency,
            warmup=args.warmup,
            reference=reference,
            seed=args.seed,
            progress=progress,
        )
    else:
        from .. import Plan

        def load_plan():
            return Plan.load(args.plan, backend=args.backend, intra_op_num_threads=args.threads)

        result = bench_in_process(
            spec,
            load_plan,
            requests=args.requests,
            concurrency=args.concurrency,
            workers=args.workers,
            warmup=args.warmup,
            reference=reference,
            seed=args.seed,
            progress=progress,
        )
    doc = with_gates({"plan": str(args.plan), "requests": args.requests, **result}, gates(contract, result))
    print(json.dumps(doc, indent=2) if args.json else format_report(doc, str(args.plan)))
    return 0 if doc["passed"] else 1
