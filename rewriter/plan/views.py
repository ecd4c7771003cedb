"""Host steps that only re-lay out their input (Transpose / Unsqueeze / Squeeze / Reshape / Flatten)
are recorded as numpy views in plan.json (`view`: reshape, then transpose), so the runtime does
them without onnxruntime and without a copy. The common case: the channels-last [1, T, C] sensor
window becomes the [1, C, 1, T] input of a (1, k)-conv segment; with the hailo backend the view
is turned back into the NHWC buffer HailoRT wants without copying either, so the raw window goes
to the device as it is. Detected numerically (an arange through the segment), not by pattern: in
numpy (rewriter/ir/layout_eval.py, checked against onnxruntime by its tests), with onnxruntime
only for what that does not evaluate."""

from __future__ import annotations

import math

import numpy as np

from rewriter.ir.layout_eval import run_layout_model
from rewriter.ir.opfacts import LAYOUT_OPS
from rewriter.plan.steps import PlannedStep


def _candidates(in_shape: list[int], out_shape: list[int]) -> list[dict]:
    """Views worth trying: a plain reshape, and NHWC -> NCHW of the input read as [N, H, W, C]."""
    found = [{"reshape": out_shape}]
    if len(out_shape) == 4:
        n, c, h, w = out_shape
        found.append({"reshape": [n, h, w, c], "transpose": [0, 3, 1, 2]})
    return found


def apply_view(x: np.ndarray, view: dict) -> np.ndarray:
    y = x.reshape(view["reshape"])
    return y.transpose(view["transpose"]) if "transpose" in view else y


def detect_view(step: PlannedStep) -> dict | None:
    model = step.model
    if (
        step.device != "host"
        or model is None
        or len(step.inputs) != 1
        or len(step.outputs) != 1
        or any(n.op_type not in LAYOUT_OPS for n in model.graph.node)
    ):
        return None
    dims = lambda v: [d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    in_shape, out_shape = dims(model.graph.input[0]), dims(model.graph.output[0])
    if math.prod(in_shape) != math.prod(out_shape) or model.graph.input[0].type.tensor_type.elem_type != 1:
        return None
    x = np.arange(math.prod(in_shape), dtype=np.float32).reshape(in_shape)
    y = run_layout_model(model, x)
    if y is None:
        import onnxruntime as ort

        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        (y,) = session.run(None, {model.graph.input[0].name: x})
    for view in _candidates(in_shape, out_shape):
        if np.array_equal(apply_view(x, view), y):
            return view
    return None


def mark_views(steps: list[PlannedStep]) -> None:
    for step in steps:
        view = detect_view(step)
        if view is not None:
            step.extra["view"] = view
