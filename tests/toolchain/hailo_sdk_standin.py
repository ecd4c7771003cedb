"""STAND-IN for Hailo's `hailo_sdk_client` (Dataflow Compiler) used by the toolchain tests.

It is NOT the DFC: it only mimics the documented surface (ClientRunner.translate_onnx_model /
load_model_script / optimize / compile / save_har and two exception classes), records every call
with its arguments, checks the things the real DFC is documented to reject (unknown node names,
calibration not NHWC float32 of the network input shape, calls out of order), and can be told to
fail: a parse failure for named networks, an allocator failure for inputs wider than a threshold.

Two ways to use it:
- in-process: `StandinSDK(...)` passed as `sdk=` to compile_plan; calls are in `sdk.calls`;
- as the SDK *module* of compile processes and Dask workers (`--sdk-module
  toolchain.hailo_sdk_standin`, the testing hook): module-level `ClientRunner` and `__version__`,
  configured by the JSON file named in $HAILO_STANDIN_CONFIG (see `configure`), re-read for every
  runner; calls are appended to that config's "log" file (JSON lines, with the pid), `read_log` reads
  them back. "sleep" makes every compile() take that many seconds; "hang" and "crash" name networks
  whose compile() never returns or kills its process.
"""

from __future__ import annotations

import json
import os
import threading
import time

CONFIG_ENV = "HAILO_STANDIN_CONFIG"
VERSION = "3.33.0-standin"


class ParsingWithRecommendationException(Exception):
    """Raised by the DFC parser; its message suggests end node names."""


class BackendAllocatorException(Exception):
    """Raised by the DFC allocator when the network does not fit."""


class StandinError(AssertionError):
    """The driver used the API in a way the real DFC would reject."""


class CallQueries:
    """Questions about recorded calls (`self.calls`: dicts with "method" and "net")."""

    calls: list

    def calls_for(self, net: str, method: str | None = None) -> list:
        return [c for c in self.calls if c.get("net") == net and (method is None or c["method"] == method)]

    def methods_for(self, net: str) -> list:
        return [c["method"] for c in self.calls_for(net)]

    def count(self, method: str) -> int:
        return sum(c["method"] == method for c in self.calls)


class StandinSDK(CallQueries):
    """Module-like object: pass it as `sdk=` to compile_plan.

    parse_fail: {net_name: [suggested end node names]} -> translate_onnx_model raises.
    allocator_max_width: compile() raises "Agent infeasible" when an input's W exceeds it.
    """

    ParsingWithRecommendationException = ParsingWithRecommendationException
    BackendAllocatorException = BackendAllocatorException
    __version__ = VERSION

    def __init__(self, parse_fail=None, allocator_max_width=None, sleep=0.0, log=None, hang=(), crash=()):
        self.parse_fail = dict(parse_fail or {})
        self.allocator_max_width = allocator_max_width
        self.sleep = float(sleep)
        self.hang, self.crash = set(hang), set(crash)  # nets whose compile() never returns / kills the process
        self.log = log
        self.calls: list[dict] = []
        self._lock = threading.Lock()
        sdk = self

        class ClientRunner(_Runner):
            def __init__(self, hw_arch="hailo8", har=None):
                super().__init__(sdk, hw_arch, har)

        self.ClientRunner = ClientRunner

    def record(self, **call) -> None:
        with self._lock:
            self.calls.append(call)
            if self.log:
                line = json.dumps({**call, "pid": os.getpid()}, default=list) + "\n"
                with open(self.log, "a") as fh:  # one short O_APPEND write: lines do not interleave
                    fh.write(line)


def _nhwc(shape):
    return tuple(shape[2:]) + (shape[1],) if len(shape) == 4 else tuple(shape[1:])


