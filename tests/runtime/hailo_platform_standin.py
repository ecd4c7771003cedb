"""RECORDING STAND-IN for `hailo_platform` (HailoRT's Python API) -- test code, NOT Hailo's.

Implements only the surface runtime/backends/hailo_backend.py uses, as documented for HailoRT 4.x
(branch hailo8): VDevice / create_params / HailoSchedulingAlgorithm / FormatType /
InferModel (incl. set_batch_size) / ConfiguredInferModel / Bindings. Every call is appended to
`CALLS` with its arguments (buffer shapes, dtypes, contiguity; per run the batch size set and the
bindings passed) so tests can assert how the backend drives the API.

A "HEF" here is a JSON file written by `write_hef`, naming the ONNX segment it stands for; `run`
converts the bound NHWC buffers back to NCHW itself (independently of runtime.layout), runs the
segment with onnxruntime and writes channels-last results into the bound output buffers, so the
data flow through the backend is real. Like HailoRT it rejects buffers of the wrong shape, dtype
or layout instead of silently converting them.

Inject with: monkeypatch.setitem(sys.modules, "hailo_platform", hailo_platform_standin)
"""

from __future__ import annotations

import enum
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

__version__ = "4.20.0-standin"
CALLS: list[tuple] = []


def reset():
    CALLS.clear()


def calls(name):
    return [c for c in CALLS if c[0] == name]


def _record(*entry):
    CALLS.append(entry)


class HailoSchedulingAlgorithm(enum.Enum):
    NONE = 0
    ROUND_ROBIN = 1


class FormatType(enum.Enum):
    AUTO = 0
    UINT8 = 1
    UINT16 = 2
    FLOAT32 = 3


def _host_shape(nchw):
    """[1,C,*S] -> (*S, C); [1,C] -> (C,): how HailoRT presents NHWC / dense buffers."""
    return tuple(nchw[2:]) + (nchw[1],) if len(nchw) > 2 else (nchw[1],)


def write_hef(hef_path: Path, onnx_path: Path, net: str = "net") -> Path:
    """Write a fake HEF describing `onnx_path` (names like HailoRT's: net/input_layer1)."""
    import onnx

    m = onnx.load(str(onnx_path))
    init = {i.name for i in m.graph.initializer}
    dims = lambda vi: [d.dim_value for d in vi.type.tensor_type.shape.dim]
    ins = [dims(i) for i in m.graph.input if i.name not in init]
    outs = [dims(o) for o in m.graph.output]
    doc = {
        "standin_hef": 1,
        "onnx": str(Path(onnx_path).resolve()),
        "inputs": [
            {"name": f"{net}/input_layer{i + 1}", "shape": list(_host_shape(s)), "nchw": s} for i, s in enumerate(ins)
        ],
        "outputs": [
            {"name": f"{net}/output_layer{i + 1}", "shape": list(_host_shape(s)), "nchw": s} for i, s in enumerate(outs)
        ],
    }
    hef_path.parent.mkdir(parents=True, exist_ok=True)
    hef_path.write_text(json.dumps(doc))
    return hef_path


class VDeviceParams:
    def __init__(self):
        self.scheduling_algorithm = HailoSchedulingAlgorithm.NONE  # HailoRT's Python default
        self.device_count = 1


class VDevice:
    def __init__(self, params: VDeviceParams | None = None):
        params = params or VDeviceParams()
        self.scheduling_algorithm = params.scheduling_algorithm
        self.released = False
        _record("VDevice", self, params.scheduling_algorithm)

    @staticmethod
    def create_params():
        _record("create_params")
        return VDeviceParams()

    def create_infer_model(self, hef_path):
        _record("create_infer_model", self, str(hef_path))
        return InferModel(self, Path(hef_path))

    def activate(self, *a, **k):  # not something the runtime should call with the scheduler on
        _record("activate", self)

    def release(self):
        _record("release", self)
        self.released = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


class InferStream:
    def __init__(self, model, name, shape, nchw):
        self.model, self.name, self.shape, self.nchw = model, name, tuple(shape), tuple(nchw)
        self.format_type = FormatType.AUTO

    def set_format_type(self, t):
        _record("set_format_type", self.model, self.name, t)
        self.format_type = t


