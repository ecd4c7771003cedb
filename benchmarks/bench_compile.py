"""`rewrite compile` at scale with the SDK stand-in (each compile sleeps --sleep seconds): a plan of
--segments distinct segments on a Dask cluster started with the documented commands (`dask
scheduler`, `dask worker`), first with 1 worker, then 2; then the HEF cache: a rerun with nothing
changed, a fresh copy of the plan, one segment's weights changed. Whole-process wall times of
`rewrite compile`; compile counts from the stand-in's call log.

    python benchmarks/bench_compile.py [--segments 20] [--sleep 1.0] [--json]

Not the real DFC: the figures measure the orchestration (processes, Dask, cache), not compile time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
sys.path.insert(0, str(TESTS))

from toolchain import hailo_sdk_standin as standin  # noqa: E402
from toolchain.plans import conv_segment, many_segments_plan  # noqa: E402

MODULE = standin.__name__
DASK = shutil.which("dask") or str(Path(sys.executable).parent / "dask")  # the CLI of dask[distributed]


class Env:
    def __init__(self, work: Path, sleep: float):
        self.log = work / "calls.jsonl"
        config = work / "standin.json"
        standin.configure(config, log=str(self.log), sleep=sleep)
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
        self.env[standin.CONFIG_ENV] = str(config)
        self.procs: list = []

    def compiles(self) -> int:
        return standin.read_log(self.log).count("compile")

    def start(self, *cmd) -> subprocess.Popen:
        proc = subprocess.Popen(
            cmd,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)

    def compile(self, out: Path, *args) -> tuple[float, int, str]:
        """Seconds of wall time, compiles done, last output line."""
        before = self.compiles()
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "rewriter.cli", "compile", str(out), "--sdk-module", MODULE, *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"rewrite compile failed ({proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
        return seconds, self.compiles() - before, proc.stdout.strip().splitlines()[-2]


def wait_for_workers(address: str, n: int) -> None:
    from distributed import Client

    with Client(address, timeout="30s") as client:
        client.wait_for_workers(n, timeout=120)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--segments", type=int, default=20)
    p.add_argument("--sleep", type=float, default=1.0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-compile-"))
    env = Env(work, args.sleep)
    plan = many_segments_plan(work / "plan", args.segments)
    results = {}
    try:
        sched_file = work / "scheduler.json"
        env.start(
            DASK,
            "scheduler",
            "--scheduler-file",
            str(sched_file),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
        )
        deadline = time.monotonic() + 60
        while not sched_file.exists():
            if time.monotonic() > deadline:
                raise SystemExit("dask scheduler did not start")
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        worker = (DASK, "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--no-dashboard")
        dask = ("--executor", "dask", "--scheduler", address, "--no-cache")

        env.start(*worker)
        wait_for_workers(address, 1)
        for name, workers in (("dask, 1 worker", 1), ("dask, 2 workers", 2)):
            if workers == 2:
                env.start(*worker)
                wait_for_workers(address, 2)
            out = work / f"w{workers}"
            shutil.copytree(plan, out)
            results[name] = env.compile(out, *dask)

        cache = ("--cache", str(work / "cache"))
        out = work / "cached"
        shutil.copytree(plan, out)
        results["fill the cache (dask, 2 workers)"] = env.compile(
            out, "--executor", "dask", "--scheduler", address, *cache
        )
        results["rerun, nothing changed (local)"] = env.compile(out, *cache)
        results["rerun, nothing changed (dask)"] = env.compile(
            out, "--executor", "dask", "--scheduler", address, *cache
        )
        fresh = work / "fresh"
        shutil.copytree(plan, fresh)
        results["fresh plan copy, all in cache (local)"] = env.compile(fresh, *cache)
        conv_segment(out / "segments/hailo_7.onnx", width=8, prefix="h7_", weight=-7.0)
        results["one segment's weights changed (dask)"] = env.compile(
            out, "--executor", "dask", "--scheduler", address, *cache
        )
    finally:
        env.stop()
    one, two = results["dask, 1 worker"][0], results["dask, 2 workers"][0]
    if args.json:
        print(
            json.dumps(
                {
                    "segments": args.segments,
                    "sleep_s": args.sleep,
                    "two_over_one": two / one,
                    "runs": {k: {"seconds": s, "compiles": c} for k, (s, c, _) in results.items()},
                },
                indent=2,
            )
        )
    else:
        print(f"{args.segments} distinct segments, stand-in compile() sleeps {args.sleep} s\n")
        for name, (seconds, compiles, summary) in results.items():
            print(f"{name:<42} {seconds:7.2f} s  {compiles:3d} compiles   ({summary})")
        print(f"\n2 workers / 1 worker wall time: {two / one:.2f}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
