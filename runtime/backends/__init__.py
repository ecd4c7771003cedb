"""Execution backends for onnx steps. Only the onnxruntime one is imported eagerly; hailo_platform
and onnxruntime.quantization (which needs onnx) are imported inside the backends that use them."""

from __future__ import annotations

import importlib

from ..schema import PlanSpec
from .base import Backend, Segment
from .hailo_backend import HailoBackend  # safe: hailo_platform is imported when one is created
from .int8_emulation import Int8EmulationBackend  # safe: onnx is imported only when quantizing
from .ort_backend import OrtBackend

BACKENDS = ("auto", "onnxruntime", "hailo", "emulate-int8")


def choose_backend(spec: PlanSpec, requested: str) -> tuple[str, str]:
    """(backend name, one-line reason) for the plan's hailo steps."""
    if requested != "auto":
        return requested, f"requested backend={requested!r}"
    steps = spec.hailo_steps
    if not steps:
        return "onnxruntime", "plan has no hailo steps"
    try:
        hp = importlib.import_module("hailo_platform")
    except ImportError as e:
        return "onnxruntime", f"hailo_platform not importable ({e}); hailo steps run on onnxruntime"
    failed = [s.name for s in steps if s.compile_status == "failed"]
    if failed:
        shown = ", ".join(failed[:3]) + (f" and {len(failed) - 3} more" if len(failed) > 3 else "")
        return "onnxruntime", f"compile failed for step(s) {shown}; hailo steps run on onnxruntime"
    missing = [s.name for s in steps if s.hef_path is None or not s.hef_path.is_file()]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        return "onnxruntime", (
            f"HEF missing or not recorded in plan.json for step(s) {shown}; hailo steps run on onnxruntime"
        )
    version = getattr(hp, "__version__", "?")
    return "hailo", f"hailo_platform {version} importable and all {len(steps)} hailo step HEFs present"


__all__ = ["Backend", "Segment", "OrtBackend", "HailoBackend", "Int8EmulationBackend", "BACKENDS", "choose_backend"]
