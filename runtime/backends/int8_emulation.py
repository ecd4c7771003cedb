"""emulate-int8 backend: run each hailo step's segment as an onnxruntime QDQ int8 model.

A development tool (never used on the Pi) to see what 8-bit quantization does to accuracy before
there is a HEF. Quantization mirrors Hailo-8's scheme closely enough for a first estimate:
  * weights int8, symmetric, per output channel (per_channel=True);
  * activations 8-bit per tensor, asymmetric (zero point), MinMax calibration. We store them as
    QInt8: the same 256-level affine grid as uint8-with-zero-point, and S8S8 is the combination
    onnxruntime's CPU kernels run without the u8s8 saturation caveat on x86.
Steps sharing a segment file are quantized once, calibrated with the union of their samples, as
one HEF would be. `onnxruntime.quantization` imports `onnx`, so it is imported only in `quantize`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..calib import load_calib_file
from ..errors import PlanError
from ..schema import PlanSpec, StepSpec
from .base import Backend
from .ort_backend import OrtBackend, OrtSegment, read_signature

SETTINGS = "qdq;per_channel;w=int8;a=int8-asym-per-tensor;minmax;v1"

CaptureFn = Callable[[StepSpec], "list[list[np.ndarray]] | None"]


def quantize(model_bytes: bytes, samples: list[list[np.ndarray]], input_names: list[str], dst: Path) -> None:
    """Static QDQ quantization of the (verified) model into `dst`, calibrated on `samples`. The model
    is quantized from a private copy beside `dst`: onnxruntime.quantization re-reads its input by
    path and writes a `-inferred` file next to it, which must be neither the plan's file (read
    again unverified) nor the plan folder (checking a plan must not change it)."""
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
    except ImportError as e:  # onnxruntime.quantization needs the `onnx` package
        raise PlanError(f"backend 'emulate-int8' needs onnxruntime.quantization (and onnx): {e}") from e

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter([dict(zip(input_names, s)) for s in samples])

        def get_next(self):
            return next(self._it, None)

    root_logger = logging.getLogger()
    level = root_logger.level
    root_logger.setLevel(max(level, logging.ERROR))  # quantize_static nags about pre-processing
    tmp = dst.with_suffix(f".tmp{os.getpid()}.onnx")
    work = Path(tempfile.mkdtemp(prefix=".float-", dir=dst.parent))
    source = work / "model.onnx"
    source.write_bytes(model_bytes)
    try:
        quantize_static(
            str(source),
            str(tmp),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
        os.replace(tmp, dst)  # atomic: a concurrent reader never sees half a model
    finally:
        root_logger.setLevel(level)
        tmp.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)


def cache_key(model_bytes: bytes, samples: list[list[np.ndarray]]) -> str:
    h = hashlib.sha256(SETTINGS.encode())
    h.update(model_bytes)
    for sample in samples:
        for a in sample:
            a = np.ascontiguousarray(a)
            h.update(str((a.shape, a.dtype.str)).encode())
            h.update(a.tobytes())
    return h.hexdigest()


def default_cache_dir(root: Path) -> Path:
    """A per-user cache folder (never inside the plan: checking a plan must not change it)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    for d in (
        Path(base) / "hailo-rewriter" / "int8",
        Path(tempfile.gettempdir()) / f"hailo-rewriter-int8-{os.getuid()}",
    ):
        try:
            d.mkdir(parents=True, exist_ok=True)
            if os.access(d, os.W_OK):
                return d
        except OSError:
            continue
    raise PlanError("emulate-int8: no writable cache directory")


class Int8EmulationBackend(Backend):
    name = "emulate-int8"

    def __init__(self, spec: PlanSpec, ort_backend: OrtBackend, capture: CaptureFn, cache_dir: Path | None = None):
        self.spec, self.ort, self.capture = spec, ort_backend, capture
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir(spec.root)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.quantized: dict[Path, Path] = {}  # float segment -> quantized model file

    def _samples(self, step: StepSpec, inputs) -> list[list[np.ndarray]]:
        if step.calib_path is not None:
            return load_calib_file(step.calib_path, inputs, step.name, self.ort.reader)
        samples = self.capture(step)
        if not samples:
            raise PlanError(
                f"step '{step.name}': emulate-int8 needs calibration data: the step has no 'calib' "
                "file (write the plan with `rewrite MODEL --calib WINDOWS.npy`, or pass "
                "calibration={plan_input: array (N, ...)} to Plan.load)"
            )
        return samples

    def open(self, model_path, step):
        key = Path(model_path).resolve()
        if key not in self.quantized:
            model_bytes = self.ort.reader(key) if self.ort.reader else key.read_bytes()
            inputs, _ = read_signature(key, self.ort.reader)
            samples = [
                s
                for other in self.spec.hailo_steps
                if other.model_path.resolve() == key
                for s in self._samples(other, inputs)
            ]
            dst = self.cache_dir / f"{cache_key(model_bytes, samples)[:32]}.onnx"
            if not dst.is_file():
                quantize(model_bytes, samples, [n for n, _ in inputs], dst)
            self.quantized[key] = dst
        return OrtSegment(self.ort.session(self.quantized[key], plan_file=False), step)
