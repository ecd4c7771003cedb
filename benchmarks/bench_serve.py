"""What the sidecar adds to a plan run: request decoding, response encoding, the per-run profile
the metrics use, and the whole HTTP round trip (a `rewrite serve` subprocess, one keep-alive
connection) against Plan.run in this process.

    python benchmarks/bench_serve.py [--plan OUT] [--iters 1000]

Without --plan, rewrites the real TCN encoder fixture (../shared/fixtures/tcn_encoder) into a temp
dir. Figures are medians (and p95 for the round trip); plan and HTTP calls are interleaved so both
see the same machine load.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_tail import rewrite_fixture  # noqa: E402

from runtime import Plan  # noqa: E402
from runtime.serve.payload import PayloadCodec  # noqa: E402


def median_us(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e6


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plan", type=Path)
    ap.add_argument("--iters", type=int, default=1000)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        plan_dir = args.plan or rewrite_fixture(Path(tmp))[0]
        plan = Plan.load(plan_dir, backend="onnxruntime", intra_op_num_threads=1)
        (spec,) = plan.inputs
        x = np.random.default_rng(0).standard_normal(spec.shape[1:]).astype(np.float32)
        body = json.dumps({"x": x.tolist()}).encode()
        codec = PayloadCodec(plan.inputs, {t.name: t.name for t in plan.outputs})
        feeds, _ = codec.decode(body)
        outputs = plan.run(feeds)
        n = args.iters
        print(f"request body: {len(body)} bytes")
        print(f"decode (json + checks):    {median_us(lambda: codec.decode(body), n):8.1f} us")
        print(f"encode (+ json.dumps):     {median_us(lambda: json.dumps(codec.encode(outputs, False)), n):8.1f} us")
        runs = ([], [])  # interleaved, so both see the same machine load
        for _ in range(n):
            runs[0].append(median_us(lambda: plan.run(feeds), 1))
            runs[1].append(median_us(lambda: plan.run(feeds, profile=True), 1))
        print(f"Plan.run:                  {np.median(runs[0]):8.1f} us")
        print(f"Plan.run(profile=True):    {np.median(runs[1]):8.1f} us  (what the service runs, for /metrics)")

        proc = subprocess.Popen(
            [sys.executable, "-m", "rewriter.cli", "serve", str(plan_dir), "--port", "0"],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            port = int(re.search(r":(\d+) ", proc.stderr.readline()).group(1))
            conn = http.client.HTTPConnection("127.0.0.1", port)

            def post():
                conn.request("POST", "/infer", body=body, headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                assert r.status == 200

            for _ in range(50):
                post()
            http_s, plan_s = [], []
            for _ in range(n):
                t0 = time.perf_counter()
                post()
                http_s.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                plan.run(feeds)
                plan_s.append(time.perf_counter() - t0)
            conn.close()
        finally:
            proc.terminate()
            proc.wait(30)
        for label, s in (("HTTP round trip", http_s), ("Plan.run alongside", plan_s)):
            p50, p95 = np.percentile(np.asarray(s) * 1e3, [50, 95])
            print(f"{label + ':':<27}p50 {p50:7.3f} ms  p95 {p95:7.3f} ms")
        print(f"HTTP + service overhead:   {(np.median(http_s) - np.median(plan_s)) * 1e3:7.3f} ms per request (p50)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
