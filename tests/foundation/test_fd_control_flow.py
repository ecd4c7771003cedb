"""Loading models as exporters write them: `-1` dims, If nodes (constant conditions inlined, shapes
through branches that agree, `--freeze` for conditions on an input), random ops never folded."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from fd_util import cli, make_model, ort_run, plan_run, read_plan, save, vi, weight
from onnx import TensorProto, helper, numpy_helper

from rewriter.errors import UserError
from rewriter.ir.load import load_graph


def _scalar(name, value, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(value, dtype), name)


# ---- dims an exporter marks as unknown with -1 -----------------------------------------------------


def _paddle_style(tmp_path):
    """Paddle2ONNX declares unknown dims as dim_value -1, on inputs and outputs."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c"], ["y"]),
    ]
    model = make_model(
        nodes, [vi("x", [-1, 3, -1, -1])], [vi("y", [-1, 4, 1, 1])], [weight("w", (4, 3, 3, 3))], check=False
    )
    return save(model, tmp_path / "paddle.onnx")


def test_minus_one_dims_are_dynamic_and_pinnable(tmp_path):
    path = _paddle_style(tmp_path)
    graph, _ = load_graph(path, {"x": [1, 3, 12, 20]})
    assert graph.inputs[0].shape == [1, 3, 12, 20] and graph.outputs[0].shape == [1, 4, 1, 1]
    with pytest.raises(UserError, match=r"input 'x' dim 2 .* --input-shape x=1,3,N,N"):
        load_graph(path)


def test_minus_one_model_rewrites_and_checks(tmp_path, capsys):
    path = _paddle_style(tmp_path)
    out = tmp_path / "p.plan"
    rc, _, err = cli(capsys, path, "-o", out, "--input-shape", "x=1,3,12,20", "-q")
    assert rc == 0, err
    rc, stdout, _ = cli(capsys, "check", out, "--against", path)
    assert rc == 0 and " ok" in stdout


# ---- If -----------------------------------------------------------------------------------------


def _sr_model():
    """silero-vad's shape: `If(sr == 16000)` choosing between branches whose outputs differ in shape
    (here: a 4-wide and a 2-wide pooling of the same conv)."""
    conv = helper.make_node("Conv", ["x", "w"], ["c"], pads=[0, 1, 0, 1])  # big enough for a Hailo segment
    then = helper.make_graph(
        [helper.make_node("AveragePool", ["c"], ["t"], kernel_shape=[1, 2], strides=[1, 2])],
        "sixteen_k",
        [],
        [vi("t", None)],
    )
    other = helper.make_graph(
        [helper.make_node("AveragePool", ["c"], ["e"], kernel_shape=[1, 4], strides=[1, 4])],
        "eight_k",
        [],
        [vi("e", None)],
    )
    nodes = [
        conv,
        helper.make_node("Equal", ["sr", "k16"], ["is16"]),
        helper.make_node("If", ["is16"], ["p"], then_branch=then, else_branch=other, name="by_rate"),
        helper.make_node("Relu", ["p"], ["y"]),
    ]
    return make_model(
        nodes,
        [vi("x", [1, 16, 1, 512]), vi("sr", [], TensorProto.INT64)],
        [vi("y", None)],
        [weight("w", (32, 16, 1, 3)), _scalar("k16", 16000, np.int64)],
        check=False,
    )


def test_if_on_an_input_asks_for_freeze(tmp_path, capsys):
    path = save(_sr_model(), tmp_path / "sr.onnx")
    rc, _, err = cli(capsys, "inspect", path, "-q")
    assert rc == 2 and err.count("\n") == 1
    assert "its condition depends on input 'sr': freeze it with --freeze sr=VALUE" in err


