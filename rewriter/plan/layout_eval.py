"""numpy evaluation of layout-only ONNX models (Transpose, Unsqueeze, Squeeze, Reshape, Flatten,
Identity): what views.py pushes an arange through to find a model's view. Each op as the ONNX
operator spec defines it (opsets 1 to 21: axes as attribute or input); a test checks them against
onnxruntime on random chains. Anything else, or any doubt, is None (the caller asks onnxruntime)."""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper, numpy_helper


def _axes(node, ins, attrs):
    if len(ins) > 1 and ins[1] is not None:
        return [int(a) for a in np.asarray(ins[1]).reshape(-1)]
    return [int(a) for a in attrs["axes"]] if "axes" in attrs else None


def _transpose(node, ins, attrs):
    x = ins[0]
    perm = attrs.get("perm")
    return np.transpose(x, None if perm is None else [int(p) for p in perm])


def _unsqueeze(node, ins, attrs):
    x, axes = ins[0], _axes(node, ins, attrs)
    if not axes:
        return None
    rank = x.ndim + len(axes)
    axes = sorted(a + rank if a < 0 else a for a in axes)
    if len(set(axes)) != len(axes) or any(not 0 <= a < rank for a in axes):
        return None
    return np.expand_dims(x, tuple(axes))


def _squeeze(node, ins, attrs):
    x, axes = ins[0], _axes(node, ins, attrs)
    if axes is None:
        return np.squeeze(x)
    axes = [a + x.ndim if a < 0 else a for a in axes]
    if any(not 0 <= a < x.ndim or x.shape[a] != 1 for a in axes):
        return None
    return np.squeeze(x, axis=tuple(axes))


def _reshape(node, ins, attrs):
    x = ins[0]
    shape = [int(d) for d in np.asarray(ins[1]).reshape(-1)]
    if not attrs.get("allowzero", 0):
        shape = [x.shape[k] if d == 0 and k < x.ndim else d for k, d in enumerate(shape)]
    return x.reshape(shape)


def _flatten(node, ins, attrs):
    x = ins[0]
    axis = int(attrs.get("axis", 1))
    axis = axis + x.ndim if axis < 0 else axis
    if not 0 <= axis <= x.ndim:
        return None
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


_EVAL = {
    "Identity": lambda node, ins, attrs: ins[0],
    "Transpose": _transpose,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Reshape": _reshape,
    "Flatten": _flatten,
}


def run_layout_model(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray | None:
    """The model's one output for input `x`, or None when it is not a plain chain of the ops above
    in the default domain with constant axes and shapes."""
    graph = model.graph
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    values[graph.input[0].name] = x
    try:
        for node in graph.node:
            if node.domain not in ("", "ai.onnx") or node.op_type not in _EVAL or len(node.output) != 1:
                return None
            if any(name and name not in values for name in node.input) or not node.input or not node.input[0]:
                return None
            ins = [values[name] if name else None for name in node.input]
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            y = _EVAL[node.op_type](node, ins, attrs)
            if y is None:
                return None
            values[node.output[0]] = y
        return values.get(graph.output[0].name)
    except (ValueError, TypeError, IndexError, KeyError):
        return None
