"""rewriter.ir.load.infer_shapes gives what onnx's own shape inference gives (data propagation on)
while never copying the weights: the dims-only route (consume=True, no bodies) and the emptying
route (bodies, consume=False) against onnx on the whole model, weights included."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from rewriter.errors import UserError
from rewriter.ir.load import infer_shapes


def _conv_model(seed: int, dtype=np.float32) -> onnx.ModelProto:
    """Conv (large weight) -> Reshape by a computed shape (data propagation) -> Mul by a small
    constant -> two outputs (one of them read again) declared without shapes."""
    rng = np.random.default_rng(seed)
    c_in, c_out, width = int(rng.integers(2, 9)), int(rng.integers(16, 40)), int(rng.integers(9, 31))
    kernel = int(rng.integers(1, 4)) * 2 + 1
    w = numpy_helper.from_array(rng.standard_normal((c_out, c_in, kernel)).astype(dtype), "w")
    s = numpy_helper.from_array(rng.standard_normal((1, c_out, 1)).astype(dtype), "s")
    flat = numpy_helper.from_array(np.array([-1], np.int64), "flat")
    elem = TensorProto.FLOAT if dtype == np.float32 else TensorProto.FLOAT16
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["y"], pads=[kernel // 2] * 2, dilations=[1]),
        helper.make_node("Shape", ["y"], ["ys"]),
        helper.make_node("Slice", ["ys", "zero", "two"], ["head"]),
        helper.make_node("Concat", ["head", "flat"], ["target"], axis=0),
        helper.make_node("Reshape", ["y", "target"], ["r"]),
        helper.make_node("Mul", ["r", "s"], ["out1"]),
        helper.make_node("Relu", ["out1"], ["out2"]),
    ]
    consts = [
        w,
        s,
        flat,
        numpy_helper.from_array(np.array([0], np.int64), "zero"),
        numpy_helper.from_array(np.array([2], np.int64), "two"),
    ]
    outputs = [helper.make_tensor_value_info(n, elem, None) for n in ("out1", "out2")]  # shapes left to inference
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", elem, [1, c_in, width])], outputs, consts)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _if_model() -> onnx.ModelProto:
    """A Relu inside an If body: inference writes the body's value_info into the body."""

    def branch(op, out):
        value = helper.make_tensor_value_info(out, TensorProto.FLOAT, None)
        return helper.make_graph([helper.make_node(op, ["x"], [out])], op, [], [value])

    body, other = branch("Relu", "b"), branch("Neg", "c")
    w = numpy_helper.from_array(np.arange(2048, dtype=np.float32).reshape(1, 2048), "w")
    nodes = [
        helper.make_node("Add", ["x0", "w"], ["x"]),
        helper.make_node("If", ["cond"], ["y"], then_branch=body, else_branch=other),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x0", TensorProto.FLOAT, [1, 2048]),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _onnx_reference(model: onnx.ModelProto) -> onnx.ModelProto:
    return onnx.shape_inference.infer_shapes(model, data_prop=True)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_dims_only_route_matches_onnx_and_keeps_every_weight(seed, dtype):
    model = _conv_model(seed, dtype)
    want = _onnx_reference(model)
    weights = [t.SerializeToString() for t in model.graph.initializer]
    work = onnx.ModelProto()
    work.CopyFrom(model)
    got = infer_shapes(work, consume=True)
    assert got is work  # consumed: shapes moved into the caller's model, nothing copied
    assert got.SerializeToString() == want.SerializeToString()
    assert [t.SerializeToString() for t in got.graph.initializer] == weights
    by_name = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in got.graph.value_info}
    assert len(by_name["r"]) == 3  # the Reshape's shape came from data propagation


def test_bodies_take_the_emptying_route_and_match_onnx():
    model = _if_model()
    want = _onnx_reference(model)
    got = infer_shapes(onnx.load_from_string(model.SerializeToString()), consume=True)
    assert got.SerializeToString() == want.SerializeToString()


@pytest.mark.parametrize("make", [lambda: _conv_model(3), _if_model], ids=["plain", "bodies"])
def test_not_consumed_leaves_the_callers_model_as_it_was(make):
    model = make()
    before = model.SerializeToString()
    got = infer_shapes(model, consume=False)
    assert model.SerializeToString() == before and got is not model
    assert got.SerializeToString() == _onnx_reference(make()).SerializeToString()


@pytest.mark.parametrize("consume", [True, False])
def test_a_strict_failure_is_one_user_error_and_the_model_is_untouched(consume):
    model = _conv_model(1)
    model.graph.node[5].input[1] = "w"  # Mul of [1,C,W'] by the conv weight [C,Cin,k]: no broadcast
    before = model.SerializeToString()
    with pytest.raises(UserError, match="shape inference failed"):
        infer_shapes(model, strict=True, consume=consume)
    assert model.SerializeToString() == before