@pytest.mark.parametrize("rate,width", [(16000, 256), (8000, 128)])
def test_freeze_inlines_the_chosen_branch(tmp_path, capsys, rate, width):
    path = save(_sr_model(), tmp_path / "sr.onnx")
    out = tmp_path / "sr.plan"
    rc, _, err = cli(capsys, path, "-o", out, "--freeze", f"sr={rate}", "-q")
    assert rc == 0, err
    doc = read_plan(out)
    assert [i["name"] for i in doc["inputs"]] == ["x"]
    assert doc["frozen"] == [{"name": "sr", "dtype": "int64", "shape": [], "value": [rate]}]
    assert doc["outputs"][0]["shape"] == [1, 32, 1, width]
    assert "If" not in {row["op"] for row in doc["placement"]}
    assert {s["device"] for s in doc["steps"]} == {"hailo"}  # the whole model is one Hailo segment
    x = np.random.default_rng(0).standard_normal((1, 16, 1, 512)).astype(np.float32)
    want = ort_run(path, {"x": x, "sr": np.asarray(rate, np.int64)})["y"]
    np.testing.assert_allclose(plan_run(out, {"x": x})["y"], want, rtol=1e-5, atol=1e-6)
    rc, stdout, _ = cli(capsys, "check", out, "--against", path)  # check feeds the frozen sr to the original
    assert rc == 0 and " ok" in stdout


@pytest.mark.parametrize(
    "spec,message",
    [
        ("rate=16000", "--freeze names no model input: rate (inputs: x, sr)"),
        ("sr=16000,8000", "--freeze sr: the input has shape [] (1 values), got 2"),
        ("sr=fast", "--freeze sr: 'fast' is not a int64 value"),
        ("sr", "bad --freeze 'sr'"),
    ],
)
def test_freeze_mistakes_are_one_line(tmp_path, capsys, spec, message):
    path = save(_sr_model(), tmp_path / "sr.onnx")
    rc, _, err = cli(capsys, "inspect", path, "--freeze", spec, "-q")
    assert rc == 2 and message in err and err.count("\n") == 1


def _shape_condition_model():
    """TorchScript's squeeze-if-size-1 (silero 16k_op15): If(Shape(x)[2] == 1) with a nested If in
    the taken branch on the same kind of condition; both conditions fold once x's shape is pinned."""
    inner_then = helper.make_graph([helper.make_node("Relu", ["x"], ["it"])], "inner_then", [], [vi("it", None)])
    inner_else = helper.make_graph([helper.make_node("Neg", ["x"], ["ie"])], "inner_else", [], [vi("ie", None)])
    then = helper.make_graph(
        [
            helper.make_node("Shape", ["x"], ["s2"]),
            helper.make_node("Gather", ["s2", "i3"], ["w"]),
            helper.make_node("Equal", ["w", "n16"], ["wide"]),
            helper.make_node("If", ["wide"], ["t"], then_branch=inner_then, else_branch=inner_else),
        ],
        "then",
        [],
        [vi("t", None)],
    )
    other = helper.make_graph([helper.make_node("Sigmoid", ["x"], ["e"])], "else", [], [vi("e", None)])
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i2"], ["h"]),
        helper.make_node("Equal", ["h", "one"], ["flat"]),
        helper.make_node("If", ["flat"], ["y"], then_branch=then, else_branch=other),
    ]
    return make_model(
        nodes,
        [vi("x", [1, 2, "H", 16])],
        [vi("y", None)],
        [
            _scalar("i2", 2, np.int64),
            _scalar("i3", 3, np.int64),
            _scalar("one", 1, np.int64),
            _scalar("n16", 16, np.int64),
        ],
        check=False,
    )


def test_shape_conditions_fold_and_nested_ifs_inline(tmp_path):
    path = save(_shape_condition_model(), tmp_path / "cond.onnx")
    graph, _ = load_graph(path, {"x": [1, 2, 1, 16]})
    assert [n.op for n in graph.nodes if n.op != "Identity"] == ["Relu"]  # then -> inner then
    graph, _ = load_graph(path, {"x": [1, 2, 3, 16]})
    assert [n.op for n in graph.nodes if n.op != "Identity"] == ["Sigmoid"]


