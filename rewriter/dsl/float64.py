"""A verification instance evaluated in float64: the arbiter when a rewritten instance's float32
result differs from the original's.

The verifier compares the rewrite against onnxruntime's float32 result of the original, which is
itself rounded, and for a few kernels far from exact: its InstanceNormalization over one element
(x = 1470.578) gives 6.40625 where the exact value is the bias, 6.4057837 (one element normalizes
to 0); the rewrite to LayerNormalization gives the exact value, and was reported as a wrong rule. The same
instance widened to float64 and run by onnx's reference evaluator gives the exact value to within
float64 rounding; where the rewrite's float32 output is within the verifier's tolerance of it,
the difference is the original's rounding, not the rule's error.
"""

from __future__ import annotations

import numpy as np
import onnx

from rewriter.ir import widen
from rewriter.ir.widen import NARROW_FLOATS, float_types_in


def widened(model: onnx.ModelProto) -> onnx.ModelProto | None:
    """`model` with every float32 value in float64 (rewriter/ir/widen.py), or None when it holds
    float16 (then float64 is not its exact arithmetic either) or what cannot be widened."""
    if float_types_in(model, NARROW_FLOATS, nodes=True):
        return None
    try:
        return widen.widened(model, frozenset({onnx.TensorProto.FLOAT}), onnx.TensorProto.DOUBLE, keep_interface=False)
    except widen.NotWidened:
        return None


def reference64(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray] | None:
    """The outputs of `model` computed in float64 by onnx's reference evaluator (numpy kernels for
    every type; onnxruntime has no float64 InstanceNormalization, for one), or None when the
    instance cannot be widened or the evaluator cannot run it."""
    from onnx.reference import ReferenceEvaluator  # only when a comparison fails: rare, and slow to import

    wide = widened(model)
    if wide is None:
        return None
    wide_feeds = {k: (v.astype(np.float64) if np.asarray(v).dtype == np.float32 else v) for k, v in feeds.items()}
    try:
        return [np.asarray(v) for v in ReferenceEvaluator(wide).run(None, wide_feeds)]
    except Exception:  # noqa: BLE001  (an op it lacks, and friends: no arbiter, the float32 verdict stands)
        return None
