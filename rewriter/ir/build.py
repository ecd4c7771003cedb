"""Models and initializers built where they end up: onnx.helper's make_model copies the finished
graph into the model and a finished TensorProto is copied into a graph's list, so building
elsewhere first copies every weight once more."""

from __future__ import annotations

import math
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

# dtypes whose TensorProto is dims + data_type + raw_data, nothing else (numpy_helper.from_array)
_RAW_DTYPES = frozenset(
    np.dtype(t) for t in (np.float32, np.float16, np.float64, np.int64, np.int32, np.int16, np.int8, np.uint8, np.bool_)
)


# weights shape inference reads the dims of only (never the values): large floats
_T = onnx.TensorProto
_LARGE_FLOAT_TYPES = (_T.FLOAT, _T.FLOAT16, _T.DOUBLE, _T.BFLOAT16)


def is_large_float(data_type: int, dims, has_raw_data: bool) -> bool:
    """A float weight of more than 1,024 values held as raw bytes: the weights inference, the
    dims-only copies and the deferred export leave as name, type and dims."""
    return data_type in _LARGE_FLOAT_TYPES and has_raw_data and math.prod(dims) > 1024


def is_large_float_proto(t: onnx.TensorProto) -> bool:
    """A float initializer of more than 1,024 values (its dims say so: no copy of its data)."""
    return is_large_float(t.data_type, t.dims, t.HasField("raw_data"))


def dims_only(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with its large float initializers reduced to name, type and dims (all inference
    reads of them); everything else copied."""
    light = onnx.ModelProto()
    for field in ("ir_version", "producer_name", "producer_version", "domain", "model_version"):
        setattr(light, field, getattr(model, field))
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    graph, g = light.graph, model.graph
    graph.name = g.name
    for field in ("node", "input", "output", "value_info", "sparse_initializer"):
        getattr(graph, field).extend(getattr(g, field))
    for t in g.initializer:
        if is_large_float_proto(t):
            add_stub(graph, t.name, t.data_type, t.dims)
        else:
            graph.initializer.append(t)
    return light


def add_stub(graph: onnx.GraphProto, name: str, data_type: int, dims) -> None:
    """A weight as name, type and dims only (what inference reads of a large float)."""
    stub = graph.initializer.add()
    stub.name, stub.data_type = name, data_type
    stub.dims.extend(dims)


# the fields of a TensorProto numpy_helper.from_array writes for those dtypes
_RAW_FIELDS = frozenset({"dims", "data_type", "name", "raw_data"})


def _is_repeated(name: str) -> bool:
    try:
        onnx.TensorProto().HasField(name)  # raises for repeated fields (any protobuf version)
    except ValueError:
        return True
    return False


# every other field, split by how its presence is asked: ListFields would also hand back raw_data,
# a copy of the weight's bytes, just to learn which fields are set
_OTHER_SCALARS = tuple(
    f.name for f in onnx.TensorProto.DESCRIPTOR.fields if f.name not in _RAW_FIELDS and not _is_repeated(f.name)
)
_OTHER_REPEATED = tuple(
    f.name for f in onnx.TensorProto.DESCRIPTOR.fields if f.name not in _RAW_FIELDS and _is_repeated(f.name)
)


def copy_tensor(graph: onnx.GraphProto, tensor: onnx.TensorProto) -> None:
    """graph.initializer gains a copy of `tensor`. Built in place (add, CopyFrom): upb's append of a
    finished message took 3x as long for a 100 MB weight (0.25 s against 0.08 s)."""
    graph.initializer.add().CopyFrom(tensor)


def add_initializer(
    graph: onnx.GraphProto, name: str, value: np.ndarray, whole: onnx.TensorProto | None = None
) -> None:
    """graph.initializer gains numpy_helper.from_array(value, name), the same message, built in the
    graph's own list: appending a finished TensorProto copies it (weights would be copied twice).
    `whole`: a TensorProto `value` is the whole array of; when it holds nothing but what from_array
    writes, it is copied as it is and renamed (one copy, not tobytes() and another)."""
    value = np.asarray(value)
    if whole is not None and _raw_copy_is_from_array(whole, value):
        copied = graph.initializer.add()
        copied.CopyFrom(whole)
        copied.name = name
        return
    if not encodes_raw(value):
        graph.initializer.append(numpy_helper.from_array(value, name))
        return
    tensor = graph.initializer.add()
    tensor.dims.extend(value.shape)
    if name:
        tensor.name = name
    tensor.data_type = helper.np_dtype_to_tensor_dtype(value.dtype)
    tensor.raw_data = value.tobytes()


def encodes_raw(value: np.ndarray) -> bool:
    """add_initializer builds `value`'s TensorProto itself (dims, type, name, raw bytes) rather than
    handing it to numpy_helper.from_array."""
    return value.dtype in _RAW_DTYPES and sys.byteorder == "little"


def _raw_copy_is_from_array(t: onnx.TensorProto, value: np.ndarray) -> bool:
    """A copy of `t`, renamed, is numpy_helper.from_array(value): `t` holds nothing but dims, type,
    name and raw little-endian bytes (what from_array writes) and `value` is its whole array."""
    return (
        tuple(t.dims) == value.shape
        and t.data_type == helper.np_dtype_to_tensor_dtype(value.dtype)
        and value.dtype.isnative
        and not any(t.HasField(f) for f in _OTHER_SCALARS)
        and not any(len(getattr(t, f)) for f in _OTHER_REPEATED)
    )


def make_model(
    nodes,
    name: str,
    inputs,
    outputs,
    initializer=(),
    value_info=(),
    *,
    opset_imports,
    producer_name: str | None = None,
    ir_version: int | None = None,
) -> onnx.ModelProto:
    """helper.make_model(helper.make_graph(nodes, name, inputs, outputs, initializer,
    value_info=value_info), opset_imports=..., producer_name=...) with `ir_version` set after: the
    same message, its graph filled inside the model."""
    model = onnx.ModelProto()
    model.ir_version = onnx.IR_VERSION if ir_version is None else ir_version
    graph = model.graph
    graph.node.extend(nodes)
    graph.name = name
    graph.input.extend(inputs)
    graph.output.extend(outputs)
    graph.initializer.extend(initializer)
    graph.value_info.extend(value_info)
    model.opset_import.extend(opset_imports)
    if producer_name is not None:
        model.producer_name = producer_name
    return model
