"""rewriter.ir.load: external data, opset conversion, pinned shapes, constant folding."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from fd_util import ONNX_DATA, assert_tight, make_model, ort_run, random_feeds, save, vi, weight
from onnx import helper, parser

from rewriter.cli.commands import parse_input_shapes
from rewriter.errors import UserError
from rewriter.ir.load import WORKING_OPSET, load_graph, model_from_graph


def _small_conv(opset=17, ir_version=8, batch=1):
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["y"], axis=1),
    ]
    return make_model(
        nodes,
        [vi("x", [batch, 3, 8, 8])],
        [vi("y", [batch, 8 * 4 * 4])],
        [weight("W", (8, 3, 3, 3)), weight("B", (8,))],
        opset=opset,
        ir_version=ir_version,
    )


def _graph_outputs(graph: gs.Graph, feeds) -> dict:
    return ort_run(model_from_graph(graph), feeds)


# ---- external data -------------------------------------------------------------------------


def test_external_data_is_loaded(tmp_path):
    model = _small_conv()
    path = tmp_path / "ext.onnx"
    copy = onnx.ModelProto()
    copy.CopyFrom(model)  # onnx.save moves the data out of the proto it is given
    onnx.save(copy, str(path), save_as_external_data=True, location="ext.onnx.data", size_threshold=0)
    assert not onnx.load(str(path), load_external_data=False).graph.initializer[0].raw_data
    assert (tmp_path / "ext.onnx.data").is_file()
    graph, _ = load_graph(path)
    conv = next(n for n in graph.nodes if n.op == "Conv")
    assert isinstance(conv.inputs[1], gs.Constant)
    np.testing.assert_array_equal(conv.inputs[1].values, onnx.numpy_helper.to_array(model.graph.initializer[0]))
    feeds = random_feeds(model)
    ref = ort_run(model, feeds)
    got = _graph_outputs(graph, feeds)
    np.testing.assert_array_equal(got["y"], ref["y"])


def test_missing_external_data_file_is_user_error(tmp_path):
    path = tmp_path / "ext.onnx"
    onnx.save(_small_conv(), str(path), save_as_external_data=True, location="w.data", size_threshold=0)
    assert (tmp_path / "w.data").is_file()
    (tmp_path / "w.data").unlink()
    with pytest.raises(UserError, match="external data"):
        load_graph(path)


# ---- opset conversion ----------------------------------------------------------------------


@pytest.mark.parametrize("opset,ir", [(9, 4), (11, 6), (13, 7), (21, 10)])
def test_opset_converted_to_working_opset_with_same_outputs(tmp_path, opset, ir):
    model = _small_conv(opset=opset, ir_version=ir)
    path = save(model, tmp_path / f"m{opset}.onnx")
    graph, original = load_graph(path)
    assert WORKING_OPSET == 17
    assert graph.opset == 17
    assert original.opset_import[0].version == opset  # the original is returned as read
    feeds = random_feeds(model, seed=opset)
    ref = ort_run(path, feeds)
    got = _graph_outputs(graph, feeds)
    assert_tight(got["y"], ref["y"])


def test_ir3_initializers_listed_as_inputs_become_constants():
    graph, _ = load_graph(ONNX_DATA / "light" / "light_squeezenet.onnx")
    assert [t.name for t in graph.inputs] == ["data_0"]
    conv = next(n for n in graph.nodes if n.op == "Conv")
    assert isinstance(conv.inputs[1], gs.Constant)


# ---- pinned shapes -------------------------------------------------------------------------


def _dynamic_model(dims):
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    return make_model(nodes, [vi("x", dims)], [vi("y", dims)])


def test_input_shape_pins_dynamic_dims(tmp_path):
    path = save(_dynamic_model(["N", 4, "T"]), tmp_path / "d.onnx")
    graph, _ = load_graph(path, {"x": [2, 4, 10]})
    assert graph.inputs[0].shape == [2, 4, 10]
    assert graph.outputs[0].shape == [2, 4, 10]


def test_dynamic_batch_defaults_to_one(tmp_path):
    path = save(_dynamic_model(["N", 4, 6]), tmp_path / "d.onnx")
    graph, _ = load_graph(path)
    assert graph.inputs[0].shape == [1, 4, 6]
    assert graph.outputs[0].shape == [1, 4, 6]


def test_dynamic_non_batch_dim_needs_input_shape(tmp_path):
    path = save(_dynamic_model([1, 4, "T"]), tmp_path / "d.onnx")
    with pytest.raises(UserError, match="--input-shape") as info:
        load_graph(path)
    assert "x" in str(info.value) and "T" in str(info.value)


def test_pinned_shape_wrong_rank_is_user_error(tmp_path):
    path = save(_dynamic_model(["N", 4, "T"]), tmp_path / "d.onnx")
    with pytest.raises(UserError, match="rank 3"):
        load_graph(path, {"x": [1, 4]})


def test_pinned_shape_unknown_name_is_user_error(tmp_path):
    path = save(_dynamic_model(["N", 4, "T"]), tmp_path / "d.onnx")
    with pytest.raises(UserError, match="nope"):
        load_graph(path, {"nope": [1, 4, 5]})


def test_pinned_shape_conflicting_with_fixed_dim_is_user_error(tmp_path):
    path = save(_dynamic_model(["N", 4, "T"]), tmp_path / "d.onnx")
    with pytest.raises(UserError, match="fixed"):
        load_graph(path, {"x": [1, 5, 7]})


@pytest.mark.parametrize("spec", ["x", "x=", "=1,2", "x=1,,2", "x=a,b", "x=1,-2", "x=0,3", "x:1,2"])
def test_bad_input_shape_syntax_is_user_error(spec):
    with pytest.raises(UserError, match="--input-shape"):
        parse_input_shapes([spec])


def test_input_shape_parse_ok():
    assert parse_input_shapes(["a=1,2,3", "b.c:0=4"]) == {"a": [1, 2, 3], "b.c:0": [4]}
    assert parse_input_shapes(None) == {}


# ---- constant folding ----------------------------------------------------------------------

FOLD_CHAIN = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[1,4,8,8] x) => (float[1,4,8,8] y)
<int64[1] zero = {0}, int64[1] two = {2}, float[4,4,3,3] wbase = {WBASE}>
{
  s = Shape(x)
  z2 = ConstantOfShape<value = int64[1] {0}>(two)
  c = Gather<axis=0>(s, zero)
  cf = Cast<to=1>(c)
  r = Shape(c)
  ci = Cast<to=7>(cf)
  pads = Concat<axis=0>(z2, ci, ci, z2, ci, ci)
  p = Pad(x, pads)
  wscale = ConstantOfShape<value = float[1] {0.1}>(r)
  w = Mul(wbase, wscale)
  y = Conv(p, w)
}
"""


