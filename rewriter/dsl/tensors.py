"""Small facts about gs tensors shared by the matcher, evaluator and rewriter."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from rewriter.ir.dtypes import dtype_name as numpy_dtype_name


def const_value(t) -> np.ndarray | None:
    """The array of a gs.Constant, or of a Variable made by a `Constant` node; else None."""
    if isinstance(t, gs.Constant):
        return t.values
    if isinstance(t, gs.Variable) and len(t.inputs) == 1:
        node = t.inputs[0]
        if node.op == "Constant" and "value" in node.attrs:
            v = node.attrs["value"]
            return v.values if isinstance(v, gs.Constant) else np.asarray(v)
    return None


def is_const(t) -> bool:
    # a gs.Constant is one without loading its values (an initializer is read only when used)
    return isinstance(t, gs.Constant) or (t is not None and const_value(t) is not None)


def is_empty(t) -> bool:
    """A missing optional input: absent, or a Variable with an empty name."""
    return t is None or (isinstance(t, gs.Variable) and not t.name)


def dtype_name(t) -> str | None:
    dt = t.dtype if not isinstance(t, gs.Constant) else t.values.dtype
    if dt is None:
        return None
    if isinstance(dt, int):  # onnx TensorProto enum (e.g. bfloat16)
        return onnx.TensorProto.DataType.Name(dt).lower()
    return numpy_dtype_name(dt)


def shape_of(t) -> list | None:
    if isinstance(t, gs.Constant):
        return list(t.shape)  # from the TensorProto's dims while the values are not loaded
    return None if t.shape is None else list(t.shape)
