"""Pi-side runtime for hailo-rewriter plans (see docs/runtime.md).

Imports only the standard library, numpy and onnxruntime; hailo_platform is imported lazily by
the hailo backend and onnxruntime.quantization (needs onnx) only by the emulate-int8 backend.
The names below are loaded on first use (PEP 562), so `from runtime import schema` (the plan
writer's validation) does not pay for onnxruntime.
"""

from .errors import PlanError

_LAZY = {
    "Plan": ".plan",
    "validate": ".validation",
    "StepProfile": ".profile",
    "RunProfile": ".profile",
    "format_profile": ".profile",
    "Backend": ".backends",
    "Segment": ".backends",
    "OrtBackend": ".backends",
    "HailoBackend": ".backends",
    "Int8EmulationBackend": ".backends",
    "choose_backend": ".backends",
}

__all__ = [
    "Plan",
    "PlanError",
    "validate",
    "StepProfile",
    "RunProfile",
    "format_profile",
    "Backend",
    "Segment",
    "OrtBackend",
    "HailoBackend",
    "Int8EmulationBackend",
    "choose_backend",
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
