"""numpy evaluation of ONNX layout ops (Transpose, Unsqueeze, Squeeze, Reshape, Flatten, Identity),
as the operator spec defines them (opsets 1 to 21: axes as attribute or input). Two users: loading
folds layout ops of constants with it (rewriter/ir/load.py), and views.py pushes an arange through
a layout-only host step with it (run_layout_model). A test checks it against onnxruntime on random
chains. Anything else, or any doubt (an invalid axis, Reshape's allowzero), is None: the caller
then asks onnxruntime."""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper, numpy_helper


def _axes(ins, attrs):
    if len(ins) > 1 and ins[1] is not None:
        return [int(a) for a in np.asarray(ins[1]).reshape(-1)]
    return [int(a) for a in attrs["axes"]] if "axes" in attrs else None


def _transpose(ins, attrs):
    x = ins[0]
    perm = attrs.get("perm")
    return np.transpose(x, None if perm is None else [int(p) for p in perm])


def _unsqueeze(ins, attrs):
    x, axes = ins[0], _axes(ins, attrs)
    if not axes:
        return None
    rank = x.ndim + len(axes)
    axes = sorted(a + rank if a < 0 else a for a in axes)
    if len(set(axes)) != len(axes) or any(not 0 <= a < rank for a in axes):
        return None
    return np.expand_dims(x, tuple(axes))


def _squeeze(ins, attrs):
    x, axes = ins[0], _axes(ins, attrs)
    if axes is None:
        return np.squeeze(x)
    axes = [a + x.ndim if a < 0 else a for a in axes]
    if any(not 0 <= a < x.ndim or x.shape[a] != 1 for a in axes):
        return None
    return np.squeeze(x, axis=tuple(axes))


def _reshape(ins, attrs):
    if attrs.get("allowzero", 0):
        return None
    x = ins[0]
    shape = [int(d) for d in np.asarray(ins[1]).reshape(-1)]
    return x.reshape([x.shape[k] if d == 0 and k < x.ndim else d for k, d in enumerate(shape)])


def _flatten(ins, attrs):
    x = ins[0]
    axis = int(attrs.get("axis", 1))
    axis = axis + x.ndim if axis < 0 else axis
    if not 0 <= axis <= x.ndim:
        return None
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


_EVAL = {
    "Identity": lambda ins, attrs: ins[0],
    "Transpose": _transpose,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Reshape": _reshape,
    "Flatten": _flatten,
}


LAYOUT_EVAL_OPS = frozenset(_EVAL)


def evaluate(op: str, inputs: list, attrs: dict) -> np.ndarray | None:
    """The output of layout op `op` on numpy `inputs` (None for an absent optional input) with
    attributes `attrs`, or None when it cannot say."""
    if op not in _EVAL or not inputs or inputs[0] is None:
        return None
    try:
        return _EVAL[op](inputs, attrs)
    except (ValueError, TypeError, IndexError, KeyError):
        return None


def run_layout_model(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray | None:
    """The model's one output for input `x`, or None when it is not a plain chain of the ops above
    in the default domain with constant axes and shapes."""
    graph = model.graph
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    values[graph.input[0].name] = x
    for node in graph.node:
        if node.domain not in ("", "ai.onnx") or len(node.output) != 1:
            return None
        if any(name and name not in values for name in node.input):
            return None
        ins = [values[name] if name else None for name in node.input]
        y = evaluate(node.op_type, ins, {a.name: helper.get_attribute_value(a) for a in node.attribute})
        if y is None:
            return None
        values[node.output[0]] = y
    return values.get(graph.output[0].name)
