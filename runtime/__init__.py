"""Pi-side runtime for hailo-rewriter plans (see docs/runtime.md).

Imports only the standard library, numpy and onnxruntime; hailo_platform is imported lazily by
the hailo backend and onnxruntime.quantization (needs onnx) only by the emulate-int8 backend.
"""
from .backends import Backend, HailoBackend, Int8EmulationBackend, OrtBackend, Segment, choose_backend
from .errors import PlanError
from .plan import Plan, validate
from .profile import RunProfile, StepProfile, format_profile

__all__ = ["Plan", "PlanError", "validate", "StepProfile", "RunProfile", "format_profile",
           "Backend", "Segment", "OrtBackend", "HailoBackend",
           "Int8EmulationBackend", "choose_backend"]
