"""The third-party corpus (examples/third_party.py) through `rewrite` and `rewrite check`: the
README's table (model, Hailo segments, Hailo share of MACs, parity, rewrite time).

    python benchmarks/bench_corpus.py [NAME ...] [--tier test|full|all] [--json OUT.json]

Rewrite time is the wall time of `rewrite MODEL -o PLAN` run in this process (loading, passes,
partition, extraction, tiling, writing; not the interpreter's start-up), measured once; parity is
`rewrite check` on one random input set (the worst output's cosine and max abs error, and the
criterion that decided).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

import third_party  # noqa: E402

from rewriter.cli import main as rewrite_main  # noqa: E402


def _quiet(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        rc = rewrite_main(argv)
    return rc, out.getvalue()


def measure(entry, folder: Path) -> dict:
    row = {"model": entry.name, "exporter": entry.exporter}
    missing = entry.missing()
    if missing:
        return {**row, "error": f"not installed: {', '.join(missing)}"}
    start = time.perf_counter()
    model = entry.build(folder)
    row["export_s"] = round(time.perf_counter() - start, 2)
    plan = folder / f"{model.stem}.plan"
    start = time.perf_counter()
    rc, _ = _quiet([str(model), "-o", str(plan), "-q", *entry.cli_args()])
    row["rewrite_s"] = round(time.perf_counter() - start, 2)
    if rc != 0:
        return {**row, "error": f"rewrite exited {rc}"}
    doc = json.loads((plan / "plan.json").read_text())
    segments = doc["segments"]
    hailo = [s for s in segments if s["device"] == "hailo"]
    total = sum(s["macs"] for s in segments) or 1
    row.update(
        hailo_segments=len(hailo),
        segments=len(segments),
        plan_steps=len(doc["steps"]),
        hailo_macs=round(sum(s["macs"] for s in hailo) / total, 4),
        round_trip_causes=[(c["cause"], c["round_trips"]) for c in doc["causes"] if c["round_trips"] > 0],
    )
    rc, text = _quiet(["check", str(plan), "--against", str(model), "--samples", "1", "--json"])
    report = json.loads(text)
    worst = min(report["outputs"], key=lambda o: o["cosine"])
    row.update(
        parity_passed=report["passed"],
        cosine=worst["cosine"],
        max_abs=worst["max_abs"],
        decided_by=sorted({o["decided_by"] for o in report["outputs"]}),
    )
    return row


def table(rows: list[dict]) -> str:
    lines = [
        "| model | exporter | Hailo segments | Hailo share of MACs | parity (worst output) | rewrite s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['exporter']} | - | - | {r['error']} | - |")
            continue
        parity = (
            f"{'ok' if r['parity_passed'] else 'FAIL'} ({', '.join(r['decided_by'])}): cosine "
            f"{r['cosine']:.7f}, max abs {r['max_abs']:.2g}"
        )
        lines.append(
            f"| {r['model']} | {r['exporter']} | {r['hailo_segments']} | {r['hailo_macs']:.1%} | "
            f"{parity} | {r['rewrite_s']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*")
    p.add_argument("--tier", choices=["test", "full", "all"], default="all")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    entries = (
        [third_party.REGISTRY[n] for n in args.names]
        if args.names
        else [e for e in third_party.REGISTRY.values() if args.tier in ("all", e.tier)]
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for entry in entries:
            rows.append(measure(entry, Path(tmp)))
            print(f"{entry.name}: {rows[-1]}", file=sys.stderr, flush=True)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
