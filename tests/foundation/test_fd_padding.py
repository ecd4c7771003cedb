"""auto_pad becomes explicit pads at load: same output, exactly, for every mode, stride, dilation,
kernel and odd size (the tiler and the rules then see one form)."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs
import pytest
from fd_util import make_model, ort_run, vi, weight
from onnx import helper

from rewriter.ir.load import model_from_graph
from rewriter.ir.padding import make_pads_explicit

MODES = ["SAME_UPPER", "SAME_LOWER", "VALID"]


def model_for(op, mode, size, kernel, stride, dilation, ceil_mode=0):
    shape = [1, 3, *size]
    attrs = {"auto_pad": mode, "kernel_shape": kernel, "strides": stride}
    inputs, inits = ["x"], []
    if op == "Conv":
        inits = [weight("w", (4, 3, *kernel))]
        inputs.append("w")
        attrs["dilations"] = dilation
    elif op == "MaxPool":
        attrs["dilations"] = dilation
        attrs["ceil_mode"] = ceil_mode
    else:
        attrs["ceil_mode"] = ceil_mode
    node = helper.make_node(op, inputs, ["y"], **attrs)
    return make_model([node], [vi("x", shape)], [vi("y", None)], inits, check=False)


CASES = [
    (op, mode, size, kernel, stride, dilation, ceil)
    for op in ("Conv", "MaxPool", "AveragePool")
    for mode in MODES
    for size, kernel in (([7, 10], [3, 2]), ([1, 9], [1, 4]), ([6, 5], [5, 5]))
    for stride, dilation in (([1, 1], [1, 1]), ([2, 3], [1, 1]), ([1, 2], [2, 1]))
    for ceil in ((0, 1) if op != "Conv" else (0,))
    if not (mode != "VALID" and dilation != [1, 1])
]  # onnxruntime refuses dilation with SAME


@pytest.mark.parametrize("op, mode, size, kernel, stride, dilation, ceil", CASES)
def test_explicit_pads_give_the_same_output(op, mode, size, kernel, stride, dilation, ceil):
    import onnx

    model = onnx.shape_inference.infer_shapes(model_for(op, mode, size, kernel, stride, dilation, ceil))
    feeds = {"x": np.random.default_rng(0).standard_normal([1, 3, *size]).astype(np.float32)}
    try:
        want = ort_run(model, feeds)
    except Exception:  # noqa: BLE001 - a kernel larger than the input: onnxruntime refuses it too
        pytest.skip("onnxruntime refuses the original")
    graph = gs.import_onnx(model)
    assert make_pads_explicit(graph) == [graph.nodes[0].name]
    assert "auto_pad" not in graph.nodes[0].attrs
    got = ort_run(model_from_graph(graph), feeds)
    np.testing.assert_array_equal(got["y"], want["y"])


def test_dynamic_width_keeps_auto_pad():
    model = model_for("Conv", "SAME_UPPER", [7, "W"], [3, 3], [1, 1], [1, 1])
    graph = gs.import_onnx(model)
    assert make_pads_explicit(graph) == [] and graph.nodes[0].attrs["auto_pad"] == "SAME_UPPER"
