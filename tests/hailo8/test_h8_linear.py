"""linear.rw (Linear layers on channels-last tensors as 1x1 convs) and transpose.rw's moves of a
Transpose with several consumers: ConvNeXt and Vocos blocks keep their Linear layers, GELU and
layer scale in the Hailo segment, exactly; only the LayerNorm and its Transposes go to the host."""

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper
from util import assert_hailo_clean, const, make_model, rewrite_and_run, torch_export, vi, weight


class VocosBlock(torch.nn.Module):
    """Vocos' 1-D ConvNeXt block: depthwise conv, then LayerNorm and two Linear layers over the
    channels of the [N, T, C] transpose, a layer scale, the transpose back and the residual."""

    def __init__(self, c=8, hidden=24):
        super().__init__()
        self.dw = torch.nn.Conv1d(c, c, 7, padding=3, groups=c)
        self.norm = torch.nn.LayerNorm(c, eps=1e-6)
        self.pw1, self.act, self.pw2 = torch.nn.Linear(c, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, c)
        self.gamma = torch.nn.Parameter(torch.rand(c) + 0.5)

    def forward(self, x):
        y = self.norm(self.dw(x).transpose(1, 2))
        y = self.gamma * self.pw2(self.act(self.pw1(y)))
        return x + y.transpose(1, 2)


class ConvNeXtBlock(torch.nn.Module):
    """torchvision's CNBlock: the same on [N, H, W, C] (permute, LayerNorm, Linear, GELU, Linear)."""

    def __init__(self, c=8, hidden=32):
        super().__init__()
        self.dw = torch.nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = torch.nn.LayerNorm(c, eps=1e-6)
        self.pw1, self.act, self.pw2 = torch.nn.Linear(c, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, c)
        self.gamma = torch.nn.Parameter(torch.rand(c, 1, 1) + 0.5)

    def forward(self, x):
        y = self.pw2(self.act(self.pw1(self.norm(self.dw(x).permute(0, 2, 3, 1)))))
        return x + self.gamma * y.permute(0, 3, 1, 2)


def _export(module, example, path, dynamo, opset=17):
    return torch_export(module, (example,), path, opset=opset, dynamo=dynamo)


def _assert_linear_layers_on_hailo(res, blocks):
    """No MatMul left; GELU's Erf and every conv on the device; Transposes only beside the
    LayerNorms (which stay on the host), and one Hailo segment between two LayerNorms."""
    assert_hailo_clean(res)
    everywhere, host = res.ops(), res.ops("host")
    assert "MatMul" not in everywhere
    assert res.ops("hailo")["Erf"] == blocks and "Erf" not in host
    assert res.ops("hailo")["Conv"] == 3 * blocks and "Conv" not in host  # depthwise + two Linear
    assert host["LayerNormalization"] == blocks
    assert everywhere["Transpose"] <= 2 * blocks and "Transpose" not in res.ops("hailo")
    assert len(res.steps_on("hailo")) == blocks + 1


@pytest.mark.parametrize(
    "dynamo, opset", [(False, 17), (False, 16), (True, 18)], ids=["torchscript", "torchscript-opset16", "dynamo"]
)
def test_vocos_blocks_keep_linear_layers_on_hailo(dynamo, opset, tmp_path, target):
    """At opset 16 the exporter writes each LayerNorm out (ReduceMean, Sub, Pow, ...): norms.rw
    makes it one LayerNormalization again first."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(VocosBlock(), VocosBlock())
    path = _export(model, torch.randn(1, 8, 37), tmp_path / "vocos.onnx", dynamo, opset)  # odd length
    res = rewrite_and_run(path, tmp_path, target=target)
    _assert_linear_layers_on_hailo(res, blocks=2)


class VocosBackbone(torch.nn.Module):
    """Vocos' backbone: embedding conv, a LayerNorm over the channels (Transpose, LayerNorm,
    Transpose back), the blocks: the first block's residual reads the Transpose of a LayerNorm."""

    def __init__(self, c=8, blocks=2):
        super().__init__()
        self.embed, self.norm = torch.nn.Conv1d(4, c, 7, padding=3), torch.nn.LayerNorm(c, eps=1e-6)
        self.blocks = torch.nn.Sequential(*[VocosBlock(c) for _ in range(blocks)])

    def forward(self, x):
        return self.blocks(self.norm(self.embed(x).transpose(1, 2)).transpose(1, 2))


