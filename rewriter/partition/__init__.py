"""Placement (what may run on the target, and why not), partitioning into convex segments, and
extraction of one ONNX model per segment."""
