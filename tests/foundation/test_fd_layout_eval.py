"""The numpy evaluation of layout-only models that views.py uses instead of onnxruntime agrees with
onnxruntime exactly, on random chains of Transpose / Unsqueeze / Squeeze / Reshape / Flatten /
Identity with negative axes, default attributes, 0 and -1 in shapes, at opsets with axes given as
attributes (11) and as inputs (13+)."""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from rewriter.ir.layout_eval import run_layout_model


def _random_chain(rng, opset: int):
    shape = [int(d) for d in rng.integers(1, 4, size=int(rng.integers(1, 5)))]
    x = "x"
    nodes, inits = [], []
    cur = list(shape)
    for k in range(int(rng.integers(1, 6))):
        out = f"t{k}"
        op = str(rng.choice(["Transpose", "Unsqueeze", "Squeeze", "Reshape", "Flatten", "Identity"]))
        if op == "Transpose":
            if rng.random() < 0.3:
                nodes.append(helper.make_node("Transpose", [x], [out]))
                cur = cur[::-1]
            else:
                perm = [int(p) for p in rng.permutation(len(cur))]
                nodes.append(helper.make_node("Transpose", [x], [out], perm=perm))
                cur = [cur[p] for p in perm]
        elif op == "Unsqueeze":
            n = int(rng.integers(1, 3))
            rank = len(cur) + n
            axes = [int(a) for a in rng.choice(rank, size=n, replace=False)]
            axes = [a - rank if rng.random() < 0.5 else a for a in axes]
            if opset >= 13:
                inits.append(numpy_helper.from_array(np.array(axes, np.int64), f"a{k}"))
                nodes.append(helper.make_node("Unsqueeze", [x, f"a{k}"], [out]))
            else:
                nodes.append(helper.make_node("Unsqueeze", [x], [out], axes=axes))
            for a in sorted(a % rank for a in axes):
                cur.insert(a, 1)
        elif op == "Squeeze":
            ones = [i for i, d in enumerate(cur) if d == 1]
            if not ones or len(ones) == len(cur):  # keep a rank >= 1
                continue
            if rng.random() < 0.3:
                nodes.append(helper.make_node("Squeeze", [x], [out]))
                cur = [d for d in cur if d != 1]
            else:
                pick = [int(a) for a in rng.choice(ones, size=int(rng.integers(1, len(ones) + 1)), replace=False)]
                axes = [a - len(cur) if rng.random() < 0.5 else a for a in pick]
                if opset >= 13:
                    inits.append(numpy_helper.from_array(np.array(axes, np.int64), f"a{k}"))
                    nodes.append(helper.make_node("Squeeze", [x, f"a{k}"], [out]))
                else:
                    nodes.append(helper.make_node("Squeeze", [x], [out], axes=axes))
                cur = [d for i, d in enumerate(cur) if i not in pick]
        elif op == "Reshape":
            total = math.prod(cur)
            dims = [total] if total < 2 else [total // 2, 2] if total % 2 == 0 else [1, total]
            dims = [int(d) for d in rng.permutation(dims)]
            spec = list(dims)
            if len(dims) <= len(cur) and rng.random() < 0.4:  # 0 copies the input's dim
                spec = [0 if dims[i] == cur[i] else d for i, d in enumerate(dims)]
            if rng.random() < 0.4:
                spec[int(rng.integers(len(spec)))] = -1
            inits.append(numpy_helper.from_array(np.array(spec, np.int64), f"s{k}"))
            nodes.append(helper.make_node("Reshape", [x, f"s{k}"], [out]))
            cur = dims
        elif op == "Flatten":
            axis = int(rng.integers(-len(cur), len(cur) + 1))
            nodes.append(helper.make_node("Flatten", [x], [out], axis=axis))
            a = axis % len(cur) if axis < 0 else axis
            cur = [math.prod(cur[:a]), math.prod(cur[a:])]
        else:
            nodes.append(helper.make_node("Identity", [x], [out]))
        x = out
    if not nodes:
        nodes.append(helper.make_node("Identity", [x], ["t_id"]))
        x = "t_id"
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, cur)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), shape


@pytest.mark.parametrize("opset", [11, 13, 17, 21])
def test_layout_chains_match_onnxruntime(opset):
    rng = np.random.default_rng(opset)
    checked = 0
    for _ in range(150):
        model, shape = _random_chain(rng, opset)
        onnx.checker.check_model(model)
        x = np.arange(math.prod(shape), dtype=np.float32).reshape(shape)
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        want = session.run(None, {"x": x})[0]
        got = run_layout_model(model, x)
        assert got is not None, [n.op_type for n in model.graph.node]
        assert got.shape == want.shape and np.array_equal(got, want), [n.op_type for n in model.graph.node]
        checked += 1
    assert checked == 150


def test_anything_else_is_left_to_onnxruntime():
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    assert run_layout_model(helper.make_model(graph), np.zeros(2, np.float32)) is None
    squeeze_not_one = helper.make_graph(
        [helper.make_node("Squeeze", ["x", "a"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
        [numpy_helper.from_array(np.array([0], np.int64), "a")],
    )
    assert run_layout_model(helper.make_model(squeeze_not_one), np.zeros((2, 3), np.float32)) is None
