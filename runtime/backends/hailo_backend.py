"""Hailo-8 backend on HailoRT's Python API (hailo_platform, HailoRT 4.x InferModel API).

One VDevice (ROUND_ROBIN scheduler) for every HEF of the plan; one configured InferModel per
distinct HEF (and batch size), shared by every step using it; one Bindings object per step and
frame, so steps sharing a HEF never overwrite each other's buffers within a run. A tiled step
(`tiles`) sends all its time tiles in ONE `run`: `set_batch_size(count)` before configure(), one
Bindings per tile over the rows of one NHWC batch buffer. Never calls activate(): with the
scheduler on, HailoRT activates network groups itself.

Nothing here has run on hardware yet; it is tested against tests/runtime/hailo_platform_standin.py.
"""

from __future__ import annotations

import contextlib
import importlib
import time
from pathlib import Path

import numpy as np

from ..errors import PlanError
from ..layout import from_host, to_host
from ..schema import StepSpec
from .base import Backend, Segment
from .ort_backend import read_signature

MISSING_MSG = (
    "backend 'hailo' needs hailo_platform (HailoRT's Python wheel from Hailo's developer zone); "
    "install it on the Pi or use backend='onnxruntime'"
)


def import_hailo_platform():
    """Import hailo_platform lazily so `import runtime` works on machines without HailoRT."""
    try:
        return importlib.import_module("hailo_platform")
    except ImportError as e:
        raise PlanError(MISSING_MSG) from e


class _ConfiguredHef:
    """A HEF's InferModel + ConfiguredInferModel, shared by every step that uses this HEF."""

    def __init__(self, hp, vdevice, hef_path: Path, stack: contextlib.ExitStack, batch: int = 1):
        self.path = hef_path
        self.model = vdevice.create_infer_model(str(hef_path))
        if batch > 1:
            self.model.set_batch_size(batch)  # before configure(): frames per run
        self.input_names = list(self.model.input_names)
        self.output_names = list(self.model.output_names)
        # Host buffers are float32; HailoRT (de)quantizes on the way in/out.
        for n in self.input_names:
            self.model.input(n).set_format_type(hp.FormatType.FLOAT32)
        for n in self.output_names:
            self.model.output(n).set_format_type(hp.FormatType.FLOAT32)
        self.input_shapes = [tuple(self.model.input(n).shape) for n in self.input_names]
        self.output_shapes = [tuple(self.model.output(n).shape) for n in self.output_names]
        # configure() is a context manager; keep it entered for the plan's lifetime.
        self.configured = stack.enter_context(self.model.configure())


def _nchw_of(host_shape) -> list:
    """Fallback when the segment's output shape is not static: (H, W, C) -> [1, C, H, W], (C,) -> [1, C]."""
    return [1, host_shape[-1], *host_shape[:-1]]


class HailoSegment(Segment):
    def __init__(self, hef: _ConfiguredHef, step: StepSpec, onnx_inputs, onnx_outputs, timeout_ms: int):
        self.hef, self.step, self.timeout_ms = hef, step, timeout_ms
        # Binding assumption: the i-th ONNX graph input/output is the i-th HEF input/output.
        self.input_names = [n for n, _ in onnx_inputs]
        self.output_names = [n for n, _ in onnx_outputs]
        self.onnx_output_shapes = [
            s if all(isinstance(d, int) and d > 0 for d in s) else _nchw_of(h)
            for (_, s), h in zip(onnx_outputs, hef.output_shapes)
        ]
        self.bindings = hef.configured.create_bindings()
        self._out_bufs = []
        for name, shape in zip(hef.output_names, hef.output_shapes):
            buf = np.empty(shape, np.float32)
            self.bindings.output(name).set_buffer(buf)
            self._out_bufs.append(buf)

    def buffers(self):
        return self._out_bufs

    def run(self, inputs):  # one frame
        hef = self.hef
        host_inputs = []  # keep references alive until run() returns
        for name, shape, x in zip(hef.input_names, hef.input_shapes, inputs):
            buf = to_host(np.asarray(x), shape)
            self.bindings.input(name).set_buffer(buf)
            host_inputs.append(buf)
        t0 = time.perf_counter()
        try:
            hef.configured.run([self.bindings], self.timeout_ms)
        except Exception as e:
            raise PlanError(f"step '{self.step.name}': HailoRT run on {hef.path.name} failed: {e}") from e
        self.last_backend_seconds = time.perf_counter() - t0
        return [
            from_host(self.bindings.output(n).get_buffer(), s)
            for n, s in zip(hef.output_names, self.onnx_output_shapes)
        ]


