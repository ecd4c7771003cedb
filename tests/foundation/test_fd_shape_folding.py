"""Shape and Size of values with static shapes are folded while loading (inline_constants), with
opset 15's start and end as the operator defines them; the model then skips onnx-graphsurgeon's
folding and the export, inference and import that follow it. onnx-graphsurgeon folds a Shape to its
input's whole shape whatever its start and end: while such a Shape is left (a graph output), gs
folds no Shape. Plans match onnxruntime on the original model exactly."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs
import pytest
from fd_util import cli, make_model, ort_run, plan_run, random_feeds, save, vi
from onnx import TensorProto, helper

from rewriter.ir import load


def _sliced_shapes_model():
    """Every way start and end slice a rank-3 shape, each feeding a Reshape (or read as a value),
    Size feeding an Expand, and two Shapes with start/end read directly as graph outputs."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s_tail"], start=1),
        helper.make_node("Reshape", ["z", "s_tail"], ["r_tail"]),
        helper.make_node("Shape", ["x"], ["s_mid"], start=-2, end=-1),  # [3]
        helper.make_node("Shape", ["x"], ["s_clamp"], start=-10, end=10),  # whole, clamped
        helper.make_node("Reshape", ["x", "s_clamp"], ["r_clamp"]),
        helper.make_node("Concat", ["s_mid", "s_mid"], ["s_sq"], axis=0),  # [3, 3]
        helper.make_node("Reshape", ["w", "s_sq"], ["r_sq"]),
        helper.make_node("Size", ["x"], ["n"]),
        helper.make_node("Reshape", ["n", "one"], ["n1"]),
        helper.make_node("Expand", ["c", "n1"], ["e"]),
        helper.make_node("Relu", ["r_tail"], ["y_tail"]),
        helper.make_node("Relu", ["r_clamp"], ["y_clamp"]),
        helper.make_node("Relu", ["r_sq"], ["y_sq"]),
        helper.make_node("Relu", ["e"], ["y_e"]),
        helper.make_node("Shape", ["x"], ["out_mid"], start=1, end=2),  # graph outputs
        helper.make_node("Shape", ["x"], ["out_empty"], start=2, end=1),
    ]
    inits = [helper.make_tensor("one", TensorProto.INT64, [1], [1])]
    inputs = [vi("x", [2, 3, 4]), vi("z", [12]), vi("w", [9]), vi("c", [1])]
    outputs = [
        vi("y_tail", [3, 4]),
        vi("y_clamp", [2, 3, 4]),
        vi("y_sq", [3, 3]),
        vi("y_e", [24]),
        vi("out_mid", [1], TensorProto.INT64),
        vi("out_empty", [0], TensorProto.INT64),
    ]
    return make_model(nodes, inputs, outputs, inits)


def test_sliced_shapes_and_sizes_match_onnxruntime(tmp_path, capsys):
    model = _sliced_shapes_model()
    path = save(model, tmp_path / "shapes.onnx")
    out = tmp_path / "shapes.plan"
    rc, _, err = cli(capsys, path, "-o", out, "-q")
    assert rc == 0, err
    feeds = random_feeds(model)
    got, want = plan_run(out, feeds), ort_run(model, feeds)
    assert set(got) == set(want)
    for name, ref in want.items():
        assert np.asarray(got[name]).shape == ref.shape, name
        np.testing.assert_array_equal(got[name], ref, err_msg=name)


def test_sliced_shapes_fold_as_the_operator_defines_them(tmp_path):
    graph, _ = load.load_graph(save(_sliced_shapes_model(), tmp_path / "shapes.onnx"))
    consts = {t.name: t.values for t in graph.tensors().values() if isinstance(t, gs.Constant)}
    np.testing.assert_array_equal(consts["s_tail"], [3, 4])
    np.testing.assert_array_equal(consts["s_clamp"], [2, 3, 4])
    assert "Size" not in [n.op for n in graph.nodes]
    shapes = [n for n in graph.nodes if n.op == "Shape"]  # the graph outputs are left as they are
    assert sorted(n.outputs[0].name for n in shapes) == ["out_empty", "out_mid"]


def _group_norm_like_model():
    """torchaudio's GroupNorm(1): InstanceNorm of a reshaped input, reshaped back to Shape(x)."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Reshape", ["x", "flat"], ["xf"]),
        helper.make_node("InstanceNormalization", ["xf", "g1", "b1"], ["nf"], epsilon=1e-5),
        helper.make_node("Shape", ["x"], ["sx"]),
        helper.make_node("Reshape", ["nf", "sx"], ["n"]),
        helper.make_node("Mul", ["n", "gamma"], ["m"]),
        helper.make_node("Add", ["m", "beta"], ["y"]),
    ]
    inits = [
        helper.make_tensor("flat", TensorProto.INT64, [3], [1, 1, -1]),
        helper.make_tensor("g1", TensorProto.FLOAT, [1], [1.0]),
        helper.make_tensor("b1", TensorProto.FLOAT, [1], [0.0]),
        helper.make_tensor("gamma", TensorProto.FLOAT, [8, 1], rng.standard_normal(8).tolist()),
        helper.make_tensor("beta", TensorProto.FLOAT, [8, 1], rng.standard_normal(8).tolist()),
    ]
    return make_model(nodes, [vi("x", [1, 8, 50])], [vi("y", [1, 8, 50])], inits)


def test_a_static_shape_chain_skips_gs_folding_and_the_reimport(tmp_path, monkeypatch):
    imports = []
    real_import = load.graph_from_model
    monkeypatch.setattr(load, "graph_from_model", lambda m: imports.append(m) or real_import(m))
    monkeypatch.setattr(load, "fold_constants", lambda g: pytest.fail("gs folding ran"))
    model = _group_norm_like_model()
    graph, _ = load.load_graph(save(model, tmp_path / "gn.onnx"))
    assert len(imports) == 1
    reshape = [n for n in graph.nodes if n.op == "Reshape"][1]
    np.testing.assert_array_equal(reshape.inputs[1].values, [1, 8, 50])
    assert reshape.inputs[1].values.dtype == np.int64


def test_group_norm_like_plan_matches(tmp_path, capsys):
    model = _group_norm_like_model()
    out = tmp_path / "gn.plan"
    rc, _, err = cli(capsys, save(model, tmp_path / "gn.onnx"), "-o", out, "-q")
    assert rc == 0, err
    feeds = random_feeds(model)
    got, want = plan_run(out, feeds), ort_run(model, feeds)
    np.testing.assert_allclose(got["y"], want["y"], rtol=1e-5, atol=1e-6 * float(np.abs(want["y"]).max()))
