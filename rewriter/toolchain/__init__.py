"""Hailo toolchain glue: compile a plan's hailo segments to HEFs with the Dataflow Compiler (DFC).

Nothing here has run against the real DFC: it is written from Hailo's documented API and tested
against a recording stand-in (tests/toolchain/hailo_sdk_standin.py). See docs/compile.md.
Names are imported on first use: a compile process (compile_worker) must not pay for onnx.
"""

import importlib

_EXPORTS = {
    "ToolchainMissing": "sdk",
    "DEFAULT_COMPILE_SETTINGS": "model_script",
    "build_model_script": "model_script",
    "CompileSummary": "dfc_driver",
    "SegmentResult": "dfc_driver",
    "compile_plan": "dfc_driver",
    "emit_compile_script": "emit_script",
    "HefCache": "hef_cache",
}
__all__ = [
    "DEFAULT_COMPILE_SETTINGS",
    "CompileSummary",
    "HefCache",
    "SegmentResult",
    "ToolchainMissing",
    "build_model_script",
    "compile_plan",
    "emit_compile_script",
]


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
