"""pooling.rw: mean and max over H and W as global pools on Hailo, with and without keepdims, in a
channel-attention block that reads its feature map three times (CBAM as dynamo exports it)."""

import numpy as np
import pytest
from onnx import helper
from util import assert_hailo_clean, ints, make_model, rewrite_and_run, vi, weight


@pytest.mark.parametrize("reduce, pool", [("ReduceMean", "GlobalAveragePool"), ("ReduceMax", "GlobalMaxPool")])
@pytest.mark.parametrize("axes", [[2, 3], [-2, -1], [3, 2]])
@pytest.mark.parametrize("keepdims", [1, 0])
def test_reduce_over_hw_is_a_global_pool(reduce, pool, axes, keepdims, tmp_path, target):
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node(reduce, ["r"], ["g"], axes=axes, keepdims=keepdims),
    ]
    inits = [weight("w", [8, 3, 3, 3])]
    if keepdims:  # a 1x1 conv on the pooled map
        nodes.append(helper.make_node("Conv", ["g", "w2"], ["y"]))
        inits.append(weight("w2", [5, 8, 1, 1]))
    else:  # a Linear head on [N, C]
        nodes.append(helper.make_node("Gemm", ["g", "fc", "fb"], ["y"], transB=1))
        inits += [weight("fc", [5, 8]), weight("fb", [5])]
    res = rewrite_and_run(make_model(nodes, [vi("x", [1, 3, 7, 9])], [vi("y", None)], inits), tmp_path, target=target)
    assert_hailo_clean(res)
    assert len(res.steps_on("hailo")) == 1 and res.ops("hailo")[pool] == 1 and res.ops()[reduce] == 0
    assert set(res.ops("host")) <= {"Squeeze"}  # the head's [N, 5, 1, 1] -> [N, 5] at the edge


def test_reduce_over_other_axes_is_not_pooled(tmp_path, target):
    """Max over W only (time pooling of a [N, C, 1, T] map) is not a global pool."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("ReduceMax", ["c"], ["y"], axes=[3], keepdims=1),
    ]
    res = rewrite_and_run(
        make_model(nodes, [vi("x", [1, 3, 4, 6])], [vi("y", None)], [weight("w", [4, 3, 3, 3])]), tmp_path
    )
    assert res.ops()["GlobalMaxPool"] == 0 and res.ops("host")["ReduceMax"] == 1


def test_channel_attention_with_both_pools(tmp_path, target):
    """sigmoid(mlp(mean) + mlp(max)) * y as dynamo writes it (opset 18), y read by both pools and the
    gate, the gate also a graph output: one Hailo segment."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])]
    for pool, reduce in (("avg", "ReduceMean"), ("max", "ReduceMax")):
        nodes += [
            helper.make_node(reduce, ["y", "ax"], [f"{pool}_g"], keepdims=1),  # opset 18: axes as an input
            helper.make_node("Conv", [f"{pool}_g", "f1"], [f"{pool}_h"]),
            helper.make_node("Relu", [f"{pool}_h"], [f"{pool}_r"]),
            helper.make_node("Conv", [f"{pool}_r", "f2"], [f"{pool}_o"]),
        ]
    nodes += [
        helper.make_node("Add", ["avg_o", "max_o"], ["s"]),
        helper.make_node("Sigmoid", ["s"], ["gate"]),
        helper.make_node("Mul", ["y", "gate"], ["z"]),
    ]
    inits = [weight("w", [16, 3, 3, 3]), weight("f1", [4, 16, 1, 1]), weight("f2", [16, 4, 1, 1]), ints("ax", [-2, -1])]
    model = make_model(nodes, [vi("x", [1, 3, 8, 8])], [vi("z", None), vi("gate", None)], inits, opset=18)
    res = rewrite_and_run(model, tmp_path, target=target)
    assert_hailo_clean(res)
    assert [s["device"] for s in res.doc["steps"]] == ["hailo"]
    assert res.ops("hailo")["GlobalMaxPool"] == 1 and res.ops("hailo")["GlobalAveragePool"] == 1
    np.testing.assert_array_equal(res.outputs["gate"].shape, (1, 16, 1, 1))
