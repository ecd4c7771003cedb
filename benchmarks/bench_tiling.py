"""Stitched (tiled) plan vs the untiled model on onnxruntime, on the ConvTasNet example.

    python benchmarks/bench_tiling.py [--samples 16000] [--repeat 5] [--small]

Reports the untiled model's time, the plan's total, and from the runtime's own profile
(`plan.run(profile=True)`): engine time, host stitching (slice/concat/sum) and runtime overhead,
each as a share of the plan total.
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _example():
    spec = importlib.util.spec_from_file_location("convtasnet_example", ROOT / "examples" / "convtasnet.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv=None) -> int:
    from rewriter.pipeline import RewriteOptions, rewrite_to_plan
    from rewriter.target import load_target
    from runtime import Plan

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=16000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--width", type=int, default=512)
    args = ap.parse_args(argv)
    sizes = dict(n=96, b=96, h=160, x=4) if args.small else {}
    with tempfile.TemporaryDirectory() as tmp:
        model = _example().export(Path(tmp) / "ctn.onnx", args.samples, **sizes)
        out = Path(tmp) / "plan"
        t0 = time.perf_counter()
        target = load_target("hailo8").with_tiling(args.channels, args.width)
        result, doc, _ = rewrite_to_plan(model, out, target, RewriteOptions(force_tiling=True))
        reports = result.tiling
        t_rewrite = time.perf_counter() - t0
        x = np.random.default_rng(0).standard_normal((1, 1, 1, args.samples)).astype(np.float32)
        sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        sess.run(None, {"mixture": x})
        untiled = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            want = sess.run(None, {"mixture": x})[0]
            untiled.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        plan = Plan.load(out, backend="onnxruntime")
        t_load = time.perf_counter() - t0
        plan.run({"mixture": x})
        profiles = []
        for _ in range(args.repeat):
            got = plan.run({"mixture": x}, profile=True)["sources"]
            profiles.append(plan.last_profile)
        plan.close()
    err = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
    med = lambda xs: statistics.median(xs)  # noqa: E731
    total = med([p.total_seconds for p in profiles])
    stitch = med([p.stitch_seconds for p in profiles])
    engine = med([p.backend_seconds for p in profiles])
    over = med([p.overhead_seconds for p in profiles])
    steps = doc["steps"]
    hailo = [s for s in steps if s["device"] == "hailo"]
    print(f"ConvTasNet {'small' if args.small else 'N=128 B=128 H=256 X=8'}, {args.samples} samples, "
          f"tiles <= {args.channels} ch x {args.width} wide")
    print(f"plan: {len(steps)} steps ({len(hailo)} hailo tile runs, "
          f"{sum(s['kind'] != 'onnx' for s in steps)} stitch), "
          f"{len({s['model'] for s in hailo})} distinct hailo files; rewrite+tile {t_rewrite:.1f} s, load {t_load:.1f} s")
    print(f"untiled onnxruntime:      {med(untiled) * 1e3:9.2f} ms")
    print(f"tiled plan total:         {total * 1e3:9.2f} ms  ({total / med(untiled):.1f}x)")
    print(f"  engine (session.run):   {engine * 1e3:9.2f} ms  {100 * engine / total:5.1f}%")
    print(f"  stitching (numpy):      {stitch * 1e3:9.2f} ms  {100 * stitch / total:5.1f}%")
    print(f"  runtime overhead:       {over * 1e3:9.2f} ms  {100 * over / total:5.1f}%")
    print(f"max rel error vs untiled: {err:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
