"""Where the runtime's p95 tail comes from: onnxruntime thread settings, plan vs bare session.

    python benchmarks/bench_tail.py [--plan OUT --model MODEL.onnx] [--iters 2000]

Without --plan, rewrites the real TCN encoder fixture (../shared/fixtures/tcn_encoder) for hailo8
into a temp dir. Every variant runs once per iteration, round robin, so all of them see the same
machine load (on a shared box the load moves by the second); the table gives p50/p95/p99 and p95
relative to the yardstick: a bare single-threaded InferenceSession on the original model.

Variants: bare sessions with 1 thread and with onnxruntime's default pool (one thread per core,
spinning workers); the plan with that spinning pool per session (Plan.load's default before the
fix), with the pool but no spinning (intra_op_num_threads=0), and with Plan.load's default (1).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from runtime import Plan  # noqa: E402
from runtime.backends import OrtBackend  # noqa: E402
from runtime.parity import normalized  # noqa: E402
from runtime.spec import load_spec  # noqa: E402

# ../shared beside the main checkout (../../shared from a worktree under /work/wt)
FIXTURE = next((d / "fixtures" / "tcn_encoder" for d in (ROOT.parent / "shared", ROOT.parent.parent / "shared")
                if (d / "fixtures" / "tcn_encoder").is_dir()), ROOT.parent / "shared" / "fixtures" / "tcn_encoder")


def bare(model: Path, threads: int | None) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])


def rewrite_fixture(tmp: Path) -> tuple[Path, Path]:
    from rewriter.cli import main as rewrite
    model = FIXTURE / "tcn_encoder_for_edgeinfer.onnx"
    if not model.is_file():
        sys.exit(f"no --plan given and the fixture {model} is missing")
    out = tmp / "tcn.plan"
    code = rewrite([str(model), "--target", "hailo8", "--normalize", str(FIXTURE / "model_config.json"),
                    "-o", str(out), "-q"])
    if code:
        sys.exit(f"rewrite failed ({code})")
    return out, model


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plan", type=Path)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--iters", type=int, default=2000)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        plan_dir, model = (args.plan, args.model) if args.plan else rewrite_fixture(Path(tmp))
        probe = Plan.load(plan_dir, backend="onnxruntime")
        rng = np.random.default_rng(0)
        feeds = [{t.name: rng.standard_normal(t.shape).astype(np.float32) for t in probe.inputs} for _ in range(16)]
        ref_feeds = [normalized(f, probe.spec.doc.get("normalization")) for f in feeds]
        probe.close()
        variants = {}
        for name, threads in (("bare, 1 thread", 1), ("bare, default pool", None)):
            s = bare(model, threads)
            variants[name] = (lambda f, s=s: s.run(None, f), ref_feeds)
        # before the fix: Plan.load took onnxruntime's default, a spinning pool per session
        spinning = OrtBackend()
        spinning.options.intra_op_num_threads = 0  # onnxruntime's pool size, spinning allowed (its default)
        variants["plan, default pool, spinning"] = (Plan(load_spec(plan_dir), spinning, spinning, "onnxruntime",
                                                         "bench").run, feeds)
        for name, threads in (("plan, default pool, no spinning", 0), ("plan, Plan.load default", None)):
            variants[name] = (Plan.load(plan_dir, backend="onnxruntime", intra_op_num_threads=threads).run, feeds)
        times = {k: [] for k in variants}
        for i in range(args.iters + 50):
            order = list(variants.items())
            if i % 2:
                order.reverse()
            for name, (run, fs) in order:
                f = fs[i % len(fs)]
                t0 = time.perf_counter()
                run(f)
                if i >= 50:  # warm-up
                    times[name].append(time.perf_counter() - t0)
        base = np.percentile(times["bare, 1 thread"], 95)
        print(f"{'variant':<34}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'p95/yardstick':>15}")
        for name, t in times.items():
            p50, p95, p99 = np.percentile(np.asarray(t) * 1e3, [50, 95, 99])
            print(f"{name:<34}{p50:9.3f}{p95:9.3f}{p99:9.3f}{p95 / base / 1e3:14.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
