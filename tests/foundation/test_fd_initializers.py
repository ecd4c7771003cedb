"""add_initializer writes the very TensorProto numpy_helper.from_array makes (same serialized
bytes), for every dtype, layout and shape a tiled model's constants take, and others."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from rewriter.ir.initializers import add_initializer

RNG = np.random.default_rng(0)
VALUES = {
    "float32 weight": RNG.standard_normal((8, 4, 1, 3)).astype(np.float32),
    "float16": RNG.standard_normal((5, 7)).astype(np.float16),
    "float64": RNG.standard_normal(6),
    "int64 index": np.array([3], np.int64),
    "int32": np.arange(-4, 4, dtype=np.int32),
    "int16": np.arange(5, dtype=np.int16),
    "int8": np.arange(-3, 3, dtype=np.int8),
    "uint8": np.arange(9, dtype=np.uint8),
    "bool mask": RNG.random((1, 1, 1, 12)) > 0.5,
    "0-d": np.float32(2.5),
    "empty": np.zeros((0, 3), np.float32),
    "channel slice (non-contiguous)": RNG.standard_normal((16, 8, 1, 3)).astype(np.float32)[4:12, 2:6],
    "transposed": RNG.standard_normal((3, 5)).astype(np.float32).T,
    "uint64 (from_array's route)": np.arange(3, dtype=np.uint64),
    "string (from_array's route)": np.array(["a", "bc"], dtype=object),
}


@pytest.mark.parametrize("label", VALUES)
def test_same_bytes_as_from_array(label):
    value = np.asarray(VALUES[label])
    graph = onnx.GraphProto()
    add_initializer(graph, "t", value)
    add_initializer(graph, "", value)  # an unnamed one: no name field, as from_array leaves it
    assert len(graph.initializer) == 2
    for got, name in zip(graph.initializer, ("t", "")):
        want = numpy_helper.from_array(value, name)
        assert got.SerializeToString(deterministic=True) == want.SerializeToString(deterministic=True)
        assert np.array_equal(numpy_helper.to_array(got), value)


def test_what_from_array_refuses_is_refused_alike():
    value = np.arange(4, dtype=">f4")  # not little-endian: onnx names no element type for it
    with pytest.raises(ValueError) as want:
        numpy_helper.from_array(value, "t")
    with pytest.raises(ValueError) as got:
        add_initializer(onnx.GraphProto(), "t", value)
    assert str(got.value) == str(want.value)
