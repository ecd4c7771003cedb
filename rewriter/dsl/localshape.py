"""Shape/dtype of new values: onnx shape inference on a one-node model (cheap and local)."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from onnx import helper, numpy_helper

from .attrs import OPSET
from .tensors import const_value

_SMALL = 4096  # constants up to this size go in as initializers so Reshape etc. can read them


def _elem_type(t) -> int | None:
    dt = t.values.dtype if isinstance(t, gs.Constant) else t.dtype
    if dt is None:
        return None
    if isinstance(dt, int):
        return dt
    try:
        return helper.np_dtype_to_tensor_dtype(np.dtype(dt))
    except (TypeError, KeyError, ValueError):
        return None


def _attr(key, v):
    if isinstance(v, gs.Constant):
        return helper.make_attribute(key, numpy_helper.from_array(v.values))
    if isinstance(v, np.ndarray):
        return helper.make_attribute(key, numpy_helper.from_array(v))
    return helper.make_attribute(key, v)


# Rewrites create many alike nodes (an Unsqueeze per converted conv): results are memoized by op,
# attributes, input types/shapes and small constant values. Bounded so a huge graph cannot grow it.
_MEMO: dict = {}
_MEMO_LIMIT = 8192


class InferenceFailed(Exception):
    """onnx shape inference rejected the node (bad attributes, incompatible input shapes...)."""


def infer_node(node: gs.Node) -> None:
    """Fill dtype/shape of `node`'s outputs that lack them. Missing facts (an input of unknown type)
    leave them alone; a node that onnx's inference rejects raises InferenceFailed."""
    if not any(o.shape is None or o.dtype is None for o in node.outputs):
        return
    results = infer_results(node)
    if results is not None:
        _apply(node, results)


_FLOAT_SHAPES = {"Resize", "Upsample", "Range"}  # ops whose float inputs can decide a shape


def _by_value(op: str, c: np.ndarray) -> bool:
    """Constants whose values can decide shapes (axes, shapes, pads, Resize scales) go in as
    initializers; float constants of other ops (weights, biases) only by type and shape, so the
    memo below hits for every layer of a model, not once per weight tensor."""
    return c.size <= _SMALL and (c.dtype.kind != "f" or op in _FLOAT_SHAPES)


def infer_results(node: gs.Node) -> list | None:
    """[(dtype, shape) or None per output] by onnx inference on a one-node model, or None when an
    input's type is unknown. Raises InferenceFailed when inference rejects the node."""
    key = [node.op, node.domain, repr(sorted(node.attrs.items())), len(node.outputs)]
    consts = []
    for t in node.inputs:
        if not t.name:
            key.append(None)
            consts.append(None)
            continue
        c = const_value(t)
        consts.append(c)
        if c is not None and _by_value(node.op, np.asarray(c)):
            arr = np.asarray(c)
            key.append((arr.dtype.str, arr.shape, arr.tobytes()))
            continue
        et = _elem_type(t)
        if et is None:
            return None
        shape = list(c.shape) if c is not None else t.shape
        key.append((et, tuple(shape) if shape is not None else None))
    key = tuple(key)
    if key in _MEMO:
        got = _MEMO[key]
        if isinstance(got, str):
            raise InferenceFailed(got)
        return got
    inputs, inits, names = [], [], []
    for i, (_t, c, k) in enumerate(zip(node.inputs, consts, key[4:])):
        if k is None:
            names.append("")
            continue
        names.append(f"i{i}")
        if c is not None and _by_value(node.op, np.asarray(c)):
            inits.append(numpy_helper.from_array(np.asarray(c), f"i{i}"))
        else:
            inputs.append(helper.make_tensor_value_info(f"i{i}", k[0], list(k[1]) if k[1] is not None else None))
    outs = [f"o{k}" if o.name else "" for k, o in enumerate(node.outputs)]
    proto = helper.make_node(node.op, names, outs, domain=node.domain or "")
    proto.attribute.extend(_attr(k, v) for k, v in node.attrs.items() if v is not None)
    g = helper.make_graph(
        [proto], "local", inputs, [helper.make_tensor_value_info(o, 0, None) for o in outs if o], inits
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as exc:  # noqa: BLE001  (onnx raises several types from C++)
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        if len(_MEMO) < _MEMO_LIMIT:
            _MEMO[key] = msg
        raise InferenceFailed(msg) from None
    got = {vi.name: vi for vi in list(inferred.graph.output) + list(inferred.graph.value_info)}
    results = []
    for k in range(len(node.outputs)):
        vi = got.get(f"o{k}")
        if vi is None or not vi.type.tensor_type.elem_type:
            results.append(None)
            continue
        tt = vi.type.tensor_type
        shape = (
            [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim]
            if tt.HasField("shape")
            else None
        )
        results.append((helper.tensor_dtype_to_np_dtype(tt.elem_type), shape))
    if len(_MEMO) < _MEMO_LIMIT:
        _MEMO[key] = results
    return results


def _apply(node: gs.Node, results: list) -> None:
    for o, result in zip(node.outputs, results):
        if result is None:
            continue
        dtype, shape = result
        if o.dtype is None:
            o.dtype = dtype
        if o.shape is None and shape is not None:
            o.shape = list(shape)
