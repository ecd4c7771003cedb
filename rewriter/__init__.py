"""ONNX -> Hailo plan rewriter: loading, passes, rule DSL, partitioning, plan writing, CLI."""

__version__ = "0.1.0"
