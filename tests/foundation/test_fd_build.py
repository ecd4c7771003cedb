"""rewriter/ir/build.py builds in place what onnx.helper builds and then copies: add_initializer the
very TensorProto numpy_helper.from_array makes (same serialized bytes) for every dtype, layout and
shape a tiled model's constants take, and others; make_model helper's make_model of make_graph."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from rewriter.ir.build import add_initializer, make_model

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


def test_make_model_is_helpers_make_model_of_make_graph():
    """The same bytes as helper.make_model(helper.make_graph(...)) with ir_version set after, for
    the shapes of model the pipeline builds (weights, value_info, several opsets, a producer)."""
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="c"), helper.make_node("Relu", ["y"], ["z"])]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 1, 9])]
    outputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 8, 1, 9])]
    inits = [numpy_helper.from_array(VALUES["float32 weight"], "w")]
    value_info = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 1, 9])]
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    for producer, ir in (("hailo-rewriter", 8), ("", 10), (None, None)):
        want = helper.make_model(
            helper.make_graph(nodes, "g", inputs, outputs, inits, value_info=value_info),
            opset_imports=opsets,
            **({} if producer is None else {"producer_name": producer}),
        )
        if ir is not None:
            want.ir_version = ir
        got = make_model(
            nodes, "g", inputs, outputs, inits, value_info, opset_imports=opsets, producer_name=producer, ir_version=ir
        )
        assert got.SerializeToString(deterministic=True) == want.SerializeToString(deterministic=True)


def _with_field_set(t: onnx.TensorProto, field: str) -> onnx.TensorProto:
    """A copy of `t` with one more field set (a value of the field's own kind)."""
    t2 = onnx.TensorProto()
    t2.CopyFrom(t)
    value = getattr(t2, field)
    if field in ("external_data", "metadata_props"):
        entry = value.add()
        entry.key, entry.value = "k", "v"
    elif field == "segment":
        t2.segment.begin = 0
    elif isinstance(value, (str, bytes)):
        setattr(t2, field, type(value)(b"x" if isinstance(value, bytes) else "x"))
    elif isinstance(value, int):
        setattr(t2, field, 1)
    else:  # a repeated scalar field
        value.append(b"x" if field == "string_data" else 1)
    return t2


def test_a_tensor_with_any_other_field_is_not_copied_whole():
    """add_initializer copies a whole TensorProto only when it holds exactly what from_array writes:
    every other field of TensorProto, set alone, sends it through the re-encoding route (the bytes
    then equal from_array's), and the plain one is copied (the same bytes too)."""
    from rewriter.ir import build

    value = VALUES["float32 weight"]
    plain = numpy_helper.from_array(value, "w")
    assert build._raw_copy_is_from_array(plain, value)
    others = [
        f.name for f in onnx.TensorProto.DESCRIPTOR.fields if f.name not in {"dims", "data_type", "name", "raw_data"}
    ]
    assert len(others) >= 10  # segment, *_data, doc_string, external_data, data_location, metadata_props
    for field in others:
        marked = _with_field_set(plain, field)
        assert marked.HasField(field) if field in build._OTHER_SCALARS else len(getattr(marked, field)) == 1
        assert not build._raw_copy_is_from_array(marked, value), field
        graph = onnx.GraphProto()
        add_initializer(graph, "v", value, whole=marked)
        want = numpy_helper.from_array(value, "v")
        assert graph.initializer[0].SerializeToString(deterministic=True) == want.SerializeToString(deterministic=True)
    graph = onnx.GraphProto()
    add_initializer(graph, "v", value, whole=plain)
    assert graph.initializer[0].SerializeToString() == numpy_helper.from_array(value, "v").SerializeToString()
