"""Numpy arrays written into a graph as initializers, in place."""

from __future__ import annotations

import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

# dtypes whose TensorProto is dims + data_type + raw_data, nothing else (numpy_helper.from_array)
_RAW = frozenset(
    np.dtype(t) for t in (np.float32, np.float16, np.float64, np.int64, np.int32, np.int16, np.int8, np.uint8, np.bool_)
)


def add_initializer(graph: onnx.GraphProto, name: str, value: np.ndarray) -> None:
    """graph.initializer gains numpy_helper.from_array(value, name), the same message, built in the
    graph's own list: appending a finished TensorProto copies it (weights would be copied twice)."""
    value = np.asarray(value)
    if value.dtype not in _RAW or sys.byteorder != "little":
        graph.initializer.append(numpy_helper.from_array(value, name))
        return
    tensor = graph.initializer.add()
    tensor.dims.extend(value.shape)
    if name:
        tensor.name = name
    tensor.data_type = helper.np_dtype_to_tensor_dtype(value.dtype)
    tensor.raw_data = value.tobytes()
