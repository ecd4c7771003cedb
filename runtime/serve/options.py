"""`rewrite serve` flags (added to the rewriter CLI's parser) and the call behind the verb.

Imports nothing outside the standard library at module level: the CLI builds its parser from here
even on an install without the `serve` extra, and says what to install when the verb is used.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..backends import BACKENDS
from ..errors import OptionError
from .config import ServeConfig, stub_requested

SERVE_EXTRA = "pip install 'hailo-rewriter[serve]'"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("plan", type=Path, help="plan folder (from `rewrite MODEL.onnx`)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=9000, help="0 picks a free port (printed at start)")
    p.add_argument("--backend", default="auto", choices=BACKENDS, help="backend for the plan's hailo steps")
    p.add_argument(
        "--output-names",
        metavar="SPEC",
        help="response keys: 'latent,motif_scores' (plan output order), 'plan_name=key,...', or a "
        ".toml/.json file mapping plan output names to keys (default: the plan's output names)",
    )
    p.add_argument(
        "--stub",
        action="store_true",
        help="answer deterministic stub outputs of the plan's output shapes without running it "
        "(also USE_REAL_MODEL=0); still needs the plan folder",
    )
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads per session")
    p.add_argument("--workers", type=int, default=1, help="plan instances running requests in parallel")
    p.add_argument(
        "--queue",
        type=int,
        default=16,
        help="requests that may wait beyond the running ones; more get 503 with Retry-After",
    )
    p.add_argument("--max-body-kb", type=int, default=1024, help="larger request bodies get 413")
    p.add_argument(
        "--no-fallback",
        action="store_true",
        help="do not fall back to the CPU plan when the hailo backend fails at run time",
    )
    p.add_argument("--verbose", action="store_true")


def config_from_args(args) -> ServeConfig:
    stub, why = stub_requested(args.stub)
    config = ServeConfig(
        plan=args.plan,
        host=args.host,
        port=args.port,
        backend=args.backend,
        threads=args.threads,
        workers=args.workers,
        queue_size=args.queue,
        max_body_bytes=args.max_body_kb * 1024,
        stub=stub,
        stub_reason=why,
        fallback=not args.no_fallback,
        output_names=args.output_names,
    )
    config.validate()
    return config


def run(args) -> int:
    config = config_from_args(args)
    try:
        from .server import serve
    except ImportError as e:
        raise OptionError(f"rewrite serve needs fastapi, uvicorn and prometheus-client ({e}): {SERVE_EXTRA}") from e
    return serve(config)
