"""Compile every distinct hailo segment of a plan to a HEF with the DFC, on an executor.

For each segment the client prepares a SegmentJob (ONNX bytes, calibration arrays, model script),
computes its compile key, and skips it when the plan already holds that HEF ("done": resuming a
killed run) or the HEF cache has it ("cached"); otherwise the executor compiles it (a process per
segment here, or a Dask cluster) and the client writes the HEF, updates plan.json and fills the
cache. compile_summary.json and plan.json are rewritten after every segment, so a killed run leaves
a consistent record. Everything that touches the plan runs in the calling thread: no locks.
A failure is caught per segment (log file, error class, stage reached): one bad segment does not stop
the others. --retry-shrink re-tiles a segment that failed in the allocator and compiles the pieces.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, wait
from pathlib import Path

from .compile_worker import WorkerResult
from .executors import InlineExecutor, LocalExecutor
from .hef_cache import compile_key, key_inputs
from .plan_io import Segment, hailo_segments, is_hailo_step, load_plan, update_model_steps
from .progress import make_progress
from .sdk import sdk_module_name
from .segment_job import prepare_job
from .summary import OK_STATUSES, CompileSummary, SegmentResult

NO_TILER = "retry-shrink unavailable: no tiler"


def default_retile():
    """The tiling module's re-tiler if it exists yet, else None."""
    try:
        tiling = importlib.import_module("rewriter.tiling")
    except ImportError:
        return None
    return getattr(tiling, "retile_segment", None)


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _file_sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        return None
    return digest.hexdigest()


class _Track:
    """One scheduled segment: its summary row plus what the run needs to finish it."""

    def __init__(self, seg: Segment, label: str, depth: int, parent):
        self.seg, self.label, self.depth, self.parent = seg, label, depth, parent
        self.res = SegmentResult(
            segment=seg.name, model=seg.model, steps=list(seg.steps), parent=parent.seg.name if parent else None
        )
        self.children: list = []
        self.log: list = []
        self.stage = "pending"
        self.started = self.ended = None
        self.inputs = None  # cache key inputs

    def flatten(self) -> list:
        return [self] + [t for c in self.children for t in c.flatten()]