def _fold_chain_model():
    values = np.linspace(-1, 1, 144).astype(np.float32)
    text = FOLD_CHAIN.replace("WBASE", ",".join(f"{v:.6f}" for v in values))
    model = parser.parse_model(text)
    onnx.checker.check_model(model, full_check=True)
    return model


def test_shape_chain_feeding_pad_and_conv_weight_is_folded(tmp_path):
    model = _fold_chain_model()
    path = save(model, tmp_path / "fold.onnx")
    graph, _ = load_graph(path)
    assert [n.op for n in graph.nodes] == ["Pad", "Conv"]
    pad, conv = graph.nodes
    assert isinstance(pad.inputs[1], gs.Constant)
    np.testing.assert_array_equal(pad.inputs[1].values, [0, 0, 1, 1, 0, 0, 1, 1])
    assert isinstance(conv.inputs[1], gs.Constant)
    assert conv.inputs[1].shape == (4, 4, 3, 3) or list(conv.inputs[1].shape) == [4, 4, 3, 3]
    feeds = random_feeds(model)
    np.testing.assert_array_equal(_graph_outputs(graph, feeds)["y"], ort_run(model, feeds)["y"])


def test_light_squeezenet_constant_of_shape_weights_folded():
    graph, _ = load_graph(ONNX_DATA / "light" / "light_squeezenet.onnx")
    ops = [n.op for n in graph.nodes]
    assert "ConstantOfShape" not in ops
    convs = [n for n in graph.nodes if n.op == "Conv"]
    assert len(convs) == 26
    assert all(isinstance(c.inputs[1], gs.Constant) for c in convs)
    assert all(np.all(c.inputs[1].values == np.float32(0.02)) for c in convs)


def test_data_dependent_shape_is_user_error(tmp_path):
    nodes = [helper.make_node("NonZero", ["x"], ["nz"]), helper.make_node("Shape", ["nz"], ["y"])]
    model = make_model(nodes, [vi("x", [1, 4])], [vi("y", [2], onnx.TensorProto.INT64)])
    path = save(model, tmp_path / "nz.onnx")
    with pytest.raises(UserError, match="--input-shape"):
        load_graph(path)


def test_node_names_unique_and_deterministic(tmp_path):
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="dup"),
        helper.make_node("Relu", ["a"], ["b"], name="dup"),
        helper.make_node("Sigmoid", ["b"], ["y"]),
    ]
    path = save(make_model(nodes, [vi("x", [1, 2])], [vi("y", [1, 2])]), tmp_path / "n.onnx")
    names = [n.name for n in load_graph(path)[0].nodes]
    assert len(set(names)) == 3 and names[0] == "dup"
    assert names == [n.name for n in load_graph(path)[0].nodes]


def test_dynamic_shape_error_names_the_producer(tmp_path):
    nodes = [helper.make_node("NonZero", ["x"], ["nz"]), helper.make_node("Shape", ["nz"], ["y"])]
    model = make_model(nodes, [vi("x", [1, 4])], [vi("y", [2], onnx.TensorProto.INT64)])
    path = save(model, tmp_path / "nz.onnx")
    with pytest.raises(UserError) as info:
        load_graph(path)
    assert "(from )" not in str(info.value)
    assert "NonZero" in str(info.value)