def _data_condition_model():
    """An If on the data itself: stays an If, on the host, and its branches agree on the shape."""
    then = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [], [vi("t", None)])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [vi("e", None)])
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["positive"]),
        helper.make_node("If", ["positive"], ["b"], then_branch=then, else_branch=other, name="choose"),
        helper.make_node("Conv", ["b", "w"], ["y"], pads=[1, 1, 1, 1]),
    ]
    return make_model(
        nodes,
        [vi("x", ["N", 8, 16, 16])],
        [vi("y", None)],
        [weight("w", (8, 8, 3, 3)), _scalar("zero", 0.0)],
        check=False,
    )


def test_shapes_flow_through_if_branches_that_agree(tmp_path, capsys):
    path = save(_data_condition_model(), tmp_path / "data_if.onnx")
    graph, _ = load_graph(path)
    node = next(n for n in graph.nodes if n.op == "If")
    assert node.outputs[0].shape == [1, 8, 16, 16] and graph.outputs[0].shape == [1, 8, 16, 16]
    out = tmp_path / "data_if.plan"
    rc, _, err = cli(capsys, path, "-o", out, "-q")
    assert rc == 0, err
    placed = {row["node"]: row for row in read_plan(out)["placement"]}
    assert placed["choose"]["device"] == "host"
    for sign in (1.0, -1.0):
        x = (sign * np.abs(np.random.default_rng(1).standard_normal((1, 8, 16, 16)))).astype(np.float32)
        np.testing.assert_allclose(plan_run(out, {"x": x})["y"], ort_run(path, {"x": x})["y"], rtol=1e-5, atol=1e-5)


# ---- random ops ---------------------------------------------------------------------------------


def test_random_ops_are_never_folded(tmp_path, capsys):
    """speechbrain's statistics pooling adds RandomNormalLike(ConstantOfShape(shape)) noise: every
    input of the random op is constant, yet it must stay a random op, on the host, with its reason."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Shape", ["c"], ["s"]),
        helper.make_node("ConstantOfShape", ["s"], ["zeros"]),
        helper.make_node("RandomNormalLike", ["zeros"], ["noise"], scale=1e-3, name="noise"),
        helper.make_node("Add", ["c", "noise"], ["y"]),
    ]
    model = make_model(nodes, [vi("x", [1, 8, 16, 16])], [vi("y", [1, 8, 16, 16])], [weight("w", (8, 8, 3, 3))])
    path = save(model, tmp_path / "noisy.onnx")
    graph, _ = load_graph(path)
    assert "RandomNormalLike" in [n.op for n in graph.nodes]
    out = tmp_path / "noisy.plan"
    rc, _, err = cli(capsys, path, "-o", out, "-q")
    assert rc == 0, err
    placed = {row["node"]: row for row in read_plan(out)["placement"]}
    assert placed["noise"]["device"] == "host" and placed["noise"]["reason"].startswith("random op")
    x = np.random.default_rng(2).standard_normal((1, 8, 16, 16)).astype(np.float32)
    from runtime import Plan

    plan = Plan.load(out, backend="onnxruntime")
    a, b = plan.run({"x": x})["y"], plan.run({"x": x})["y"]
    assert not np.array_equal(a, b)  # still random: a new draw on every run
    np.testing.assert_allclose(a, b, atol=1e-2)


def test_inline_keeps_graph_output_names():
    """A constant If that writes a graph output directly from an outer tensor: the output keeps its name."""
    from rewriter.ir.control_flow import inline_constant_ifs

    x = gs.Variable("x", np.float32, [2])
    y = gs.Variable("y", np.float32, [2])
    then = gs.Graph(nodes=[], inputs=[], outputs=[x], name="then")
    other = gs.Graph(nodes=[], inputs=[], outputs=[x], name="else")
    node = gs.Node(
        "If",
        inputs=[gs.Constant("c", np.asarray(True))],
        outputs=[y],
        attrs={"then_branch": then, "else_branch": other},
    )
    graph = gs.Graph(nodes=[node], inputs=[x], outputs=[y], opset=17)
    assert inline_constant_ifs(graph) == 1
    model = gs.export_onnx(graph.cleanup())
    assert [o.name for o in model.graph.output] == ["y"] and [n.op_type for n in model.graph.node] == ["Identity"]
    onnx.checker.check_model(model)
