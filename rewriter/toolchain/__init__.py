"""Hailo toolchain glue: compile a plan's hailo segments to HEFs with the Dataflow Compiler (DFC).

Nothing here has run against the real DFC: it is written from Hailo's documented API and tested
against a recording stand-in (tests/toolchain/hailo_sdk_standin.py). See docs/compile.md.
"""
from .sdk import ToolchainMissing
from .model_script import DEFAULT_COMPILE_SETTINGS, build_model_script
from .dfc_driver import CompileSummary, SegmentResult, compile_plan
from .emit_script import emit_compile_script

__all__ = [
    "ToolchainMissing", "DEFAULT_COMPILE_SETTINGS", "build_model_script",
    "CompileSummary", "SegmentResult", "compile_plan", "emit_compile_script",
]
