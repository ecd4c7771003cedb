"""`rewrite bench` output: a table for people, or (--json) one JSON document for programs."""

from __future__ import annotations

from .contract import Gate


def with_gates(result: dict, gates: list[Gate]) -> dict:
    """The result document plus `gates` (each with `passed`) and the overall `passed`."""
    return {
        **result,
        "gates": [
            {"name": g.name, "value": g.value, "op": g.op, "limit": g.limit, "unit": g.unit, "passed": g.passed}
            for g in gates
        ],
        "passed": all(g.passed for g in gates),
    }


def _latency_line(label: str, row: dict) -> str:
    return f"{label:<34}p50 {row['p50_ms']:8.3f} ms   p95 {row['p95_ms']:8.3f} ms   p99 {row['p99_ms']:8.3f} ms" + (
        f"   {row['windows_per_s']:8.1f} windows/s" if "windows_per_s" in row else ""
    )


def _fmt(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.3f}x"
    if unit:
        return f"{value:.4g} {unit}"
    return f"{value:.6f}" if isinstance(value, float) and value <= 1 else f"{value:g}"


def format_report(doc: dict, plan: str) -> str:
    where = doc.get("url") or "in process"
    lines = [f"bench {plan} ({where}; backend {doc['backend']}: {doc['backend_reason']})", ""]
    lines.append(_latency_line("single stream", doc["single_stream"]))
    if "concurrent" in doc:
        c = doc["concurrent"]
        label = f"concurrent ({c['clients']} clients" + (f", {c['workers']} plan workers)" if "workers" in c else ")")
        lines.append(_latency_line(label, c))
    if "reference" in doc:
        lines.append(_latency_line("bare onnxruntime, 1 thread", doc["reference"]))
    over = doc.get("overhead")
    if over:
        text = (
            f"runtime overhead: {over['runtime_us_per_inference']:.1f} us per inference "
            f"({100 * over['runtime_share']:.1f}% of Plan.run; profiled: total - engine - stitching)"
        )
        if "vs_reference_p50_us" in over:
            text += f"; plan p50 - bare p50: {over['vs_reference_p50_us']:.1f} us"
        lines.append(text)
    if doc.get("status_counts"):
        lines.append("HTTP status counts: " + ", ".join(f"{k}: {v}" for k, v in doc["status_counts"].items()))
    if doc.get("cosine"):
        lines.append("cosine vs ONNX: " + ", ".join(f"{k} {v:.6f}" for k, v in doc["cosine"].items()))
    if doc.get("rss_mb") is not None:
        lines.append(f"peak RSS: {doc['rss_mb']:.1f} MB")
    lines.append("")
    head = ("gate", "value", "limit", "result")
    rows = [
        (
            g["name"],
            _fmt(g["value"], g["unit"]),
            f"{g['op']} {_fmt(g['limit'], g['unit'])}",
            "pass" if g["passed"] else "FAIL",
        )
        for g in doc["gates"]
    ]
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(4)]
    for r in [head, tuple("-" * w for w in widths)] + rows:
        lines.append("  ".join(f"{c:<{w}}" for c, w in zip(r, widths)).rstrip())
    lines.append("")
    lines.append(
        "PASSED: within the deployment contract"
        if doc["passed"]
        else "FAILED: " + ", ".join(g["name"] for g in doc["gates"] if not g["passed"])
    )
    return "\n".join(lines)
