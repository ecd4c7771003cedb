"""Load generator for `rewrite bench` in process on a Plan (http_load.py: against a running sidecar).

Both run a single-stream phase (one window at a time: the latency of a window) and, with more than
one client, a concurrent phase (the sustained throughput). With a reference model (--against), a
bare onnxruntime session on the original model (1 intra-op thread, no plan) runs interleaved with
the plan, call for call, so both see the same machine load and their ratio means something on a
shared box.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..errors import OptionError
from ..parity import compare, normalized, random_inputs
from ..schema import PlanSpec
from ..serve.executor import BoundedExecutor, run_all
from ..serve.health import peak_rss_mb

POOL = 16  # distinct random windows, cycled
PARITY_SAMPLES = 8
PROFILED_RUNS = 200


def percentiles_ms(seconds: list[float]) -> dict:
    a = np.asarray(seconds, np.float64) * 1e3
    if not a.size:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "mean_ms": None, "max_ms": None}
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return {
        "p50_ms": round(float(p50), 4),
        "p95_ms": round(float(p95), 4),
        "p99_ms": round(float(p99), 4),
        "mean_ms": round(float(a.mean()), 4),
        "max_ms": round(float(a.max()), 4),
    }


class Reference:
    """The original model on a bare single-threaded onnxruntime session: the yardstick for the
    runtime's overhead and the reference for parity. Takes the plan's (raw) feeds and applies the
    plan's z-score first when the plan carries one, outside the timed call."""

    def __init__(self, path: Path, spec: PlanSpec):
        if not Path(path).is_file():
            raise OptionError(f"--against: no such model file {path}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # ORT's own exception types
            raise OptionError(f"--against: onnxruntime cannot load {path}: {str(e).splitlines()[0]}") from e
        self.path = Path(path)
        want = {t.name: list(t.shape) for t in spec.inputs}
        have = {i.name: list(i.shape) for i in self.session.get_inputs()}
        if set(have) != set(want):
            raise OptionError(f"--against {path}: inputs {sorted(have)} differ from the plan's {sorted(want)}")
        self.names = [o.name for o in self.session.get_outputs()]
        self.normalization = spec.doc.get("normalization")

    def feeds(self, plan_feeds: dict) -> dict:
        return normalized(plan_feeds, self.normalization)

    def run(self, feeds: dict) -> dict:
        return dict(zip(self.names, self.session.run(self.names, feeds)))


def _timed(fn, arg) -> float:
    t0 = time.perf_counter()
    fn(arg)
    return time.perf_counter() - t0


def bench_in_process(
    spec: PlanSpec,
    load_plan,
    *,
    requests: int,
    concurrency: int,
    workers: int,
    warmup: int,
    reference: Reference | None,
    seed: int = 0,
    progress=lambda message: None,
) -> dict:
    """load_plan() -> a Plan. Returns the result document (see report.result_keys)."""
    rng = np.random.default_rng(seed)
    pool = [random_inputs(spec.inputs, rng) for _ in range(POOL)]
    ref_pool = [reference.feeds(f) for f in pool] if reference else None
    plan = load_plan()
    result = {"mode": "in-process", "backend": plan.backend_name, "backend_reason": plan.backend_reason}
    for i in range(warmup):
        plan.run(pool[i % POOL])
        if reference:
            reference.run(ref_pool[i % POOL])

    progress(
        f"single stream: {requests} windows"
        + (" (interleaved with the bare onnxruntime reference)" if reference else "")
    )
    plan_s, ref_s = [], []
    for i in range(requests):
        k = i % POOL
        if reference and i % 2:  # alternate who goes first: neither always runs on a warm cache
            ref_s.append(_timed(reference.run, ref_pool[k]))
        plan_s.append(_timed(plan.run, pool[k]))
        if reference and not i % 2:
            ref_s.append(_timed(reference.run, ref_pool[k]))
    single = percentiles_ms(plan_s)
    single["windows_per_s"] = round(len(plan_s) / sum(plan_s), 2)
    result["single_stream"] = single

    overheads, totals = [], []
    for i in range(min(requests, PROFILED_RUNS)):
        plan.run(pool[i % POOL], profile=True)
        overheads.append(plan.last_profile.overhead_seconds)
        totals.append(plan.last_profile.total_seconds)
    overhead = {
        "runtime_us_per_inference": round(float(np.median(overheads)) * 1e6, 2),
        "runtime_share": round(float(np.median(overheads) / np.median(totals)), 4),
    }
    if reference:
        ref = percentiles_ms(ref_s)
        result["reference"] = {"model": str(reference.path), "threads": 1, **ref}
        overhead["vs_reference_p50_us"] = round((single["p50_ms"] - ref["p50_ms"]) * 1e3, 2)
        if plan.backend_name == "onnxruntime":  # a device plan against a CPU session is no overhead figure
            overhead["p95_ratio"] = round(single["p95_ms"] / ref["p95_ms"], 4)
        result["cosine"] = _parity(plan, reference, pool)
    result["overhead"] = overhead

    if concurrency > 1 or workers > 1:
        progress(f"concurrent: {requests} windows from {concurrency} clients on {workers} plan worker(s)")
        plans = [plan] + [load_plan() for _ in range(workers - 1)]
        executor = BoundedExecutor(plans, queue_size=concurrency)
        latencies = []
        try:
            elapsed = run_all(
                executor, lambda i: pool[i % POOL], requests, concurrency, lambda dt, _: latencies.append(dt)
            )
        finally:
            executor.close()  # closes every plan
        result["concurrent"] = {
            **percentiles_ms(latencies),
            "windows_per_s": round(requests / elapsed, 2),
            "clients": concurrency,
            "workers": workers,
        }
    else:
        plan.close()
    result["rss_mb"] = round(peak_rss_mb(), 1)
    return summary(result)


def _parity(plan, reference: Reference, pool) -> dict:
    worst: dict[str, float] = {}
    for feeds in pool[:PARITY_SAMPLES]:
        got = plan.run(feeds)
        want = reference.run(reference.feeds(feeds))
        common = {n: got[n] for n in reference.names if n in got}
        if not common:
            raise OptionError(
                f"--against {reference.path}: outputs {reference.names} are not among the plan's {list(got)}"
            )
        for row in compare(common, want):
            worst[row.output] = min(worst.get(row.output, 1.0), round(row.cosine, 8))
    return worst


def summary(result: dict) -> dict:
    """The contract's headline figures: p50/p95/p99 of a single stream, windows/s sustained."""
    single = result["single_stream"]
    sustained = result.get("concurrent", single)
    return {
        "p50_ms": single["p50_ms"],
        "p95_ms": single["p95_ms"],
        "p99_ms": single["p99_ms"],
        "windows_per_s": sustained["windows_per_s"],
        **result,
    }
