"""Compile every distinct hailo segment of a plan to a HEF with the DFC Python API.

Per segment: translate_onnx_model -> load_model_script -> optimize(calib) -> compile -> write HEF.
A failure is caught per segment (log file, error class, stage reached) so one bad segment does not
stop the others. --jobs runs segments in threads: the DFC is an in-process library, so threads avoid
pickling the runner; whether the real DFC is thread-safe is NOT known (see docs/compile.md).
"""
from __future__ import annotations

import hashlib
import importlib
import os
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import calib as calib_mod
from .model_script import build_model_script
from .plan_io import Segment, hailo_segments, load_plan, update_model_steps
from .sdk import is_allocator_failure, load_sdk
from .segment_io import inspect_segment, net_name_for
from .summary import CompileSummary, SegmentResult

NO_TILER = "retry-shrink unavailable: no tiler"


def default_retile():
    """The tiling module's re-tiler if it exists yet, else None."""
    try:
        tiling = importlib.import_module("rewriter.tiling")
    except ImportError:
        return None
    return getattr(tiling, "retile_segment", None)


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class _Job:
    """Settings shared by all segments of one compile_plan call."""

    def __init__(self, out_dir, sdk, hw_arch, settings, user_script, use_random_calib,
                 retry_shrink, max_shrink, retile, progress):
        self.out_dir = Path(out_dir)
        self.sdk = sdk
        self.hw_arch = hw_arch
        self.settings = settings
        self.user_script = user_script
        self.use_random_calib = use_random_calib
        self.retry_shrink = retry_shrink
        self.max_shrink = max_shrink
        self.retile = retile
        self._progress = progress
        self._print_lock = threading.Lock()
        # plan.json is read-modify-written by us and by the re-tiling hook: one writer at a time.
        self.plan_lock = threading.Lock()

    def say(self, line: str, log: list) -> None:
        log.append(line)
        if self._progress:
            with self._print_lock:
                self._progress(line)

    # -- one segment -------------------------------------------------------------------------------
    def compile_segment(self, seg: Segment, label: str, parent: str | None = None) -> SegmentResult:
        res = SegmentResult(segment=seg.name, model=seg.model, steps=list(seg.steps), parent=parent)
        log_dir = self.out_dir / "logs"
        log_dir.mkdir(exist_ok=True)
        log_path = log_dir / f"{seg.name}.compile.log"
        res.log = str(log_path.relative_to(self.out_dir))
        log: list = []
        t0 = time.monotonic()
        stage = "prepare"
        try:
            self.say(f"{label} {seg.name}: prepare ({seg.model}, steps {', '.join(seg.steps)})", log)
            io = inspect_segment(self.out_dir / seg.model)
            net = net_name_for(seg.name)
            if seg.calibs:
                arrays = calib_mod.load_calibration(self.out_dir, seg.calibs, io)
            elif self.use_random_calib:
                n = int(self.settings.get("calibset_size") or 1024)
                arrays = calib_mod.random_calibration(io, n)
                res.warnings.append(f"RANDOM calibration data ({n} samples): the HEF will run but its "
                                    "quantization is not representative; do not ship it")
            else:
                raise calib_mod.CalibError(f"steps {seg.steps} have no 'calib' in plan.json: "
                                           + calib_mod.NO_CALIB_HINT)
            res.calib_windows = int(arrays[0].shape[0])
            script, warnings = build_model_script(self.settings, res.calib_windows, self.user_script)
            res.warnings.extend(warnings)
            for w in res.warnings:
                self.say(f"{label} {seg.name}: WARNING {w}", log)
            (log_dir / f"{seg.name}.alls").write_text(script)
            log.append("model script:\n" + script)

            stage = "parse"
            self.say(f"{label} {seg.name}: parse (start {io.start_nodes}, end {io.end_nodes})...", log)
            runner = self.sdk.ClientRunner(hw_arch=self.hw_arch)
            runner.translate_onnx_model(
                str(self.out_dir / seg.model), net,
                start_node_names=list(io.start_nodes), end_node_names=list(io.end_nodes),
                net_input_shapes={n: list(s) for n, s in zip(io.input_names, io.input_shapes)})
            res.parsed = True
            runner.load_model_script(script)

            stage = "optimize"
            self.say(f"{label} {seg.name}: optimize ({res.calib_windows} calib windows)...", log)
            runner.optimize(calib_mod.for_optimize(arrays, net))
            res.optimized = True

            stage = "compile"
            self.say(f"{label} {seg.name}: compile ({self.hw_arch})...", log)
            hef_bytes = runner.compile()
            res.compiled = True

            stage = "write"
            hef_rel = str(Path(seg.model).with_suffix(".hef"))
            _write_bytes_atomic(self.out_dir / hef_rel, bytes(hef_bytes))
            res.hef, res.hef_sha256 = hef_rel, hashlib.sha256(bytes(hef_bytes)).hexdigest()
            try:  # the HAR is only for debugging: never fail the segment over it
                har_rel = str(Path(seg.model).with_suffix(".har"))
                runner.save_har(str(self.out_dir / har_rel))
                res.har = har_rel
            except Exception as exc:  # noqa: BLE001
                res.warnings.append(f"save_har failed: {type(exc).__name__}: {exc}")
            res.status = "compiled"
            self.say(f"{label} {seg.name}: compiled -> {hef_rel}", log)
        except Exception as exc:  # noqa: BLE001 -- one segment's failure must not stop the rest
            res.status, res.failed_at = "failed", stage
            res.error_type, res.error = type(exc).__name__, str(exc)
            self.say(f"{label} {seg.name}: FAILED at {stage}: {res.error_type}: {exc}", log)
            log.append(traceback.format_exc())
            res._exc = exc  # kept for the retry decision, not serialized
        finally:
            res.seconds = round(time.monotonic() - t0, 3)
            log_path.write_text("\n".join(log) + "\n")
        self._record(res)
        return res

    def _note(self, seg: Segment, line: str) -> None:
        """Progress line that also goes to the segment's (already written) log."""
        self.say(line, [])
        with open(self.out_dir / "logs" / f"{seg.name}.compile.log", "a") as fh:
            fh.write(line + "\n")

    def _record(self, res: SegmentResult) -> None:
        with self.plan_lock:
            if res.status == "compiled":
                update_model_steps(self.out_dir, res.model, {
                    "hef": res.hef, "hef_sha256": res.hef_sha256, "compile_status": "compiled"},
                    drop=("compile_error",))
            else:
                # Drop the hash so a stale HEF from an earlier run is never taken as this model's.
                update_model_steps(self.out_dir, res.model, {
                    "compile_status": "failed",
                    "compile_error": f"{res.error_type} at {res.failed_at}: {res.error}"[:500]},
                    drop=("hef_sha256",))

    # -- one segment plus its re-tiled pieces ------------------------------------------------------
    def compile_with_retry(self, seg: Segment, label: str, depth: int = 0, parent=None) -> list:
        res = self.compile_segment(seg, label, parent)
        out = [res]
        exc = getattr(res, "_exc", None)
        if res.status != "failed" or not self.retry_shrink or not is_allocator_failure(exc):
            return out
        attempt = {"attempt": depth + 1, "step": seg.steps[0], "factor": 0.5, "new_steps": []}
        res.shrink.append(attempt)
        if depth >= self.max_shrink:
            attempt["error"] = f"max_shrink={self.max_shrink} reached"
            self._note(seg, f"{label} {seg.name}: allocator failure, {attempt['error']}")
            return out
        if self.retile is None:
            attempt["error"] = NO_TILER
            self._note(seg, f"{label} {seg.name}: {NO_TILER}")
            return out
        self._note(seg, f"{label} {seg.name}: allocator failure, re-tiling {seg.steps[0]} at factor 0.5 "
                        f"(attempt {depth + 1}/{self.max_shrink})")
        try:
            with self.plan_lock:
                new_steps = list(self.retile(self.out_dir, seg.steps[0], factor=0.5))
                pieces = hailo_segments(load_plan(self.out_dir), only_steps=set(new_steps))
        except Exception as e:  # noqa: BLE001
            attempt["error"] = f"retile failed: {type(e).__name__}: {e}"
            self._note(seg, f"{label} {seg.name}: {attempt['error']}")
            return out
        attempt["new_steps"] = new_steps
        children = []
        for k, piece in enumerate(pieces, 1):
            children += self.compile_with_retry(piece, f"{label[:-1]} > {k}/{len(pieces)}]", depth + 1, seg.name)
        out += children
        if pieces and all(c.status in ("compiled", "retiled") for c in children if c.parent == seg.name):
            res.status = "retiled"
        return out


