"""Run one compile job in its own process, with a time-out that kills it.

The DFC is a large in-process library (TensorFlow, native allocator code); a hang or a crash in one
segment must not take the run down, and nothing is assumed about its thread safety. Each job gets a
fresh `python -m rewriter.toolchain.compile_worker` in its own session (so a time-out kills the DFC's
helper processes too), a private temp folder for the hand-off, and a reader thread for its stage
events. Used by the local executor and, on each machine, by the Dask executor's tasks.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .compile_worker import HAR_FILE, HEF_FILE, OUTPUT_FILE, RESULT_FILE, WorkerResult
from .sdk import ToolchainMissing, distribution_version
from .segment_job import SegmentJob, write_job_dir

WORKER = [sys.executable, "-m", "rewriter.toolchain.compile_worker"]
OUTPUT_LIMIT = 1 << 20  # keep at most the last 1 MiB of the DFC's output per segment

_live: set = set()  # running compile processes, killed on interrupt
_live_lock = threading.Lock()


class CompileTimeout(Exception):
    """A segment's compile process ran past its time-out and was killed."""


def child_env() -> dict:
    """The environment for a compile process: ours, plus our import path (like multiprocessing's
    spawn does), so an --sdk-module that this process can import is importable there too."""
    env = dict(os.environ)
    system = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    extra = [p for p in sys.path if p and not any(os.path.realpath(p).startswith(s) for s in system)]
    if env.get("PYTHONPATH"):
        extra.append(env["PYTHONPATH"])
    if extra:
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(extra))
    return env


def probe_version(sdk_module: str) -> str:
    """The SDK's version string as a compile process sees it; package metadata when available
    (no import), else a probe process (the SDK is never imported into this process)."""
    found = distribution_version(sdk_module)
    if found:
        return found
    proc = subprocess.run(
        [sys.executable, "-m", "rewriter.toolchain.sdk", sdk_module],
        capture_output=True,
        text=True,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        check=False,
    )
    try:
        answer = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        answer = {"error": f"SDK probe failed: {proc.stderr.strip()[-500:] or proc.returncode}"}
    if "error" in answer:
        raise ToolchainMissing(answer["error"])
    return answer["version"]


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_all() -> None:
    """Kill every running compile process of this interpreter (on Ctrl-C / shutdown)."""
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        _kill_group(proc)


def _read_events(stream, state: dict, emit) -> None:
    for line in stream:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        state["stage"] = event.get("stage", state["stage"])
        if emit and event.get("stage") != "done":
            emit(event["stage"], event.get("message", ""))


def _lost(stage: str, exc: Exception, seconds: float, **extra) -> WorkerResult:
    """A result for a process that returned none: the stages it announced were passed."""
    res = WorkerResult.failure(stage, exc, seconds=round(seconds, 3), **extra)
    res.parsed = stage in ("optimize", "compile", "write")
    res.optimized = stage in ("compile", "write")
    return res


def _tail(path: Path) -> str:
    if not path.is_file():
        return ""
    with open(path, "rb") as fh:
        fh.seek(max(0, path.stat().st_size - OUTPUT_LIMIT))
        return fh.read().decode("utf-8", "replace")


def run_isolated(
    job: SegmentJob, sdk_module: str, timeout_s: float | None = None, emit=None, har_dest: Path | None = None
) -> WorkerResult:
    """Compile `job` in a new process; kill it after `timeout_s` seconds (None: no limit)."""
    with tempfile.TemporaryDirectory(prefix="hailo-compile-") as tmp:
        folder = Path(tmp)
        write_job_dir(job, folder)
        cmd = WORKER + [str(folder), "--sdk-module", sdk_module] + (["--har"] if har_dest else [])
        with open(folder / "worker_stderr.log", "wb") as err:
            proc = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=child_env(),
                start_new_session=True,
                text=True,
            )
        with _live_lock:
            _live.add(proc)
        state = {"stage": "parse"}
        reader = threading.Thread(target=_read_events, args=(proc.stdout, state, emit), daemon=True)
        reader.start()
        t0 = time.monotonic()
        try:
            proc.wait(timeout=timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _kill_group(proc)  # also reaps DFC helpers left behind by a finished worker
            proc.wait()
            with _live_lock:
                _live.discard(proc)
        reader.join(timeout=5)
        output = _tail(folder / OUTPUT_FILE)
        if timed_out:
            stage = state["stage"]
            exc = CompileTimeout(f"no result after {timeout_s / 60:.4g} min (at {stage}); process killed")
            # A compile that outlives its time-out is stuck in the allocator: re-tiling narrower can help.
            return _lost(stage, exc, time.monotonic() - t0, allocator_failure=(stage == "compile"), output=output)
        if not (folder / RESULT_FILE).is_file():
            stderr = (folder / "worker_stderr.log").read_text(errors="replace").strip()
            exc = RuntimeError(
                f"compile process exited with code {proc.returncode} and no result"
                + (f": {stderr[-2000:]}" if stderr else "")
            )
            return _lost(state["stage"], exc, time.monotonic() - t0, output=output)
        meta = json.loads((folder / RESULT_FILE).read_text())
        res = WorkerResult(**{**meta, "output": output})
        if (folder / HEF_FILE).is_file():
            res.hef = (folder / HEF_FILE).read_bytes()
        if har_dest and (folder / HAR_FILE).is_file():
            partial = Path(har_dest).with_name(Path(har_dest).name + ".tmp")
            shutil.move(folder / HAR_FILE, partial)  # a copy when /tmp is another file system
            os.replace(partial, har_dest)
            res.har = str(har_dest)
        else:
            res.har = None
        return res