class InferModel:
    def __init__(self, vdevice, hef_path: Path):
        self.batch_size = None  # HailoRT's default until set_batch_size
        self.configured = False
        doc = json.loads(hef_path.read_text())
        self.vdevice, self.hef_path, self.onnx_path = vdevice, hef_path, doc["onnx"]
        self._inputs = {d["name"]: InferStream(self, d["name"], d["shape"], d["nchw"]) for d in doc["inputs"]}
        self._outputs = {d["name"]: InferStream(self, d["name"], d["shape"], d["nchw"]) for d in doc["outputs"]}

    @property
    def input_names(self):
        return list(self._inputs)

    @property
    def output_names(self):
        return list(self._outputs)

    def input(self, name=None):
        return self._inputs[name] if name else next(iter(self._inputs.values()))

    def output(self, name=None):
        return self._outputs[name] if name else next(iter(self._outputs.values()))

    def set_batch_size(self, n):
        _record("set_batch_size", self, n)
        if self.configured:
            raise RuntimeError("standin: set_batch_size after configure() has no effect in HailoRT")
        self.batch_size = int(n)

    def configure(self):
        _record("configure", self, str(self.hef_path))
        self.configured = True
        return ConfiguredInferModel(self)


class BindingStream:
    def __init__(self, bindings, name, direction):
        self.bindings, self.name, self.direction = bindings, name, direction
        self.buffer = None

    def set_buffer(self, buf):
        _record(
            "set_buffer",
            self.bindings,
            self.direction,
            self.name,
            buf.shape,
            buf.dtype,
            bool(buf.flags.c_contiguous),
            buf,
        )
        self.buffer = buf

    def get_buffer(self):
        return self.buffer


class Bindings:
    def __init__(self, cim):
        self.cim = cim
        self._in = {n: BindingStream(self, n, "input") for n in cim.model.input_names}
        self._out = {n: BindingStream(self, n, "output") for n in cim.model.output_names}

    def input(self, name=None):
        return self._in[name] if name else next(iter(self._in.values()))

    def output(self, name=None):
        return self._out[name] if name else next(iter(self._out.values()))


class ConfiguredInferModel:
    def __init__(self, model: InferModel):
        self.model = model
        self.session = ort.InferenceSession(model.onnx_path, providers=["CPUExecutionProvider"])
        self.shut_down = False

    def create_bindings(self):
        _record("create_bindings", self)
        return Bindings(self)

    def activate(self, *a, **k):
        _record("activate", self)

    def _check(self, stream: InferStream, buf):
        if buf is None:
            raise RuntimeError(f"standin: no buffer bound for {stream.name}")
        if stream.format_type != FormatType.FLOAT32 or buf.dtype != np.float32:
            raise RuntimeError(f"standin: {stream.name} format {stream.format_type} / buffer {buf.dtype}")
        if tuple(buf.shape) != stream.shape or not buf.flags.c_contiguous:
            raise RuntimeError(f"standin: {stream.name} needs C-contiguous {stream.shape}, got {buf.shape}")

    def run(self, bindings_list, timeout_ms):
        _record("run", self, len(bindings_list), timeout_ms, self.model.batch_size, list(bindings_list))
        if self.model.batch_size is not None and len(bindings_list) != self.model.batch_size:
            raise RuntimeError(f"standin: batch size {self.model.batch_size}, {len(bindings_list)} bindings")
        if self.shut_down:
            raise RuntimeError("standin: run after shutdown")
        if self.model.vdevice.scheduling_algorithm != HailoSchedulingAlgorithm.ROUND_ROBIN:
            raise RuntimeError("standin: InferModel.run needs the scheduler (ROUND_ROBIN)")
        for b in bindings_list:
            feed = {}
            for (name, st), sess_in in zip(self.model._inputs.items(), self.session.get_inputs()):
                buf = b.input(name).get_buffer()
                self._check(st, buf)
                nchw = (
                    buf.reshape(st.nchw)
                    if len(st.nchw) <= 2
                    else np.transpose(buf, (len(st.shape) - 1,) + tuple(range(len(st.shape) - 1)))[None]
                )
                feed[sess_in.name] = np.ascontiguousarray(nchw)
            outs = self.session.run(None, feed)
            for (name, st), y in zip(self.model._outputs.items(), outs):
                buf = b.output(name).get_buffer()
                self._check(st, buf)
                host = y.reshape(st.shape) if y.ndim <= 2 else np.transpose(y[0], tuple(range(1, y.ndim - 1)) + (0,))
                np.copyto(buf, host)

    def shutdown(self):
        _record("shutdown", self)
        self.shut_down = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()
