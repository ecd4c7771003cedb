"""onnxruntime backend: one InferenceSession per distinct model file, shared by the steps using it."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..errors import PlanError
from ..schema import StepSpec
from .base import Backend, Segment

# The p95 tail (benchmarks/bench_tail.py, docs/runtime.md "Threads"): onnxruntime's default is a
# pool of one thread per core whose workers spin after every run. A plan runs several sessions in
# turn, each with its own pool, and the idle sessions' spinning workers take the cores the running
# one needs: on the TCN plan (2 cores) p95 went to ~15x p50. Default: 1 thread, no pool (host
# segments are small, the heavy part runs on the Hailo, services scale with workers, not threads).
DEFAULT_INTRA_OP_THREADS = 1


def session_options(intra_op_num_threads: int | None = None) -> ort.SessionOptions:
    """intra_op_num_threads: None -> DEFAULT_INTRA_OP_THREADS; 0 -> onnxruntime's pool size (one
    per core); n. Any pool (not 1) is made non-spinning, for the reason above."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    threads = DEFAULT_INTRA_OP_THREADS if intra_op_num_threads is None else int(intra_op_num_threads)
    if threads > 0:
        opts.intra_op_num_threads = threads
    if threads != 1:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3  # warnings about unused initializers etc. are noise on the Pi
    return opts


def read_signature(model_path: Path, reader=None) -> tuple[list[tuple[str, list]], list[tuple[str, list]]]:
    """(name, shape) of a model's graph inputs and outputs, without keeping a session around."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    sess = _session(model_path, opts, reader)
    return ([(i.name, list(i.shape)) for i in sess.get_inputs()], [(o.name, list(o.shape)) for o in sess.get_outputs()])


def _session(model_path: Path, opts, reader=None) -> ort.InferenceSession:
    """`reader(path) -> bytes` verifies the file (PlanSpec.read_file); the session is built from
    those very bytes, so nothing can swap the file between the check and the load."""
    source = reader(model_path) if reader is not None else str(model_path)
    try:
        return ort.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # ORT raises its own Fail/InvalidGraph types
        raise PlanError(f"onnxruntime cannot load {model_path}: {e}") from e


class OrtSegment(Segment):
    def __init__(self, session: ort.InferenceSession, step: StepSpec):
        self.session = session
        self.step = step
        self.input_names = [i.name for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]
        self.input_shapes = [list(i.shape) for i in session.get_inputs()]
        self.output_shapes = [list(o.shape) for o in session.get_outputs()]

    def run(self, inputs):
        feed = dict(zip(self.input_names, inputs))
        t0 = time.perf_counter()
        try:
            out = self.session.run(self.output_names, feed)
        except Exception as e:
            shapes = [f"{n}:{list(np.shape(x))}/{getattr(x, 'dtype', '?')}" for n, x in zip(self.input_names, inputs)]
            raise PlanError(f"step '{self.step.name}': onnxruntime failed on inputs {shapes}: {e}") from e
        self.last_backend_seconds = time.perf_counter() - t0
        return out


class OrtBackend(Backend):
    name = "onnxruntime"

    def __init__(self, intra_op_num_threads: int | None = None, reader=None):
        self.options = session_options(intra_op_num_threads)
        self.reader = reader  # verified file reads (PlanSpec.read_file), or None for plain files
        self.sessions: dict[Path, ort.InferenceSession] = {}

    def session(self, model_path: Path, plan_file: bool = True) -> ort.InferenceSession:
        """plan_file=False for models that are not the plan's (the int8 emulation's quantized copies)."""
        key = Path(model_path).resolve()
        if key not in self.sessions:
            self.sessions[key] = _session(key, self.options, self.reader if plan_file else None)
        return self.sessions[key]

    def open(self, model_path, step):
        return OrtSegment(self.session(model_path), step)

    def close(self):
        self.sessions.clear()
