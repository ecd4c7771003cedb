"""The fuzzer, for long runs: random ONNX graphs through `rewrite` + `rewrite check`, random
mutations of plan folders through Plan.load + a run. Prints both figures and, with --json, a
machine-readable summary; failing cases are kept (model / plan folder) under --keep.

    python tests/fuzz/run_fuzz.py --graphs 1000 --mutations 1000 [--seed 0] [--jobs 2] [--keep DIR]

Exit code 0 when there were no crashes, parity failures, outside reads or tracebacks, else 1.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
for folder in (HERE, HERE.parents[1]):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from fuzz_graphs import GraphFuzzer  # noqa: E402
from fuzz_harness import MODES, OpenWatch, check_graph, check_plan  # noqa: E402

BAD_GRAPH = ("crash", "parity")


def _graph_case(task) -> dict:
    seed, index, workdir, keep, modes = task
    gen = GraphFuzzer(seed).generate(index)
    case_dir = Path(workdir) / f"w{os.getpid()}"
    result = check_graph(gen, case_dir, modes) | {
        "index": index,
        "rejected": gen.rejected,
        "mode": modes[index % len(modes)],
    }
    if result["status"] in BAD_GRAPH and keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(case_dir / f"{gen.name}.onnx", Path(keep) / f"{gen.name}.onnx")
    shutil.rmtree(case_dir, ignore_errors=True)
    return result


def fuzz_graphs(
    seed: int, count: int, workdir: Path, jobs: int = 1, keep: Path | None = None, progress=None, modes=MODES
) -> dict:
    tasks = [(seed, i, str(workdir), str(keep) if keep else None, tuple(modes)) for i in range(count)]
    results = []
    if jobs > 1:
        with multiprocessing.get_context("fork").Pool(jobs, maxtasksperchild=50) as pool:
            for r in pool.imap_unordered(_graph_case, tasks):
                results.append(r)
                if progress:
                    progress(len(results), count, r)
    else:
        for task in tasks:
            results.append(_graph_case(task))
            if progress:
                progress(len(results), count, results[-1])
    statuses = collections.Counter(r["status"] for r in results)
    ops = collections.Counter(op for r in results for op in r.get("ops", []))
    by_mode = {m: dict(collections.Counter(r["status"] for r in results if r["mode"] == m)) for m in modes}
    return {
        "graphs": count,
        "seed": seed,
        "statuses": dict(statuses),
        "by_mode": by_mode,
        "crashes": statuses["crash"],
        "parity_failures": statuses["parity"],
        "rejected_by_generator": sum(r["rejected"] for r in results),
        "ops": dict(ops.most_common()),
        "refusals": collections.Counter(r["detail"] for r in results if r["status"] == "refused").most_common(),
        "failures": sorted((r for r in results if r["status"] in BAD_GRAPH), key=lambda r: r["index"]),
    }


def fuzz_plans(seed: int, count: int, workdir: Path, keep: Path | None = None, progress=None) -> dict:
    from fuzz_plans import PlanMutator

    mutator = PlanMutator(seed, workdir)
    watch = OpenWatch(mutator.canary, allowed=[workdir / "int8"])
    results = []
    for index in range(count):
        folder, done = mutator.mutate(index)
        backend = "emulate-int8" if index % 7 == 3 else "onnxruntime"
        result = check_plan(folder, watch, backend=backend, int8_cache=workdir / "int8") | {
            "index": index,
            "mutations": done,
            "backend": backend,
        }
        results.append(result)
        bad = result["status"] == "traceback" or result.get("outside")
        if bad and keep:
            shutil.copytree(folder, Path(keep) / folder.name, symlinks=True, dirs_exist_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
        if progress:
            progress(index + 1, count, result)
    statuses = collections.Counter(r["status"] for r in results)
    outside = [r for r in results if r.get("outside")]
    return {
        "mutations": count,
        "seed": seed,
        "bases": len(mutator.bases),
        "statuses": dict(statuses),
        "tracebacks": statuses["traceback"],
        "outside_reads": len(outside),
        "inotify": watch.inotify.available,
        "failures": [r for r in results if r["status"] == "traceback" or r.get("outside")],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graphs", type=int, default=100)
    ap.add_argument("--mutations", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1, help="graph cases in N processes")
    ap.add_argument(
        "--modes", default=",".join(MODES), help=f"rewrite modes, taken in turn (default all: {','.join(MODES)})"
    )
    ap.add_argument("--keep", type=Path, help="copy failing models / plan folders here")
    ap.add_argument("--json", type=Path, help="write the summary as JSON here")
    args = ap.parse_args(argv)
    os.environ.setdefault("XDG_CACHE_HOME", tempfile.mkdtemp(prefix="fuzz-cache-"))
    started = time.monotonic()

    def progress(kind):
        def show(done, total, result):
            if (
                result["status"] not in ("ok", "accepted", "refused", "rounding")
                or result.get("outside")
                or done % 50 == 0
                or done == total
            ):
                print(
                    f"[{kind} {done}/{total} {time.monotonic() - started:.0f}s] {result['status']}"
                    + (f": {result.get('detail')}" if result["status"] not in ("ok", "accepted") else ""),
                    flush=True,
                )

        return show

    summary = {}
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        if args.graphs:
            modes = tuple(m for m in args.modes.split(",") if m)
            unknown = set(modes) - set(MODES)
            if unknown:
                ap.error(f"unknown mode(s) {sorted(unknown)}; known: {', '.join(MODES)}")
            summary["graphs"] = fuzz_graphs(
                args.seed, args.graphs, Path(tmp) / "graphs", args.jobs, args.keep, progress("graph"), modes
            )
        if args.mutations:
            summary["plans"] = fuzz_plans(args.seed, args.mutations, Path(tmp) / "plans", args.keep, progress("plan"))
    summary["seconds"] = round(time.monotonic() - started, 1)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str))
    g, p = summary.get("graphs"), summary.get("plans")
    if g:
        print(
            f"graphs: {g['graphs']} (seed {g['seed']}): {g['crashes']} crashes, {g['parity_failures']} parity "
            f"failures; outcomes {g['statuses']}; by mode {g['by_mode']}"
        )
        for detail, n in g["refusals"]:
            print(f"  refused x{n}: {detail}")
    if p:
        print(
            f"plan mutations: {p['mutations']} (seed {p['seed']}, {p['bases']} base plans): {p['outside_reads']} "
            f"reads outside the plan folder, {p['tracebacks']} tracebacks; outcomes {p['statuses']}"
            + ("" if p["inotify"] else " (inotify unavailable: Python-level opens only)")
        )
    bad = (g and (g["crashes"] or g["parity_failures"])) or (p and (p["outside_reads"] or p["tracebacks"]))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
