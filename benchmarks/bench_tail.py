"""Where the runtime's p95 tail comes from: onnxruntime thread settings, plan vs bare session.

    python benchmarks/bench_tail.py [--plan OUT --model MODEL.onnx] [--rounds 8] [--iters 250]

Without --plan, rewrites the real TCN encoder fixture (../shared/fixtures/tcn_encoder) for hailo8
into a temp dir. Each variant runs in a process of its own (spinning thread pools would otherwise
steal from the other variants), `--iters` calls per round, variants alternating round by round so
all of them see the same machine load (on a shared box it moves by the second). The table gives
p50 / p95 / p99 over all rounds, p95 relative to the yardstick (a bare single-threaded
InferenceSession on the original model), and CPU seconds per call (spinning workers burn CPU).

Variants: bare sessions with 1 thread and with onnxruntime's default pool (one thread per core,
spinning workers); the plan with that spinning pool per session (Plan.load's default before the
fix), with a pool but no spinning (intra_op_num_threads=0), and with Plan.load's default (1).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# ../shared beside the main checkout (../../shared from a worktree under /work/wt)
FIXTURE = next(
    (
        d / "fixtures" / "tcn_encoder"
        for d in (ROOT.parent / "shared", ROOT.parent.parent / "shared")
        if (d / "fixtures" / "tcn_encoder").is_dir()
    ),
    ROOT.parent / "shared" / "fixtures" / "tcn_encoder",
)
VARIANTS = (
    "bare, 1 thread",
    "bare, default pool",
    "plan, default pool, spinning",
    "plan, default pool, no spinning",
    "plan, Plan.load default",
)


def make_runner(variant: str, plan_dir: Path, model: Path):
    """(run(feeds), feeds) for one variant."""
    import onnxruntime as ort

    from runtime import Plan
    from runtime.backends import OrtBackend
    from runtime.parity import normalized
    from runtime.schema import load_spec

    spec = load_spec(plan_dir)
    rng = np.random.default_rng(0)
    feeds = [{t.name: rng.standard_normal(t.shape).astype(np.float32) for t in spec.inputs} for _ in range(16)]
    if variant.startswith("bare"):
        opts = ort.SessionOptions()
        if variant == "bare, 1 thread":
            opts.intra_op_num_threads = 1
        s = ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])
        return (lambda f: s.run(None, f)), [normalized(f, spec.doc.get("normalization")) for f in feeds]
    if variant == "plan, default pool, spinning":  # Plan.load's default before the fix
        host = OrtBackend()
        host.options.intra_op_num_threads = 0  # onnxruntime's pool size, spinning allowed (its default)
        return Plan(spec, host, host, "onnxruntime", "bench").run, feeds
    threads = 0 if variant == "plan, default pool, no spinning" else None
    return Plan.load(plan_dir, backend="onnxruntime", intra_op_num_threads=threads).run, feeds


def child(variant: str, plan_dir: Path, model: Path, iters: int) -> None:
    run, feeds = make_runner(variant, plan_dir, model)
    for i in range(20):
        run(feeds[i % len(feeds)])
    times = []
    c0 = time.process_time()
    for i in range(iters):
        t0 = time.perf_counter()
        run(feeds[i % len(feeds)])
        times.append(time.perf_counter() - t0)
    print(json.dumps({"times": times, "cpu": time.process_time() - c0}))


def rewrite_fixture(tmp: Path) -> tuple[Path, Path]:
    from rewriter.cli import main as rewrite

    model = FIXTURE / "tcn_encoder_for_edgeinfer.onnx"
    if not model.is_file():
        sys.exit(f"no --plan given and the fixture {model} is missing")
    out = tmp / "tcn.plan"
    code = rewrite(
        [str(model), "--target", "hailo8", "--normalize", str(FIXTURE / "model_config.json"), "-o", str(out), "-q"]
    )
    if code:
        sys.exit(f"rewrite failed ({code})")
    return out, model


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plan", type=Path)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--iters", type=int, default=250, help="calls per variant per round")
    ap.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.plan, args.model, args.iters)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        plan_dir, model = (args.plan, args.model) if args.plan else rewrite_fixture(Path(tmp))
        times = {v: [] for v in VARIANTS}
        cpu = dict.fromkeys(VARIANTS, 0.0)
        for r in range(args.rounds):
            for v in VARIANTS if r % 2 == 0 else VARIANTS[::-1]:
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        v,
                        "--plan",
                        str(plan_dir),
                        "--model",
                        str(model),
                        "--iters",
                        str(args.iters),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                doc = json.loads(out.strip().splitlines()[-1])
                times[v] += doc["times"]
                cpu[v] += doc["cpu"]
        base = np.percentile(times[VARIANTS[0]], 95)
        print(f"{'variant':<34}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'p95/yardstick':>15}{'CPU ms/call':>13}")
        for v, t in times.items():
            p50, p95, p99 = np.percentile(np.asarray(t) * 1e3, [50, 95, 99])
            print(f"{v:<34}{p50:9.3f}{p95:9.3f}{p99:9.3f}{p95 / base / 1e3:14.2f}x{cpu[v] / len(t) * 1e3:13.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