def compile_plan(out_dir, hw_arch="hailo8", jobs=1, model_script_extra=None, retry_shrink=None,
                 progress=print, sdk=None, *, compile_settings=None, use_random_calib=False,
                 max_shrink=2, retile=None) -> CompileSummary:
    """Compile each distinct hailo segment of OUT/plan.json; returns the summary (also written to
    OUT/compile_summary.json). `model_script_extra`: model-script text appended to every segment's
    script. `retry_shrink`: True to re-tile on allocator failures with `retile` (default: the tiling
    module's `retile_segment` if present). `sdk`: the hailo_sdk_client module or a stand-in.
    Raises ToolchainMissing when the DFC cannot be imported."""
    sdk = load_sdk(sdk)
    out_dir = Path(out_dir)
    if isinstance(model_script_extra, Path):
        model_script_extra = model_script_extra.read_text()
    if retry_shrink and retile is None:
        retile = default_retile()
    job = _Job(out_dir, sdk, hw_arch, compile_settings or {}, model_script_extra, use_random_calib,
               bool(retry_shrink), max_shrink, retile, progress)
    segments = hailo_segments(load_plan(out_dir))
    summary = CompileSummary(out_dir=str(out_dir), hw_arch=hw_arch)
    if not segments:
        job.say("no hailo segments in plan.json: nothing to compile", [])
    labels = [f"[{i}/{len(segments)}]" for i in range(1, len(segments) + 1)]
    if jobs and jobs > 1:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            groups = list(pool.map(job.compile_with_retry, segments, labels))  # map keeps plan order
    else:
        groups = [job.compile_with_retry(s, lab) for s, lab in zip(segments, labels)]
    summary.results = [r for group in groups for r in group]
    summary.write()
    if progress:
        progress(summary.table())
    return summary