class BatchedHailoSegment(Segment):
    """A tiled step: `count` frames (time tiles) per run. Inputs are taken as NCHW batches
    [count, C, H, W]; `input_views` are such views of the NHWC batch buffers the bindings read, so
    the runtime gathers the tiles straight into HailoRT's layout (one copy)."""

    def __init__(self, hef: _ConfiguredHef, step: StepSpec, onnx_inputs, onnx_outputs, count: int, timeout_ms: int):
        self.hef, self.step, self.timeout_ms = hef, step, timeout_ms
        self.input_names = [n for n, _ in onnx_inputs]
        self.output_names = [n for n, _ in onnx_outputs]
        self.bindings = [hef.configured.create_bindings() for _ in range(count)]
        self._in = [np.zeros((count, *shape), np.float32) for shape in hef.input_shapes]
        self._out = [np.empty((count, *shape), np.float32) for shape in hef.output_shapes]
        for b, t in zip(self.bindings, range(count)):
            for name, buf in zip(hef.input_names, self._in):
                b.input(name).set_buffer(buf[t])  # frame t: a C-contiguous (H, W, C) row
            for name, buf in zip(hef.output_names, self._out):
                b.output(name).set_buffer(buf[t])
        self.input_views = [_as_nchw(buf) for buf in self._in]
        self._results = [_as_nchw(buf) for buf in self._out]

    def buffers(self):
        return self._out

    def run(self, inputs):
        for view, x in zip(self.input_views, inputs):
            if x is not view:
                np.copyto(view, x)
        t0 = time.perf_counter()
        try:
            self.hef.configured.run(self.bindings, self.timeout_ms)
        except Exception as e:
            raise PlanError(
                f"step '{self.step.name}': HailoRT run on {self.hef.path.name} "
                f"({len(self.bindings)} frames) failed: {e}"
            ) from e
        self.last_backend_seconds = time.perf_counter() - t0
        return self._results


def _as_nchw(batch: np.ndarray) -> np.ndarray:
    """[N, H, W, C] host batch -> the same memory as [N, C, H, W]."""
    return batch.transpose(0, 3, 1, 2) if batch.ndim == 4 else batch


class HailoBackend(Backend):
    name = "hailo"

    def __init__(self, timeout_ms: int = 10000, reader=None):
        self.hp = import_hailo_platform()
        self.reader = reader  # PlanSpec.read_file: HEFs and segments are checked against plan.json
        self.timeout_ms = timeout_ms
        self._stack = contextlib.ExitStack()
        params = self.hp.VDevice.create_params()
        # Python's default is NONE (manual activation); InferModel.run needs the scheduler.
        params.scheduling_algorithm = self.hp.HailoSchedulingAlgorithm.ROUND_ROBIN
        try:
            self.vdevice = self._stack.enter_context(self.hp.VDevice(params))
        except Exception as e:
            raise PlanError(f"backend 'hailo': cannot open the Hailo device: {e}") from e
        self.hefs: dict[Path, _ConfiguredHef] = {}
        self._signatures: dict[Path, tuple] = {}  # ONNX segment -> (inputs, outputs), read once

    def open(self, model_path, step):
        if step.hef_path is None or not step.hef_path.is_file():
            raise PlanError(
                f"step '{step.name}': backend 'hailo' needs its HEF, "
                f"{'no hef in plan.json' if step.hef_path is None else f'{step.hef_path} not found'}"
            )
        count = step.tiles.frames if step.tiles is not None else 1
        path = step.hef_path.resolve()
        key = (path, count)
        if key not in self.hefs:
            if self.reader is not None:
                self.reader(path)  # sha256 against plan.json before HailoRT opens it
            try:
                self.hefs[key] = _ConfiguredHef(self.hp, self.vdevice, path, self._stack, count)
            except PlanError:
                raise
            except Exception as e:
                raise PlanError(f"step '{step.name}': HailoRT cannot configure {path}: {e}") from e
        hef = self.hefs[key]
        mkey = Path(model_path).resolve()
        if mkey not in self._signatures:
            self._signatures[mkey] = read_signature(mkey, self.reader)
        onnx_in, onnx_out = self._signatures[mkey]
        for what, onnx_side, hef_names, hef_shapes in (
            ("inputs", onnx_in, hef.input_names, hef.input_shapes),
            ("outputs", onnx_out, hef.output_names, hef.output_shapes),
        ):
            if len(onnx_side) != len(hef_names):
                raise PlanError(
                    f"step '{step.name}': segment has {len(onnx_side)} {what} but HEF {path.name} has "
                    f"{len(hef_names)} ({hef_names})"
                )
            for (oname, oshape), hname, hshape in zip(onnx_side, hef_names, hef_shapes):
                frame = oshape[1:] if step.tiles is not None else oshape  # tiled: [tiles, C, H, W]
                if all(isinstance(d, int) for d in frame) and np.prod(frame) != np.prod(hshape):
                    raise PlanError(
                        f"step '{step.name}': ONNX {oname} {oshape} and HEF {hname} {list(hshape)} "
                        f"differ in size (binding is by position)"
                    )
        if step.tiles is not None:
            return BatchedHailoSegment(hef, step, onnx_in, onnx_out, count, self.timeout_ms)
        return HailoSegment(hef, step, onnx_in, onnx_out, self.timeout_ms)

    def close(self):
        self.hefs.clear()
        self._stack.close()
