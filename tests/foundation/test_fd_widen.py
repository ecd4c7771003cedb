"""rewriter/ir/widen.py: a float16 model computed in float32 behind its own float16 inputs and
outputs. The widened model must be the very float32 function (compared with the same graph written
in float32 by hand, bit for bit), keep the model's interface, and refuse what it cannot widen."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from rewriter.ir.widen import NARROW_FLOATS, NotWidened, TargetWidening, float_types_in, widened

F16, F32 = TensorProto.FLOAT16, TensorProto.FLOAT


def _np(code):
    return helper.tensor_dtype_to_np_dtype(code)


def conv_block(ft: int, with_io_passthrough: bool = False) -> onnx.ModelProto:
    """Conv (padding, dilation, odd width) -> BatchNorm -> Relu -> residual Add (a value read
    twice), a Constant, a float32 second input cast into the float type, an output `h` that later
    nodes read too, and (optionally) a graph input that is also a graph output. Weights are float16
    values whatever `ft` is, so the float32 and float16 models hold the same numbers."""
    rng = np.random.default_rng(0)

    def w(name, shape, lo=None, hi=None):
        a = rng.uniform(lo, hi, shape) if lo is not None else rng.standard_normal(shape) * 0.5
        return numpy_helper.from_array(a.astype(np.float16).astype(_np(ft)), name)

    inits = [
        w("w", [4, 4, 1, 3]),
        w("b", [4]),
        w("s", [4], 0.5, 1.5),
        w("bb", [4]),
        w("m", [4]),
        w("v", [4], 0.5, 2.0),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[0, 2, 0, 2], dilations=[1, 2]),
        helper.make_node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["n"]),
        helper.make_node("Relu", ["n"], ["h"]),
        helper.make_node("Add", ["h", "x"], ["r"]),
        helper.make_node("Mul", ["r", "r"], ["q"]),
        helper.make_node(
            "Constant", [], ["k"], value=numpy_helper.from_array(np.array([0.25], np.float16).astype(_np(ft)))
        ),
        helper.make_node("Cast", ["g"], ["gc"], to=ft),
        helper.make_node("Mul", ["q", "k"], ["qk"]),
        helper.make_node("Add", ["qk", "gc"], ["y"]),
    ]
    outputs = [helper.make_tensor_value_info("y", ft, None), helper.make_tensor_value_info("h", ft, None)]
    if with_io_passthrough:
        outputs.append(helper.make_tensor_value_info("x", ft, [1, 4, 1, 11]))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", ft, [1, 4, 1, 11]), helper.make_tensor_value_info("g", F32, [1, 4, 1, 11])],
        outputs,
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def run(model: onnx.ModelProto, feeds: dict) -> dict:
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, feeds)))


def feeds(seed=1) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "x": rng.standard_normal([1, 4, 1, 11]).astype(np.float16),
        "g": rng.standard_normal([1, 4, 1, 11]).astype(np.float32),
    }


@pytest.mark.parametrize("passthrough", [False, True], ids=["plain", "input-is-output"])
def test_the_float32_function_behind_the_float16_interface(passthrough):
    half = conv_block(F16, passthrough)
    half.graph.value_info.append(helper.make_tensor_value_info("h", F16, [1, 4, 1, 11]))  # some exporters do
    wide = widened(half, NARROW_FLOATS, F32, keep_interface=True)
    onnx.checker.check_model(wide, full_check=True)
    declared = [v.name for v in wide.graph.value_info]
    assert len(declared) == len(set(declared)) and "h_float32" in declared
    types = lambda vs: [(v.name, v.type.tensor_type.elem_type) for v in vs]  # noqa: E731
    assert types(wide.graph.input) == types(half.graph.input)  # the caller's contract
    assert types(wide.graph.output) == types(half.graph.output)
    inferred = onnx.shape_inference.infer_shapes(wide, strict_mode=True)
    inner = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    assert F16 not in inner.values(), inner  # nothing inside computes in float16
    assert not float_types_in(wide, NARROW_FLOATS, nodes=True) - {F16}  # the edges only
    casts = [(n.input[0], n.output[0]) for n in wide.graph.node if n.op_type == "Cast"]
    assert casts == [("x", "x_float32"), ("g", "gc"), ("y_float32", "y"), ("h_float32", "h")]  # x out: as is
    f = feeds()
    got = run(wide, f)
    # the same graph written in float32 by hand (float16-valued weights), its outputs rounded once
    exact = run(conv_block(F32, passthrough), {"x": f["x"].astype(np.float32), "g": f["g"]})
    for name in ("y", "h"):
        assert got[name].dtype == np.float16
        np.testing.assert_array_equal(got[name], exact[name].astype(np.float16))
    if passthrough:
        np.testing.assert_array_equal(got["x"], f["x"])
    # and the float16 original is that function to float16's precision, no closer
    half_out = run(half, f)
    np.testing.assert_allclose(half_out["y"], got["y"], rtol=2e-2, atol=2e-2 * float(np.abs(got["y"]).max()))
    assert not np.array_equal(half_out["y"], got["y"])  # the original's own float16 rounding shows


def test_the_original_is_left_as_it_was():
    half = conv_block(F16)
    before = half.SerializeToString()
    widened(half, NARROW_FLOATS, F32, keep_interface=True)
    assert half.SerializeToString() == before


def test_fresh_names_do_not_clash_with_the_models():
    half = conv_block(F16)
    half.graph.node[0].output[0] = "x_float32"  # the name a widened input would take
    half.graph.node[1].input[0] = "x_float32"
    wide = widened(half, NARROW_FLOATS, F32, keep_interface=True)
    onnx.checker.check_model(wide, full_check=True)
    first = wide.graph.node[0]
    assert first.op_type == "Cast" and first.input[0] == "x" and first.output[0] == "x_float32_1"


def test_if_bodies_and_constant_outputs():
    """A branch computes in float32 too; an output that is a float16 initializer is given out by a Cast."""
    body = lambda name, op: helper.make_graph(  # noqa: E731
        [helper.make_node(op, ["x"], ["o"])], name, [], [helper.make_tensor_value_info("o", F16, [3])]
    )
    graph = helper.make_graph(
        [helper.make_node("If", ["b"], ["y"], then_branch=body("t", "Sigmoid"), else_branch=body("e", "Neg"))],
        "g",
        [helper.make_tensor_value_info("x", F16, [3]), helper.make_tensor_value_info("b", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", F16, [3]), helper.make_tensor_value_info("c", F16, [2])],
        [numpy_helper.from_array(np.array([1.5, -2.25], np.float16), "c")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    wide = widened(model, NARROW_FLOATS, F32, keep_interface=True)
    onnx.checker.check_model(wide, full_check=True)
    x = np.array([0.1, 2.0, -3.0], np.float16)
    for b in (True, False):
        got = run(wide, {"x": x, "b": np.array(b)})
        ref = 1 / (1 + np.exp(-x.astype(np.float32))) if b else -x.astype(np.float32)
        np.testing.assert_array_equal(got["y"], ref.astype(np.float16))
        np.testing.assert_array_equal(got["c"], np.array([1.5, -2.25], np.float16))
    branch = wide.graph.node[1].attribute[0].g
    assert branch.output[0].type.tensor_type.elem_type == F32


def test_bfloat16_values_carry_over_exactly():
    values = np.array([1.0078125, -3.5, 65280.0, 1e-38], ml_dtypes.bfloat16)
    t = numpy_helper.from_array(values, "w")
    assert t.data_type == TensorProto.BFLOAT16
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.BFLOAT16, [4])],
        [helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [4])],
        [t],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    wide = widened(model, NARROW_FLOATS, F32, keep_interface=True)
    (w,) = wide.graph.initializer
    assert w.data_type == F32
    np.testing.assert_array_equal(numpy_helper.to_array(w), values.astype(np.float32))
    assert [(n.op_type, n.attribute[0].i) for n in wide.graph.node if n.op_type == "Cast"] == [
        ("Cast", F32),
        ("Cast", TensorProto.BFLOAT16),
    ]  # onnxruntime takes no bfloat16 from numpy: the structure only


def test_refused_with_the_reason():
    half = conv_block(F16)
    half.graph.node[2].domain = "my.domain"  # a kernel whose float types are unknown
    half.opset_import.append(helper.make_opsetid("my.domain", 1))
    with pytest.raises(NotWidened, match="my.domain.Relu"):
        widened(half, NARROW_FLOATS, F32, keep_interface=True)
    widening = TargetWidening(["float32"])
    assert widening(half) is half
    assert widening.record == {"kept": ["float16"], "reason": "my.domain.Relu '': its kernels' float types are unknown"}


def test_the_target_decides():
    half, single = conv_block(F16), conv_block(F32)
    widening = TargetWidening(["float32"])
    assert widening(single) is single and widening.record is None  # nothing to do
    out = widening(half)
    assert out is not half and widening.record == {"widened": ["float16"], "to": "float32"}
    holds_half = TargetWidening(["float32", "float16"])
    assert holds_half(half) is half and holds_half.record is None  # its segments take float16 as it is
