"""rewriter.ir.opset: models at opset 18 and newer come down to the working opset 17 through our own
adapters (exact, checked against onnxruntime on the original), or fail with one line naming the op."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from fd_util import assert_tight, cli, make_model, ort_run, random_feeds, save, vi, weight
from onnx import TensorProto, helper, numpy_helper

from rewriter.ir.load import load_graph, model_from_graph
from rewriter.ir.opset import OpsetError, convert_model, segment_at_opset


def _ints(name, values):
    return numpy_helper.from_array(np.asarray(values, np.int64), name)


def _loads_exactly(tmp_path, model, rtol=1e-6):
    """Load through the pipeline's loader (opset 17) and compare with onnxruntime on the original."""
    path = save(model, tmp_path / "m.onnx")
    graph, _ = load_graph(path)
    assert graph.opset == 17
    converted = model_from_graph(graph, 17)
    onnx.checker.check_model(converted, full_check=True)
    feeds = random_feeds(model, seed=3)
    want, got = ort_run(path, feeds), ort_run(converted, feeds)
    for name in want:
        assert_tight(got[name], want[name], rtol=rtol)
    return graph


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceMax", "ReduceL2", "ReduceSumSquare"])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce18_axes_input_becomes_attribute(tmp_path, op, keepdims):
    nodes = [helper.make_node(op, ["x", "axes"], ["y"], keepdims=keepdims, noop_with_empty_axes=0)]
    shape = [1, 3, 1, 1] if keepdims else [1, 3]
    model = make_model(
        nodes, [vi("x", [1, 3, 5, 7])], [vi("y", shape)], [_ints("axes", [-1, -2])], opset=18, ir_version=8
    )
    graph = _loads_exactly(tmp_path, model)
    (node,) = graph.nodes
    assert node.op == op and list(node.attrs["axes"]) == [-1, -2] and "noop_with_empty_axes" not in node.attrs


@pytest.mark.parametrize("noop,expect", [(0, "ReduceMean"), (1, None)])
def test_reduce18_without_axes(tmp_path, noop, expect):
    """No axes: reduce everything, or (noop_with_empty_axes=1) pass the input through unchanged."""
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["r"], keepdims=1, noop_with_empty_axes=noop),
        helper.make_node("Relu", ["r"], ["y"]),
    ]
    out = [1, 2, 3] if noop else [1, 1, 1]
    model = make_model(nodes, [vi("x", [1, 2, 3])], [vi("y", out)], opset=18)
    graph = _loads_exactly(tmp_path, model)
    assert [n.op for n in graph.nodes if n.op != "Identity"] == ([expect, "Relu"] if expect else ["Relu"])


def test_reduce18_with_computed_axes_is_one_line_error(tmp_path):
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("ReduceMean", ["x", "s"], ["y"], keepdims=1)]
    model = make_model(nodes, [vi("x", [1, 2, 3])], [vi("y", [1, 1, 1])], opset=18, check=False)
    with pytest.raises(OpsetError, match=r"ReduceMean-18 .* from opset 18 to 17: its axes input 's' is not a constant"):
        convert_model(model, 17)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad18_axes_are_expanded_to_every_axis(tmp_path, mode):
    nodes = [helper.make_node("Pad", ["x", "pads", "", "axes"], ["y"], mode=mode)]
    model = make_model(
        nodes, [vi("x", [1, 3, 1, 9])], [vi("y", [1, 3, 1, 14])], [_ints("pads", [2, 3]), _ints("axes", [-1])], opset=19
    )
    graph = _loads_exactly(tmp_path, model)
    (pad,) = graph.nodes
    assert pad.inputs[1].values.tolist() == [0, 0, 0, 2, 0, 0, 0, 3]


def test_pad19_wrap_has_no_opset17_form(tmp_path, capsys):
    nodes = [helper.make_node("Pad", ["x", "pads"], ["y"], mode="wrap", name="wrapped")]
    model = make_model(nodes, [vi("x", [1, 3, 4])], [vi("y", [1, 3, 6])], [_ints("pads", [0, 0, 1, 0, 0, 1])], opset=19)
    path = save(model, tmp_path / "wrap.onnx")
    rc, _, err = cli(capsys, "inspect", path, "-q")
    assert rc == 2
    assert err.count("\n") == 1 and "Pad-19 (node 'wrapped')" in err and "mode 'wrap'" in err


@pytest.mark.parametrize("size,parts,sizes", [(6, 3, [2, 2, 2]), (7, 3, [3, 3, 1])])
def test_split18_num_outputs_becomes_sizes(tmp_path, size, parts, sizes):
    outs = [f"y{i}" for i in range(parts)]
    nodes = [helper.make_node("Split", ["x"], outs, axis=1, num_outputs=parts)]
    model = make_model(nodes, [vi("x", [1, size, 4])], [vi(o, [1, s, 4]) for o, s in zip(outs, sizes)], opset=18)
    graph = _loads_exactly(tmp_path, model)
    (split,) = graph.nodes
    assert split.inputs[1].values.tolist() == sizes and "num_outputs" not in split.attrs