def test_vocos_backbone_keeps_residuals_on_hailo(tmp_path, target):
    """The residual Add of a Transposed LayerNorm output and the block's Transposed output is not
    joined behind one Transpose (it would run channels-last, on the host): it stays beside the
    convs. One Hailo segment per LayerNorm plus the embedding."""
    torch.manual_seed(0)
    path = torch_export(VocosBackbone(), torch.randn(1, 4, 29), tmp_path / "backbone.onnx")
    res = rewrite_and_run(path, tmp_path, target=target)
    assert_hailo_clean(res)
    host = res.ops("host")
    assert set(host) <= {"Transpose", "LayerNormalization", "Squeeze", "Unsqueeze"}, host
    assert len(res.steps_on("hailo")) == host["LayerNormalization"] + 1 == 4


def test_convnext_block_keeps_linear_layers_on_hailo(tmp_path, target):
    torch.manual_seed(0)
    path = torch_export(ConvNeXtBlock(), torch.randn(1, 8, 5, 7), tmp_path / "cnblock.onnx")
    res = rewrite_and_run(path, tmp_path, target=target)
    _assert_linear_layers_on_hailo(res, blocks=1)


# ---- the MatMul rules' edges, on hand-built graphs
def _model(nodes, inputs, outputs, inits, dtype=TensorProto.FLOAT):
    return make_model(nodes, inputs, [vi(o, None, dtype) for o in outputs], inits)


def _nodes(res):
    return [n for m in res.segments.values() for n in m.graph.node]


@pytest.mark.parametrize("shape", [[1, 8, 5], [2, 8, 3, 5]], ids=["rank3", "rank4"])
def test_linear_of_a_transposed_graph_input_to_a_graph_output(shape, tmp_path, target):
    perm = [0, 2, 1] if len(shape) == 3 else [0, 2, 3, 1]
    m = _model(
        [helper.make_node("Transpose", ["x"], ["t"], perm=perm), helper.make_node("MatMul", ["t", "w"], ["y"])],
        [vi("x", shape)],
        ["y"],
        [weight("w", [8, 6])],
    )
    res = rewrite_and_run(m, tmp_path, target=target)
    assert "MatMul" not in res.ops() and res.ops("hailo")["Conv"] == 1
    assert res.ops()["Transpose"] == 1  # moved behind the conv, not added
    assert [o["name"] for o in res.doc["outputs"]] == ["y"]
    assert list(res.outputs["y"].shape) == [shape[0], *shape[2:], 6]


def test_one_weight_read_by_two_linear_layers(tmp_path, target):
    m = _model(
        [
            helper.make_node("Transpose", ["a"], ["ta"], perm=[0, 2, 1]),
            helper.make_node("Transpose", ["b"], ["tb"], perm=[0, 2, 1]),
            helper.make_node("MatMul", ["ta", "w"], ["p"]),
            helper.make_node("MatMul", ["tb", "w"], ["q"]),
            helper.make_node("Add", ["p", "q"], ["y"]),
        ],
        [vi("a", [1, 8, 9]), vi("b", [1, 8, 9])],
        ["y", "p"],  # p is read by the Add and is a graph output too
        [weight("w", [8, 4])],
    )
    res = rewrite_and_run(m, tmp_path, target=target)
    assert "MatMul" not in res.ops() and res.ops("hailo")["Conv"] == 2


