"""Run one SegmentJob through the DFC: translate -> load_model_script -> optimize -> compile.

`run_job` is the one place that calls the DFC; it runs wherever the job is executed (a compile
subprocess on this machine, one on a Dask worker, or in-process for tests with an SDK object).
As a program it is the compile subprocess:

    python -m rewriter.toolchain.compile_worker JOB_DIR --sdk-module hailo_sdk_client [--har]

It reads JOB_DIR (segment_job.write_job_dir), sends one JSON line per stage on stdout, sends the
DFC's own output to JOB_DIR/dfc_output.log, and writes JOB_DIR/result.json (+ result.hef). It exits
when its parent dies so a killed `rewrite compile` or Dask worker leaves no DFC running.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .calib import for_optimize
from .sdk import ToolchainMissing, import_sdk, is_allocator_failure, sdk_version
from .segment_job import SegmentJob, read_job_dir

RESULT_FILE = "result.json"
HEF_FILE = "result.hef"
HAR_FILE = "result.har"
OUTPUT_FILE = "dfc_output.log"


@dataclass
class WorkerResult:
    """What came back from one compile, in any executor. `hef` is None unless compiled."""

    parsed: bool = False
    optimized: bool = False
    compiled: bool = False
    failed_at: str | None = None
    error_type: str | None = None
    error: str | None = None
    traceback: str | None = None
    allocator_failure: bool = False  # decided where the exception object lives (it does not travel)
    dfc_version: str | None = None
    log: list = field(default_factory=list)
    output: str = ""  # the DFC's stdout/stderr (subprocess executors)
    seconds: float = 0.0
    har: str | None = None  # path of a saved HAR next to the job (local executors only)
    hef: bytes | None = None

    @classmethod
    def failure(cls, stage: str, exc: BaseException, **extra) -> WorkerResult:
        return cls(
            failed_at=stage,
            error_type=type(exc).__name__,
            error=str(exc),
            traceback="".join(traceback.format_exception(exc)),
            **extra,
        )

    def meta(self) -> dict:
        """Everything but the HEF bytes, JSON-ready."""
        d = asdict(self)
        d.pop("hef")
        return d


def run_job(
    job: SegmentJob, sdk, workdir: Path, emit=None, save_har: bool = False, dfc_version: str | None = None
) -> WorkerResult:
    """Compile `job` with the SDK module `sdk`; never raises for a DFC failure (it is in the result).
    `emit(stage, message)` reports progress; the ONNX is written to `workdir` for the parser."""
    res = WorkerResult(dfc_version=dfc_version)
    t0 = time.monotonic()

    def say(stage, message):
        res.log.append(message)
        if emit:
            emit(stage, message)

    stage = "parse"
    try:
        model_path = Path(workdir) / job.model_file
        if not model_path.is_file():
            model_path.write_bytes(job.model_bytes)
        say("parse", f"parse (start {job.start_nodes}, end {job.end_nodes})...")
        runner = sdk.ClientRunner(hw_arch=job.hw_arch)
        runner.translate_onnx_model(
            str(model_path),
            job.net,
            start_node_names=list(job.start_nodes),
            end_node_names=list(job.end_nodes),
            net_input_shapes={n: list(s) for n, s in zip(job.input_names, job.input_shapes)},
        )
        res.parsed = True
        runner.load_model_script(job.script)

        stage = "optimize"
        say("optimize", f"optimize ({job.calib_windows} calib windows)...")
        runner.optimize(for_optimize(job.calib, job.net))
        res.optimized = True

        stage = "compile"
        say("compile", f"compile ({job.hw_arch})...")
        hef = runner.compile()
        res.compiled = True

        stage = "write"
        res.hef = bytes(hef)
        if save_har:  # only for debugging: never fail the segment over it
            try:
                runner.save_har(str(Path(workdir) / HAR_FILE))
                res.har = str(Path(workdir) / HAR_FILE)
            except Exception as exc:  # noqa: BLE001
                res.log.append(f"WARNING save_har failed: {type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 -- reported per segment, never fatal for the run
        res.failed_at, res.error_type, res.error = stage, type(exc).__name__, str(exc)
        res.traceback = "".join(traceback.format_exception(exc))
        res.allocator_failure = is_allocator_failure(exc)
        res.hef, res.compiled = None, False
    res.seconds = round(time.monotonic() - t0, 3)
    return res


# -- the subprocess ------------------------------------------------------------------------------


def _exit_with_parent(job_dir: Path, poll_s: float = 0.5) -> None:
    """Kill this process group when the parent goes away (its pid changes to the reaper's); the
    parent cannot clean up the job folder then, so do it here."""
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                shutil.rmtree(job_dir, ignore_errors=True)
                try:
                    os.killpg(0, signal.SIGKILL)  # we lead our own session: DFC helpers go too
                finally:
                    os._exit(3)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m rewriter.toolchain.compile_worker")
    p.add_argument("job_dir")
    p.add_argument("--sdk-module", default="hailo_sdk_client")
    p.add_argument("--har", action="store_true")
    args = p.parse_args(argv)
    folder = Path(args.job_dir)
    _exit_with_parent(folder)
    # JSON events keep the real stdout; fd 1 and 2 (the DFC's own chatter, C code included) go to a file.
    events = os.fdopen(os.dup(1), "w", buffering=1)
    out = os.open(folder / OUTPUT_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(out, 1)
    os.dup2(out, 2)

    def emit(stage, message):
        events.write(json.dumps({"stage": stage, "message": message}) + "\n")

    try:
        sdk = import_sdk(args.sdk_module)
        version = sdk_version(args.sdk_module)
    except ToolchainMissing as exc:
        res = WorkerResult.failure("prepare", exc)
    else:
        res = run_job(read_job_dir(folder), sdk, folder, emit, save_har=args.har, dfc_version=version)
    if res.hef is not None:
        (folder / HEF_FILE).write_bytes(res.hef)
    (folder / RESULT_FILE).write_text(json.dumps(res.meta()))
    emit("done", "done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