TANH_GELU = ["Mul", "Mul", "Mul", "Add", "Mul", "Tanh", "Add", "Mul", "Mul"]


@pytest.mark.parametrize("approximate,ops", [("none", ["Div", "Erf", "Add", "Mul", "Mul"]), ("tanh", TANH_GELU)])
def test_gelu20_decomposed(tmp_path, approximate, ops):
    nodes = [helper.make_node("Gelu", ["x"], ["y"], approximate=approximate)]
    model = make_model(nodes, [vi("x", [2, 3, 50])], [vi("y", [2, 3, 50])], opset=20, ir_version=9)
    graph = _loads_exactly(tmp_path, model, rtol=1e-5)
    assert [n.op for n in graph.nodes] == ops


def test_group_normalization21_decomposed(tmp_path):
    nodes = [helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=2, epsilon=1e-5)]
    model = make_model(
        nodes,
        [vi("x", [1, 6, 1, 20])],
        [vi("y", [1, 6, 1, 20])],
        [weight("s", (6,), scale=1.0), weight("b", (6,))],
        opset=21,
        ir_version=10,
    )
    graph = _loads_exactly(tmp_path, model, rtol=1e-5)
    assert "InstanceNormalization" in [n.op for n in graph.nodes]


def test_type_only_changes_are_kept(tmp_path):
    """Reshape-21, Transpose-21, Squeeze-21 only admit more types: float nodes stay as they are."""
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1]),
        helper.make_node("Reshape", ["t", "shape"], ["r"]),
        helper.make_node("Squeeze", ["r", "ax"], ["y"]),
    ]
    model = make_model(
        nodes,
        [vi("x", [1, 3, 4])],
        [vi("y", [4, 3])],
        [_ints("shape", [1, 4, 3]), _ints("ax", [0])],
        opset=21,
        ir_version=10,
    )
    graph = _loads_exactly(tmp_path, model)
    assert [n.op for n in graph.nodes] == ["Transpose", "Reshape", "Squeeze"]


def test_if_branches_are_converted(tmp_path):
    """Subgraphs come down with their graph: a ReduceMean-18 inside a branch gets its attribute form."""
    then = helper.make_graph(
        [helper.make_node("ReduceMean", ["x", "axes"], ["t"], keepdims=1)],
        "then",
        [],
        [vi("t", [1, 3, 1])],
        [_ints("axes", [2])],
    )
    other = helper.make_graph(
        [helper.make_node("ReduceMax", ["x", "axes2"], ["e"], keepdims=1)],
        "else",
        [],
        [vi("e", [1, 3, 1])],
        [_ints("axes2", [2])],
    )
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["c"]),
        helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other),
    ]
    model = make_model(
        nodes,
        [vi("x", [1, 3, 5])],
        [vi("y", [1, 3, 1])],
        [numpy_helper.from_array(np.zeros((), np.float32), "zero")],
        opset=18,
    )
    converted = convert_model(model, 17)
    onnx.checker.check_model(converted, full_check=True)
    branch = converted.graph.node[-1].attribute[0].g
    assert [a.name for a in branch.node[0].attribute] == ["keepdims", "axes"]
    feeds = random_feeds(model)
    assert_tight(ort_run(converted, feeds)["y"], ort_run(model, feeds)["y"])


def test_op_without_older_form_is_named(tmp_path):
    nodes = [helper.make_node("BitwiseAnd", ["a", "b"], ["y"], name="bits")]
    model = make_model(
        nodes,
        [vi("a", [4], TensorProto.INT32), vi("b", [4], TensorProto.INT32)],
        [vi("y", [4], TensorProto.INT32)],
        opset=18,
    )
    with pytest.raises(
        OpsetError,
        match=r"cannot convert BitwiseAnd-18 \(node 'bits'\) from opset 18 to 17: "
        r"it has no form at that opset",
    ):
        convert_model(model, 17)


def test_opset_newer_than_onnx_knows():
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [1])], [vi("y", [1])], check=False)
    model.opset_import[0].version = onnx.defs.onnx_opset_version() + 1
    with pytest.raises(OpsetError, match="newer than this onnx package knows"):
        convert_model(model, 17)


def test_segment_at_lower_opset_is_converted_or_named():
    """A target whose segment opset is older: type-only ops convert; an op whose form differs
    (Split-13's split input was an attribute at 11) is a one-line error naming the segment."""
    ok = make_model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [1, 2])], [vi("y", [1, 2])])
    assert segment_at_opset(ok, 13, "hailo_0").opset_import[0].version == 13
    split = make_model(
        [helper.make_node("Split", ["x", "s"], ["a", "b"], axis=1)],
        [vi("x", [1, 4])],
        [vi("a", [1, 1]), vi("b", [1, 3])],
        [_ints("s", [1, 3])],
    )
    with pytest.raises(OpsetError, match=r"segment hailo_0: cannot convert Split-13 .* to 11"):
        segment_at_opset(split, 11, "hailo_0")
