"""Attribute values of a gs node with ONNX schema defaults (and derived Conv/Pool defaults)."""

from __future__ import annotations

import functools

import numpy as np
import onnx
import onnx_graphsurgeon as gs

OPSET = 17
_SPATIAL_OPS = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "ConvInteger", "QLinearConv"}
MISSING = object()


@functools.cache
def schema(op: str):
    try:
        return onnx.defs.get_schema(op, OPSET, "")
    except onnx.defs.SchemaError:
        return None


@functools.cache
def schema_defaults(op: str) -> dict:
    s = schema(op)
    out = {}
    if s is None:
        return out
    for name, a in s.attributes.items():
        if a.default_value is not None and a.default_value.name:
            out[name] = normalize(onnx.helper.get_attribute_value(a.default_value))
    return out


@functools.cache
def attr_types(op: str) -> dict:
    s = schema(op)
    return {} if s is None else {n: a.type for n, a in s.attributes.items()}


def normalize(v):
    """Attribute value in rule terms: bytes -> str, tuples -> lists, tensors -> arrays."""
    t = type(v)
    if t is int or t is float or t is str:  # most attributes: as they are
        return v
    if t is list and all(type(x) is int for x in v):  # kernel_shape, pads, strides...
        return list(v)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, (list, tuple)):
        return [normalize(x) for x in v]
    if isinstance(v, gs.Constant):
        return v.values
    if isinstance(v, onnx.TensorProto):
        return onnx.numpy_helper.to_array(v)
    if isinstance(v, np.generic):
        return v.item()
    return v


def _spatial_rank(node: gs.Node) -> int | None:
    if "kernel_shape" in node.attrs:
        return len(node.attrs["kernel_shape"])
    if node.op in ("Conv", "ConvTranspose") and len(node.inputs) > 1 and node.inputs[1].shape:
        return len(node.inputs[1].shape) - 2
    if node.inputs and node.inputs[0].shape:
        return len(node.inputs[0].shape) - 2
    return None


def _derived(node: gs.Node, key: str):
    """Defaults the schema leaves implicit: 1 per spatial dim for strides/dilations, 0 for pads."""
    if node.op not in _SPATIAL_OPS:
        return MISSING
    n = _spatial_rank(node)
    if n is None:
        return MISSING
    if key in ("strides", "dilations"):
        return [1] * n
    if key == "pads":
        return [0] * (2 * n)
    if key == "output_padding" and node.op == "ConvTranspose":
        return [0] * n
    if key == "kernel_shape" and node.op in ("Conv", "ConvTranspose") and len(node.inputs) > 1:
        shape = node.inputs[1].shape
        if shape and all(isinstance(d, int) for d in shape[2:]):
            return list(shape[2:])
    return MISSING


def get_attr(node: gs.Node, key: str):
    """The node's value for `key`, else its default; None when there is neither."""
    if key in node.attrs:
        return normalize(node.attrs[key])
    d = _derived(node, key)
    if d is not MISSING:
        return d
    return schema_defaults(node.op).get(key)


def coerce(op: str, key: str, v):
    """Make a rule-computed attribute value match the schema type (0 -> 0.0 for FLOAT...)."""
    t = attr_types(op).get(key)
    A = onnx.AttributeProto
    if isinstance(v, np.ndarray) and t in (A.INTS, A.FLOATS):
        v = v.tolist()
    if t == A.FLOAT:
        return float(v)
    if t == A.INT:
        return int(v)
    if t == A.FLOATS:
        return [float(x) for x in v]
    if t == A.INTS:
        return [int(x) for x in v]
    if t == A.TENSOR and isinstance(v, np.ndarray):
        return gs.Constant("", v)
    return v