class _Runner:
    def __init__(self, sdk: StandinSDK, hw_arch: str, har):
        if hw_arch not in ("hailo8", "hailo8l", "hailo8r"):
            raise ValueError(f"stand-in: unknown hw_arch {hw_arch!r}")
        self.sdk, self.hw_arch = sdk, hw_arch
        self.net = None
        self.state = "new"
        self.shapes = {}
        sdk.record(method="ClientRunner", net=None, hw_arch=hw_arch)

    def translate_onnx_model(
        self, model_path, net_name, start_node_names=None, end_node_names=None, net_input_shapes=None
    ):
        self.sdk.record(
            method="translate_onnx_model",
            net=net_name,
            model_path=str(model_path),
            start_node_names=list(start_node_names or []),
            end_node_names=list(end_node_names or []),
            net_input_shapes={k: list(v) for k, v in (net_input_shapes or {}).items()},
            hw_arch=self.hw_arch,
        )
        if self.state != "new":
            raise StandinError("translate_onnx_model called twice")
        # imported here, not at the top: a version probe imports this module and should stay quick
        import onnx

        model = onnx.load(str(model_path))
        names = {n.name for n in model.graph.node}
        for n in list(start_node_names or []) + list(end_node_names or []):
            if n not in names:
                raise StandinError(f"node {n!r} not in {model_path}")
        for name, shape in (net_input_shapes or {}).items():
            vi = next((v for v in model.graph.input if v.name == name), None)
            if vi is None:
                raise StandinError(f"net_input_shapes names unknown input {name!r}")
            # a symbolic dim (the batch of a tiled step's model) takes the value given, as in the DFC
            onnx_shape = [
                d.dim_value if d.HasField("dim_value") else s for d, s in zip(vi.type.tensor_type.shape.dim, shape)
            ]
            if list(shape) != onnx_shape:
                raise StandinError(f"net_input_shapes[{name}]={shape} != ONNX {onnx_shape}")
        if net_name in self.sdk.parse_fail:
            raise ParsingWithRecommendationException(
                "Parsing failed at unsupported node. Please try to parse the model again, using these "
                f"end node names: {', '.join(self.sdk.parse_fail[net_name])}"
            )
        self.net, self.state = net_name, "parsed"
        self.shapes = dict(net_input_shapes or {})
        return {"stand-in": "hn"}, {"stand-in": "npz"}

    def load_model_script(self, script):
        self.sdk.record(method="load_model_script", net=self.net, script=script)
        if self.state != "parsed":
            raise StandinError("load_model_script before translate")
        self.script = script

    def optimize(self, calib):
        arrays = calib if isinstance(calib, dict) else {None: calib}
        self.sdk.record(
            method="optimize",
            net=self.net,
            calib_keys=sorted(k for k in arrays if k is not None),
            calib_shapes={k: tuple(a.shape) for k, a in arrays.items()},
            calib_dtypes={k: str(a.dtype) for k, a in arrays.items()},
        )
        if self.state != "parsed":
            raise StandinError("optimize before translate")
        shapes = list(self.shapes.values())
        if isinstance(calib, dict):
            want_keys = [f"{self.net}/input_layer{i + 1}" for i in range(len(shapes))]
            if sorted(calib) != sorted(want_keys):
                raise StandinError(f"calib keys {sorted(calib)} != {want_keys}")
            pairs = [(calib[k], s) for k, s in zip(want_keys, shapes)]
        else:
            if len(shapes) != 1:
                raise StandinError("several inputs need a dict calibration set")
            pairs = [(calib, shapes[0])]
        for arr, shape in pairs:
            if str(arr.dtype) != "float32" or tuple(arr.shape[1:]) != _nhwc(shape):
                raise StandinError(f"BadInputsShape: calib {arr.shape} {arr.dtype} vs NHWC {_nhwc(shape)}")
        self.state = "optimized"

    def compile(self):
        self.sdk.record(method="compile", net=self.net)
        if self.state != "optimized":
            raise StandinError("compile before optimize")
        width = max(s[-1] for s in self.shapes.values())
        limit = self.sdk.allocator_max_width
        time.sleep(3600 if self.net in self.sdk.hang else self.sdk.sleep)
        if self.net in self.sdk.crash:
            os._exit(9)  # like a native crash inside the DFC
        if limit is not None and width > limit:
            raise BackendAllocatorException(f"Compilation failed: Agent infeasible (input width {width})")
        self.state = "compiled"
        return f"HEF-STANDIN {self.net} {self.hw_arch}".encode()

    def save_har(self, path):
        self.sdk.record(method="save_har", net=self.net, path=str(path))
        with open(path, "wb") as fh:
            fh.write(f"HAR-STANDIN {self.net} {self.state}".encode())


# -- the module-level SDK API (compile processes, Dask workers) ------------------------------------------


def configure(path, **config) -> None:
    """Write the stand-in's config file: parse_fail, allocator_max_width, sleep, hang, crash, log, version."""
    with open(path, "w") as fh:
        json.dump(config, fh)


def _config() -> dict:
    path = os.environ.get(CONFIG_ENV)
    if not path or not os.path.exists(path):
        return {}
    with open(path) as fh:
        return json.load(fh)


def _module_sdk() -> StandinSDK:
    cfg = _config()
    return StandinSDK(
        parse_fail=cfg.get("parse_fail"),
        allocator_max_width=cfg.get("allocator_max_width"),
        sleep=cfg.get("sleep", 0.0),
        log=cfg.get("log"),
        hang=cfg.get("hang", ()),
        crash=cfg.get("crash", ()),
    )


class ClientRunner(_Runner):
    def __init__(self, hw_arch="hailo8", har=None):
        super().__init__(_module_sdk(), hw_arch, har)


def __getattr__(name):
    if name == "__version__":
        return _config().get("version", VERSION)
    raise AttributeError(name)


class CallLog(CallQueries):
    """The calls recorded by compile processes, read back from a log file."""

    def __init__(self, path):
        self.calls = []
        if os.path.exists(path):
            with open(path) as fh:
                self.calls = [json.loads(line) for line in fh if line.strip()]


def read_log(path) -> CallLog:
    return CallLog(path)