class _Run:
    def __init__(
        self,
        out_dir: Path,
        executor,
        dfc_version: str,
        hw_arch: str,
        settings: dict,
        user_script,
        use_random_calib: bool,
        retry_shrink: bool,
        max_shrink: int,
        retile,
        cache,
        display,
    ):
        self.out_dir, self.executor, self.dfc_version = out_dir, executor, dfc_version
        self.hw_arch, self.settings, self.user_script = hw_arch, settings, user_script
        self.use_random_calib, self.retry_shrink, self.max_shrink = use_random_calib, retry_shrink, max_shrink
        self.retile, self.cache, self.display = retile, cache, display
        self.summary = CompileSummary(out_dir=str(out_dir), hw_arch=hw_arch)
        self.roots: list = []
        self.waiting: deque = deque()  # tracks not prepared yet
        self.pending: dict = {}  # executor future -> track
        self.capacity = max(1, getattr(executor, "capacity", 1))
        self.plan = load_plan(out_dir)
        (out_dir / "logs").mkdir(exist_ok=True)

    # -- reporting -----------------------------------------------------------------------------------
    def say(self, track: _Track, stage, message: str) -> None:
        track.log.append(message)
        if stage is not None:
            track.stage = stage
            if stage in ("parse", "optimize", "compile") and track.started is None:
                track.started = time.monotonic()
                track.res.status = "running"
        self.display.event(track, stage, message)

    def write_summary(self) -> None:
        self.summary.results = [t.res for r in self.roots for t in r.flatten()]
        self.summary.write()

    def _log_path(self, track: _Track) -> Path:
        return self.out_dir / "logs" / f"{track.seg.name}.compile.log"

    def _write_log(self, track: _Track, extra: str = "") -> None:
        path = self._log_path(track)
        track.res.log = str(path.relative_to(self.out_dir))
        if track.res.status == "done" and path.is_file():
            return  # keep the log of the run that compiled it
        path.write_text("\n".join(track.log) + "\n" + extra)

    # -- scheduling ----------------------------------------------------------------------------------
    def add(self, seg: Segment, label: str, parent: _Track | None = None) -> None:
        """A row now; the work when a slot is free (a prepared job holds its calibration in memory)."""
        track = _Track(seg, label, parent.depth + 1 if parent else 0, parent)
        (parent.children if parent else self.roots).append(track)
        self.display.add(track)
        self.waiting.append(track)

    def fill(self) -> None:
        while self.waiting and len(self.pending) < self.capacity:
            self.schedule(self.waiting.popleft())

    def schedule(self, track: _Track) -> None:
        seg, res = track.seg, track.res
        self.say(track, "prepare", f"prepare ({seg.model}, steps {', '.join(seg.steps)})")
        try:
            job = prepare_job(self.out_dir, seg, self.hw_arch, self.settings, self.user_script, self.use_random_calib)
        except Exception as exc:  # noqa: BLE001 -- calibration / segment / settings problems
            res.failed_at, res.error_type, res.error = "prepare", type(exc).__name__, str(exc)
            self._finish(track, "failed", f"FAILED at prepare: {res.error_type}: {exc}")
            return
        res.calib_windows = job.calib_windows
        res.warnings.extend(job.warnings)
        for w in job.warnings:
            self.say(track, None, f"WARNING {w}")
        (self.out_dir / "logs" / f"{seg.name}.alls").write_text(job.script)
        track.log.append("model script:\n" + job.script)
        track.inputs = key_inputs(job, self.dfc_version)
        res.compile_key = compile_key(track.inputs)
        hef_rel = str(Path(seg.model).with_suffix(".hef"))
        if self._already_in_plan(seg, res.compile_key, hef_rel):
            res.hef, res.hef_sha256 = hef_rel, _file_sha256(self.out_dir / hef_rel)
            self._finish(track, "done", f"done: {hef_rel} already compiled from the same inputs")
            return
        cached = self.cache.get(res.compile_key) if self.cache else None
        if cached is not None:
            self._store_hef(track, hef_rel, cached)
            self._finish(track, "cached", f"cached -> {hef_rel} (key {res.compile_key[:12]})")
            return
        self.say(track, "queued", f"queued on the {self.executor.name} executor")
        har = self.out_dir / Path(seg.model).with_suffix(".har")

        def emit(stage, message):
            self.say(track, stage, message)

        res.status = "queued"
        self.pending[self.executor.submit(job, emit, har)] = track

    def _already_in_plan(self, seg: Segment, key: str, hef_rel: str) -> bool:
        """Every step of the model records this key and a HEF whose bytes still match."""
        steps = [s for s in self.plan.get("steps", []) if s.get("model") == seg.model and is_hailo_step(s)]
        if not steps or any(
            s.get("compile_key") != key or s.get("compile_status") != "compiled" or s.get("hef") != hef_rel
            for s in steps
        ):
            return False
        shas = {s.get("hef_sha256") for s in steps}
        return len(shas) == 1 and _file_sha256(self.out_dir / hef_rel) == shas.pop()

    def _store_hef(self, track: _Track, hef_rel: str, data: bytes) -> None:
        _write_bytes_atomic(self.out_dir / hef_rel, data)
        track.res.hef, track.res.hef_sha256 = hef_rel, hashlib.sha256(data).hexdigest()

    def _finish(self, track: _Track, status: str, message: str, extra_log: str = "") -> None:
        res = track.res
        res.status = status
        track.ended = time.monotonic()
        self.say(track, status, message)
        self._write_log(track, extra_log)
        if status in ("compiled", "cached"):  # "done": plan.json already says so
            update_model_steps(
                self.out_dir,
                res.model,
                {
                    "hef": res.hef,
                    "hef_sha256": res.hef_sha256,
                    "compile_key": res.compile_key,
                    "compile_status": "compiled",
                },
                drop=("compile_error",),
            )
        elif status == "failed":
            # Drop the hash so a stale HEF from an earlier run is never taken as this model's.
            update_model_steps(
                self.out_dir,
                res.model,
                {
                    "compile_status": "failed",
                    "compile_error": f"{res.error_type} at {res.failed_at}: {res.error}"[:500],
                },
                drop=("hef_sha256", "compile_key"),
            )
        self.write_summary()

    # -- results -------------------------------------------------------------------------------------
    def run(self) -> None:
        self.fill()
        while self.pending:
            done, _ = wait(list(self.pending), return_when=FIRST_COMPLETED)
            for fut in done:
                self._collect(self.pending.pop(fut), fut)
            self.fill()

    def _collect(self, track: _Track, fut) -> None:
        try:
            wr = fut.result()
        except Exception as exc:  # noqa: BLE001 -- the executor lost the job (e.g. Dask KilledWorker)
            wr = WorkerResult.failure(track.stage if track.stage != "queued" else "prepare", exc)
        res = track.res
        res.parsed, res.optimized, res.compiled = wr.parsed, wr.optimized, wr.compiled
        res.seconds = wr.seconds
        track.log.extend(line for line in wr.log if line not in track.log)
        extra = ""
        if wr.output:
            extra += "---- DFC output ----\n" + wr.output + "\n"
        if wr.traceback:
            extra += wr.traceback
        if wr.hef is None:
            res.failed_at, res.error_type, res.error = wr.failed_at, wr.error_type, wr.error
            self._finish(track, "failed", f"FAILED at {wr.failed_at}: {wr.error_type}: {wr.error}", extra)
            if self.retry_shrink and wr.allocator_failure:
                self._shrink(track)
            return
        hef_rel = str(Path(track.seg.model).with_suffix(".hef"))
        try:
            self._store_hef(track, hef_rel, wr.hef)
        except OSError as exc:
            res.failed_at, res.error_type, res.error = "write", type(exc).__name__, str(exc)
            self._finish(track, "failed", f"FAILED at write: {exc}", extra)
            return
        if wr.har:
            res.har = str(Path(wr.har).relative_to(self.out_dir))
        for line in wr.log:
            if line.startswith("WARNING "):
                res.warnings.append(line[len("WARNING ") :])
        self._fill_cache(track, wr)
        self._finish(track, "compiled", f"compiled -> {hef_rel}", extra)

    def _fill_cache(self, track: _Track, wr) -> None:
        if self.cache is None:
            return
        if wr.dfc_version != self.dfc_version:
            self.say(track, None, f"WARNING compiled with DFC {wr.dfc_version!r}, not {self.dfc_version!r}: not cached")
            return
        meta = {
            "segment": track.seg.name,
            "model": track.seg.model,
            "hw_arch": self.hw_arch,
            "dfc_version": self.dfc_version,
            "key_inputs": track.inputs,
            "seconds": wr.seconds,
        }
        try:
            self.cache.put(track.res.compile_key, wr.hef, meta)
        except OSError as exc:  # a full or read-only shared cache must not fail the compile
            self.say(track, None, f"WARNING HEF cache not written: {exc}")

    # -- --retry-shrink ------------------------------------------------------------------------------
    def _note(self, track: _Track, line: str) -> None:
        self.say(track, None, line)
        with open(self._log_path(track), "a") as fh:
            fh.write(line + "\n")

    def _shrink(self, track: _Track) -> None:
        seg, res = track.seg, track.res
        attempt = {"attempt": track.depth + 1, "step": seg.steps[0], "factor": 0.5, "new_steps": []}
        res.shrink.append(attempt)
        if track.depth >= self.max_shrink:
            attempt["error"] = f"max_shrink={self.max_shrink} reached"
            self._note(track, f"allocator failure, {attempt['error']}")
            return
        if self.retile is None:
            attempt["error"] = NO_TILER
            self._note(track, NO_TILER)
            return
        self._note(
            track,
            f"allocator failure, re-tiling {seg.steps[0]} at factor 0.5 (attempt {track.depth + 1}/{self.max_shrink})",
        )
        try:
            new_steps = list(self.retile(self.out_dir, seg.steps[0], factor=0.5))
            self.plan = load_plan(self.out_dir)  # the re-tiler rewrote plan.json
            pieces = hailo_segments(self.plan, only_steps=set(new_steps))
        except Exception as e:  # noqa: BLE001
            attempt["error"] = f"retile failed: {type(e).__name__}: {e}"
            self._note(track, attempt["error"])
            return
        attempt["new_steps"] = new_steps
        for k, piece in enumerate(pieces, 1):
            self.add(piece, f"{track.label[:-1]} > {k}/{len(pieces)}]", parent=track)
        self.write_summary()

    def finalize(self) -> CompileSummary:
        """A segment whose pieces all made it counts as re-tiled (decided bottom-up)."""

        def settle(track):
            for child in track.children:
                settle(child)
            if track.children and all(c.res.status in OK_STATUSES for c in track.children):
                track.res.status = "retiled"

        for root in self.roots:
            settle(root)
        self.write_summary()
        return self.summary


