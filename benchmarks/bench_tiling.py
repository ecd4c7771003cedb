"""Tiled plans of full-size separators: what they cost to deploy and to run.

    python benchmarks/bench_tiling.py [--samples 16000] [--repeat 5] [--pairs 9] [--models example,torchaudio,exposed]

Models (16,000 samples, asteroid's defaults: 512 filters k=16 s=8, 128 bottleneck, 512 hidden,
128 skip, 8 blocks x 3 repeats, gLN, PReLU, 2 sources): `example` is examples/convtasnet.py,
`torchaudio` torchaudio's ConvTasNet (needs `pip install --no-deps torchaudio==2.11.0`, skipped
otherwise), `exposed` the example separator also returning a residual and a skip tensor (consumed
twice). Each in the default form (the hailo8 target's resource model) and the strict form
(--tile-channels 64 --tile-width 512). Per plan: device calls and distinct HEFs per inference,
host steps, host stitch operations, MiB moved between host and device, Plan.load, Plan.run on
onnxruntime against the original model on onnxruntime (same thread settings, alternated),
parity, and in the strict form whether every Hailo conv is <= 64 channels in and out and every
tensor <= 512 wide. Then the whole-process `rewrite` against `onnxslim` on the same file
(alternated, pairwise ratios: their median, quartiles and how many pairs are at most 0.5x; needs
onnxslim installed). Wall-clock figures on a shared machine
are noisy: the medians and the ratio of paired runs are what to quote.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def _example():
    spec = importlib.util.spec_from_file_location("convtasnet_example", ROOT / "examples" / "convtasnet.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def export_models(folder: Path, samples: int, names: list[str]) -> dict[str, Path]:
    import torch

    ex = _example()
    out = {}
    if "example" in names:
        out["example"] = ex.export(folder / "example.onnx", samples, conv1d=True)
    if "exposed" in names:
        from tiling.test_convtasnet import _Exposed

        torch.manual_seed(0)
        net = _Exposed(ex.ConvTasNet(conv1d=True).eval())
        path = folder / "exposed.onnx"
        with torch.no_grad():
            torch.onnx.export(
                net,
                (torch.randn(1, 1, samples),),
                str(path),
                input_names=["mixture"],
                output_names=["sources", "residual1", "skip2"],
                opset_version=17,
                dynamo=False,
            )
        out["exposed"] = path
    if "torchaudio" in names:
        from tiling.fixtures.export_torchaudio_convtasnet import import_torchaudio

        try:
            ta = import_torchaudio()
        except ImportError:
            print("torchaudio not installed: skipping it (pip install --no-deps torchaudio==2.11.0)")
        else:
            torch.manual_seed(0)
            path = folder / "torchaudio.onnx"
            with torch.no_grad():
                torch.onnx.export(
                    ta.models.ConvTasNet().eval(),
                    (torch.randn(1, 1, samples),),
                    str(path),
                    input_names=["mixture"],
                    output_names=["sources"],
                    opset_version=17,
                    dynamo=False,
                )
            out["torchaudio"] = path
    return out


def strict_limits_hold(out: Path) -> bool:
    """Every Hailo conv <= 64 channels in and out, every tensor <= 512 wide, one HEF per call."""
    from onnx import shape_inference

    doc = json.loads((out / "plan.json").read_text())
    hailo = [s for s in doc["steps"] if s["device"] == "hailo"]
    ok = len({s["model"] for s in hailo}) == len(hailo)
    for step in hailo:
        m = shape_inference.infer_shapes(onnx.load(str(out / step["model"])))
        shapes = {
            v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in list(m.graph.input) + list(m.graph.output) + list(m.graph.value_info)
        }
        ok &= all(s[3] <= 512 for s in shapes.values())
        ok &= all(
            max(shapes[n.input[0]][1], shapes[n.output[0]][1]) <= 64
            for n in m.graph.node
            if n.op_type in ("Conv", "ConvTranspose")
        )
    return ok


def run_plan(out: Path, model: Path, repeat: int, threads: int | None = None) -> dict:
    """Plan.load, then Plan.run against the original model on onnxruntime with the same session
    options (`threads` intra-op threads for both; None: the runtime's default, one), alternated."""
    from runtime import Plan
    from runtime.backends.ort_backend import session_options
    from runtime.parity import compare

    t0 = time.perf_counter()
    plan = Plan.load(out, backend="onnxruntime", intra_op_num_threads=threads)
    load = time.perf_counter() - t0
    sess = ort.InferenceSession(str(model), session_options(threads), providers=["CPUExecutionProvider"])
    name = plan.inputs[0].name
    x = np.random.default_rng(0).standard_normal(plan.inputs[0].shape).astype(np.float32)
    names = [o.name for o in sess.get_outputs()]
    want = dict(zip(names, sess.run(None, {sess.get_inputs()[0].name: x})))
    got = plan.run({name: x})
    ratios, orig, tiled = [], [], []
    for _ in range(repeat):  # alternated: the machine's drift hits both
        t0 = time.perf_counter()
        sess.run(None, {sess.get_inputs()[0].name: x})
        a = time.perf_counter() - t0
        t0 = time.perf_counter()
        plan.run({name: x}, profile=True)
        b = time.perf_counter() - t0
        orig.append(a)
        tiled.append(b)
        ratios.append(b / a)
    prof = plan.last_profile
    plan.close()
    rows = compare({n: got[n] for n in names}, want)
    return {
        "load_s": load,
        "orig_ms": 1e3 * statistics.median(orig),
        "plan_ms": 1e3 * statistics.median(tiled),
        "ratio": statistics.median(ratios),
        "stitch_share": prof.stitch_seconds / prof.total_seconds,
        "cosine": min(r.cosine for r in rows),
        "max_rel": max(r.max_rel for r in rows),
    }


def whole_process(model: Path, out: Path, pairs: int) -> dict | None:
    slim = shutil.which("onnxslim")
    if slim is None:
        print("onnxslim not installed: no rewrite-vs-onnxslim figure (pip install onnxslim)")
        return None
    rewrite = [sys.executable, "-m", "rewriter.cli", str(model), "-o", str(out), "-q"]
    slimmed = out.parent / f"{model.stem}_slim.onnx"
    a, b = [], []
    for _ in range(pairs + 1):  # the first pair warms the caches and is not counted
        t0 = time.perf_counter()
        subprocess.run(rewrite, check=True, capture_output=True)
        a.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run([slim, str(model), str(slimmed)], check=True, capture_output=True)
        b.append(time.perf_counter() - t0)
    a, b = a[1:], b[1:]
    ratios = sorted(x / y for x, y in zip(a, b))
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    return {
        "rewrite_s": statistics.median(a),
        "onnxslim_s": statistics.median(b),
        "ratio": statistics.median(ratios),  # the figure quoted: pairwise
        "ratio_of_medians": statistics.median(a) / statistics.median(b),  # how far the two disagree: noise
        "ratio_quartiles": [quartiles[0], quartiles[2]],  # the middle half of the pairs
        "pairs_at_most_half": sum(r <= 0.5 for r in ratios),  # of len(ratios)
        "pairs": len(ratios),
    }


def main(argv=None) -> int:
    from rewriter.pipeline import RewriteOptions, rewrite_to_plan
    from rewriter.target import load_target

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=16000)
    ap.add_argument("--repeat", type=int, default=5, help="Plan.run / original pairs")
    ap.add_argument("--pairs", type=int, default=9, help="rewrite / onnxslim process pairs (0: skip)")
    ap.add_argument("--models", default="example,torchaudio,exposed")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="onnxruntime intra-op threads of the plan's sessions and of the original's (default: the runtime's, 1)",
    )
    args = ap.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        models = export_models(tmp, args.samples, args.models.split(","))
        for label, model in models.items():
            for form, limits in (("default", (None, None)), ("strict", (64, 512))):
                out = tmp / f"{label}_{form}.plan"
                t0 = time.perf_counter()
                _, doc, _ = rewrite_to_plan(model, out, load_target("hailo8").with_tiling(*limits), RewriteOptions())
                row = {
                    "rewrite_in_process_s": time.perf_counter() - t0,
                    **doc["counts"],
                    **run_plan(out, model, args.repeat, args.threads),
                }
                if form == "strict":
                    row["strict_limits_hold"] = strict_limits_hold(out)
                results[f"{label}/{form}"] = row
                print(
                    f"{label:10s} {form:7s} "
                    + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()),
                    flush=True,
                )
            if args.pairs:
                results[f"{label}/process"] = whole_process(model, tmp / f"{label}_proc.plan", args.pairs)
                print(f"{label:10s} whole-process rewrite vs onnxslim: {results[f'{label}/process']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