@pytest.mark.parametrize(
    "case",
    ["untransposed", "transpose_read_twice", "rank2", "weight_first", "int_weight", "rank3_weight", "other_perm"],
)
def test_matmuls_that_stay(case, tmp_path, target):
    """Only a Linear layer right after the Transpose to channels-last (or after a LayerNorm of one)
    becomes a conv: a MatMul of an untransposed tensor (a mel filterbank, a classifier) would be a
    conv with Transposes and a device round trip of its own. A rank-2 MatMul (the target's own), a
    constant first operand, integer and batched weights are not Linear layers on channels."""
    x_shape, w, perm, dtype = [1, 8, 5], weight("w", [8, 6]), [0, 2, 1], TensorProto.FLOAT
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=perm), helper.make_node("MatMul", ["t", "w"], ["y"])]
    outputs = ["y"]
    if case == "untransposed":
        x_shape, nodes = [1, 5, 8], [helper.make_node("MatMul", ["x", "w"], ["y"])]
    elif case == "transpose_read_twice":
        outputs = ["y", "t"]
    elif case == "rank2":
        x_shape, nodes[0] = [8, 5], helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0])
    elif case == "weight_first":
        x_shape, w, nodes = [1, 8, 5], weight("w", [6, 8]), [helper.make_node("MatMul", ["w", "x"], ["y"])]
    elif case == "int_weight":
        dtype, w = TensorProto.INT32, const("w", np.arange(48, dtype=np.int32).reshape(8, 6) % 5 - 2)
    elif case == "rank3_weight":
        w = weight("w", [1, 8, 6])
    else:
        x_shape, nodes[0] = [5, 8, 1], helper.make_node("Transpose", ["x"], ["t"], perm=[2, 0, 1])
    m = _model(nodes, [vi("x", x_shape, dtype)], outputs, [w], dtype)
    feeds = None
    if dtype == TensorProto.INT32:
        feeds = {"x": (np.arange(np.prod(x_shape)) % 7 - 3).reshape(x_shape).astype(np.int32)}
    res = rewrite_and_run(m, tmp_path, target=target, feeds=feeds)
    assert res.ops()["MatMul"] == 1 and "Conv" not in res.ops()


# ---- transpose.rw: a Transpose read by several ops
def test_shared_transpose_moves_through_gelu_and_meets_again(tmp_path, target):
    """x -> Transpose read by Div and by Mul (GELU written out): the copies meet in the Mul, so one
    Transpose is left, after the whole GELU."""
    s2, half = const("s2", np.float32(np.sqrt(2))), const("half", np.float32(0.5))
    one = const("one", np.float32(1.0))
    m = _model(
        [
            helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
            helper.make_node("Div", ["t", "s2"], ["d"]),
            helper.make_node("Erf", ["d"], ["e"]),
            helper.make_node("Add", ["e", "one"], ["f"]),
            helper.make_node("Mul", ["t", "f"], ["g"]),
            helper.make_node("Mul", ["g", "half"], ["y"]),
        ],
        [vi("x", [1, 4, 3, 5])],
        ["y"],
        [s2, half, one],
    )
    res = rewrite_and_run(m, tmp_path, target=target)
    assert res.ops()["Transpose"] == 1
    (last,) = [n for n in _nodes(res) if n.op_type == "Transpose"]
    assert list(last.output) == ["y"]


def test_shared_transpose_read_by_two_outputs(tmp_path, target):
    """Consumers that never meet again (two graph outputs) each get their copy; values unchanged."""
    m = _model(
        [
            helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1]),
            helper.make_node("Relu", ["t"], ["r"]),
            helper.make_node("Mul", ["t", "k"], ["s"]),
        ],
        [vi("x", [1, 4, 6])],
        ["r", "s"],
        [const("k", np.float32([[[2.0, -1.0, 0.5, 3.0]]]))],
    )
    res = rewrite_and_run(m, tmp_path, target=target)
    for n in _nodes(res):
        if n.op_type == "Transpose":
            assert list(n.output)[0] in ("r", "s")  # moved to the ends


def test_shared_transpose_with_a_consumer_it_cannot_pass_stays(tmp_path, target):
    m = _model(
        [
            helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1]),
            helper.make_node("Relu", ["t"], ["r"]),
            helper.make_node("Softmax", ["t"], ["s"], axis=-1),  # reads axes: a Transpose cannot move through
        ],
        [vi("x", [1, 4, 6])],
        ["r", "s"],
        [],
    )
    res = rewrite_and_run(m, tmp_path, target=target)
    relu = next(n for n in _nodes(res) if n.op_type == "Relu")
    assert list(relu.input) == ["t"]


@pytest.mark.parametrize("perms", [([0, 2, 1], [0, 2, 1]), ([0, 2, 1], [2, 1, 0])], ids=["equal", "different"])
def test_binary_of_two_transposes(perms, tmp_path, target):
    m = _model(
        [
            helper.make_node("Transpose", ["a"], ["ta"], perm=perms[0]),
            helper.make_node("Transpose", ["b"], ["tb"], perm=perms[1]),
            helper.make_node("Sub", ["ta", "tb"], ["y"]),
        ],
        [vi("a", [1, 4, 6]), vi("b", [1, 4, 6] if perms[0] == perms[1] else [4, 6, 1])],
        ["y"],
        [],
    )
    res = rewrite_and_run(m, tmp_path, target=target)
    assert res.ops()["Transpose"] == (1 if perms[0] == perms[1] else 2)