def compile_plan(
    out_dir,
    hw_arch="hailo8",
    jobs=1,
    model_script_extra=None,
    retry_shrink=None,
    progress=print,
    sdk=None,
    *,
    compile_settings=None,
    use_random_calib=False,
    max_shrink=2,
    retile=None,
    executor=None,
    sdk_module=None,
    timeout=None,
    cache=None,
) -> CompileSummary:
    """Compile each distinct hailo segment of OUT/plan.json; returns the summary (also written to
    OUT/compile_summary.json).

    executor: None -> LocalExecutor (a process per segment, `jobs` at a time, `timeout` seconds each,
    SDK module `sdk_module` or $HAILO_REWRITER_SDK_MODULE or hailo_sdk_client); or an executor object
    (e.g. DaskExecutor; the caller closes it). `sdk`: an SDK object -> InlineExecutor (in-process,
    tests). `cache`: a HefCache or None. `model_script_extra`: model-script text appended to every
    segment's script. `retry_shrink`: re-tile on allocator failures with `retile` (default: the
    tiling module's `retile_segment`). `progress`: None, a callable taking lines, or a
    PlainProgress/LiveProgress. Raises ToolchainMissing when the DFC cannot be imported."""
    out_dir = Path(out_dir)
    if isinstance(model_script_extra, Path):
        model_script_extra = model_script_extra.read_text()
    if retry_shrink and retile is None:
        retile = default_retile()
    own = executor is None
    if own:
        executor = (
            InlineExecutor(sdk, jobs) if sdk is not None else LocalExecutor(sdk_module_name(sdk_module), jobs, timeout)
        )
    display = make_progress(progress)
    run = None
    try:
        version = executor.dfc_version()  # ToolchainMissing before anything is touched
        run = _Run(
            out_dir,
            executor,
            version,
            hw_arch,
            compile_settings or {},
            model_script_extra,
            use_random_calib,
            bool(retry_shrink),
            max_shrink,
            retile,
            cache,
            display,
        )
        segments = hailo_segments(run.plan)
        if not segments:
            display.note("no hailo segments in plan.json: nothing to compile")
        for i, seg in enumerate(segments, 1):
            run.add(seg, f"[{i}/{len(segments)}]")
        run.run()
        summary = run.finalize()
    except BaseException:  # Ctrl-C: kill the compiles, keep the record (a rerun resumes)
        if own:
            executor.close(cancel=True)
            own = False
        if run is not None:
            run.write_summary()
        raise
    finally:
        if own:
            executor.close()
        display.close()
    display.note(summary.table())
    return summary
