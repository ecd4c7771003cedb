"""Runtime overhead: a 15-step plan (8 conv segments, temporal tiles, stitching) vs one ORT session.

    python benchmarks/bench_runtime.py [--iters 2000] [--width 128] [--channels 16] [--threads 1]

Builds both in a temp dir with onnx.helper (the runtime itself never imports onnx), checks they
agree, then reports per-call times and the runtime's own overhead (total run time minus time in
session.run minus stitching), absolute and as a share of the call.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rewriter.plan.document import finalize  # noqa: E402
from runtime import Plan  # noqa: E402
from runtime.schema import VERSION  # noqa: E402


def conv_nodes(i, x, y, c, rng, inits):
    w = (rng.standard_normal((c, c, 1, 3)) / np.sqrt(3 * c)).astype(np.float32)
    b = (rng.standard_normal(c) * 0.1).astype(np.float32)
    inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"B{i}")]
    return [
        helper.make_node("Conv", [x, f"W{i}", f"B{i}"], [f"c{i}_{y}"], pads=[0, 1, 0, 1]),
        helper.make_node("Relu", [f"c{i}_{y}"], [y]),
    ]


def save(path, nodes, inits, ins, outs):
    vi = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
    g = helper.make_graph(nodes, path.stem, [vi(n, s) for n, s in ins], [vi(n, s) for n, s in outs], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 9
    onnx.save(m, str(path))


def build(out: Path, c: int, t: int):
    """Layer i = Conv(1x3, same) + Relu; layer 4 runs as 2 temporal tiles; layer 6 has a residual."""
    shape = [1, c, 1, t]
    seg = out / "segments"
    seg.mkdir(parents=True)
    # Monolithic reference.
    nodes, inits = [], []
    prev = "x"
    for i in range(8):
        rng = np.random.default_rng(i)
        nodes += conv_nodes(i, prev, f"l{i}", c, rng, inits)
        prev = f"l{i}"
        if i == 6:
            nodes.append(helper.make_node("Add", ["l6", "l5"], ["r6"]))
            prev = "r6"
    nodes[-1].output[0] = "y"
    save(out / "model.onnx", nodes, inits, [("x", shape)], [("y", shape)])
    # Segments (same seeds -> same weights).
    for i in range(8):
        inits = []
        tshape = [1, c, 1, t // 2 + 2] if i == 4 else shape
        save(
            seg / f"seg{i}.onnx",
            conv_nodes(i, "a", "b", c, np.random.default_rng(i), inits),
            inits,
            [("a", tshape)],
            [("b", tshape)],
        )
    onnx_step = lambda i, a, b, m=None: {
        "name": f"seg{i}" if m is None else m,
        "device": "hailo",
        "kind": "onnx",
        "model": f"segments/seg{i}.onnx",
        "inputs": [a],
        "outputs": [b],
    }
    h = t // 2
    steps = [onnx_step(0, "x", "t0"), onnx_step(1, "t0", "t1"), onnx_step(2, "t1", "t2"), onnx_step(3, "t2", "t3")]
    for k in range(2):
        steps += [
            {
                "name": f"cut{k}",
                "kind": "slice",
                "inputs": ["t3"],
                "outputs": [f"in{k}"],
                "axis": 3,
                "start": k * h - 1,
                "end": (k + 1) * h + 1,
            },
            onnx_step(4, f"in{k}", f"o{k}", m=f"seg4_tile{k}"),
            {
                "name": f"crop{k}",
                "kind": "slice",
                "inputs": [f"o{k}"],
                "outputs": [f"k{k}"],
                "axis": 3,
                "start": 1,
                "end": h + 1,
            },
        ]
    steps += [
        {"name": "join", "kind": "concat", "inputs": ["k0", "k1"], "outputs": ["t4"], "axis": 3},
        onnx_step(5, "t4", "t5"),
        onnx_step(6, "t5", "t6"),
        {"name": "residual", "kind": "sum", "inputs": ["t6", "t5"], "outputs": ["r6"]},
        onnx_step(7, "r6", "y"),
    ]
    doc = {
        "format": "hailo-rewriter-plan",
        "version": VERSION,
        "target": "hailo8",
        "source": {"model": "model.onnx", "sha256": ""},
        "inputs": [{"name": "x", "shape": shape, "dtype": "float32"}],
        "outputs": [{"name": "y", "shape": shape, "dtype": "float32"}],
        "steps": steps,
    }
    finalize(doc, out)  # `tensors` and the `files` hashes, as the rewriter writes them
    (out / "plan.json").write_text(json.dumps(doc, indent=1))


def timeit(fn, iters):
    for _ in range(max(20, iters // 20)):
        fn()
    samples = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples), statistics.fmean(samples)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        out = Path(d)
        build(out, args.channels, args.width)
        plan = Plan.load(out, backend="onnxruntime", intra_op_num_threads=args.threads)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        sess = ort.InferenceSession(str(out / "model.onnx"), opts, providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).standard_normal((1, args.channels, 1, args.width)).astype(np.float32)
        feed = {"x": x}
        ref = sess.run(None, feed)[0]
        got = plan.run(feed)["y"]
        assert np.allclose(got, ref, rtol=1e-4, atol=1e-5), float(np.abs(got - ref).max())

        mono_med, mono_mean = timeit(lambda: sess.run(None, feed), args.iters)
        plan_med, plan_mean = timeit(lambda: plan.run(feed), args.iters)
        prof_med, _ = timeit(lambda: plan.run(feed, profile=True), args.iters)
        # Breakdown from many profiled runs: medians, since single runs are noisy (outliers skew means).
        rows = []
        for _ in range(args.iters):
            plan.run(feed, profile=True)
            p = plan.last_profile
            rows.append((p.total_seconds, p.backend_seconds, p.stitch_seconds, p.overhead_seconds))
        n = args.iters
        tot, eng, sti, ovh = (statistics.median(col) for col in zip(*rows))
        n_onnx = sum(1 for s in plan.steps if s.kind == "onnx")
        steps = len(plan.steps)
        print(
            f"plan: {steps} steps ({n_onnx} onnx, {steps - n_onnx} stitch), "
            f"x={list(x.shape)}, intra_op_num_threads={args.threads}, iters={n}"
        )
        print(f"monolithic ORT session      median {mono_med * 1e6:8.1f} us   mean {mono_mean * 1e6:8.1f} us")
        print(f"plan.run                    median {plan_med * 1e6:8.1f} us   mean {plan_mean * 1e6:8.1f} us")
        print(f"plan.run(profile=True)      median {prof_med * 1e6:8.1f} us")
        print(
            f"plan - monolithic           median {(plan_med - mono_med) * 1e6:8.1f} us "
            f"(x{plan_med / mono_med:.1f}; mostly ORT's fixed cost per session.run, paid {n_onnx} times)"
        )
        print("profiled breakdown (median per call):")
        print(f"  inside session.run        {eng * 1e6:8.1f} us  {100 * eng / tot:5.1f}%")
        print(f"  stitching                 {sti * 1e6:8.1f} us  {100 * sti / tot:5.1f}%")
        print(
            f"  runtime overhead          {ovh * 1e6:8.1f} us  {100 * ovh / tot:5.1f}%  "
            f"({ovh * 1e6 / steps:.2f} us/step, includes the profiler's own clock reads)"
        )
        print(f"  total                     {tot * 1e6:8.1f} us")
        # Pure dispatch cost: the same schedule with every step replaced by a no-op that returns
        # arrays of the declared shapes (the runtime checks every step's outputs against plan.json).
        declared = plan.spec.tensors
        for op in plan._ops:
            outs = [np.zeros(declared[n].shape, declared[n].dtype) for n in op.step.outputs]
            op.runner.run = lambda xs, outs=outs: outs
        plan._compile()
        disp_med, _ = timeit(lambda: plan.run(feed), args.iters)
        print(
            f"dispatch only (all steps no-ops): median {disp_med * 1e6:.1f} us = {disp_med * 1e6 / steps:.2f} us/step"
        )


if __name__ == "__main__":
    main()
