"""layout.rw: Squeeze(.., [2]) pushed down through 1-D ops so a 1-D chain is one rank-4 Hailo
segment with one layout change at each end on the host."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import helper
from util import assert_hailo_clean, const, ints, make_model, rewrite_and_run, torch_export, vi, weight

EDGE_OPS = {"Unsqueeze", "Squeeze", "Transpose"}


class Chain1d(nn.Module):
    """Conv1d -> BN1d -> PReLU -> chomp -> ReLU -> residual Add -> Concat -> MaxPool1d -> Conv1d
    -> GAP -> Linear."""

    def __init__(self, c=8, gap="adaptive"):
        super().__init__()
        self.c1 = nn.Conv1d(4, c, 3, padding=2)
        self.bn = nn.BatchNorm1d(c)
        self.pr = nn.PReLU(c)
        self.res = nn.Conv1d(4, c, 1)
        self.pool = nn.MaxPool1d(2)
        self.c2 = nn.Conv1d(2 * c, c, 3, padding=1)
        self.fc = nn.Linear(c, 5)
        self.gap = gap
        with torch.no_grad():
            self.bn.running_mean.uniform_(-1, 1)
            self.bn.running_var.uniform_(0.5, 2)
            self.bn.weight.uniform_(0.5, 1.5)
            self.bn.bias.uniform_(-1, 1)
            self.pr.weight.uniform_(0.05, 0.5)

    def forward(self, x):
        h = self.pr(self.bn(self.c1(x)))[:, :, :-2]
        h = torch.relu(h)
        r = h + self.res(x)
        h = torch.cat([r, h], 1)
        h = self.c2(self.pool(h))
        h = F.adaptive_avg_pool1d(h, 1).squeeze(-1) if self.gap == "adaptive" else h.mean(-1)
        return self.fc(h)


@pytest.mark.parametrize("gap", ["adaptive", "mean"])
def test_full_1d_chain_is_one_hailo_segment(gap, tmp_path, target):
    torch.manual_seed(0)
    # do_constant_folding=False keeps the BatchNormalization in the export
    path = torch_export(Chain1d(gap=gap), torch.randn(1, 4, 32), tmp_path / "chain.onnx", do_constant_folding=False)
    res = rewrite_and_run(path, tmp_path, target=target)
    assert_hailo_clean(res)
    assert len(res.steps_on("hailo")) == 1
    hailo = res.ops("hailo")
    assert hailo["Conv"] == 4  # c1 (BN folded), res, c2, Linear as 1x1 conv
    for op in ("PRelu", "Slice", "Relu", "Add", "Concat", "MaxPool"):
        assert hailo[op] == 1, (op, hailo)
    assert "BatchNormalization" not in res.ops() and "Gemm" not in res.ops()
    hosts = res.steps_on("host")
    assert [s["name"] for s in res.doc["steps"]] == [
        hosts[0]["name"],
        res.steps_on("hailo")[0]["name"],
        hosts[1]["name"],
    ]
    assert [n.op_type for n in res.segments[hosts[0]["name"]].graph.node] == ["Unsqueeze"]
    assert [n.op_type for n in res.segments[hosts[1]["name"]].graph.node] == ["Squeeze"]


def _conv(name, x, y, cin, cout, k=3, pads=(1, 1)):
    return (
        helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [y], name=name, kernel_shape=[k], pads=list(pads)),
        [weight(f"{name}_w", [cout, cin, k]), weight(f"{name}_b", [cout])],
    )


def _model(body, inits, c_in=4, t=16, outputs=("y",), x_shape=None):
    return make_model(body, [vi("x", x_shape or [1, c_in, t])], [vi(o, None) for o in outputs], inits)


def test_intermediate_graph_output_survives(tmp_path, target):
    n1, i1 = _conv("c1", "x", "c", 4, 6)
    n2, i2 = _conv("c2", "mid", "y", 6, 5)
    model = _model([n1, helper.make_node("Relu", ["c"], ["mid"]), n2], i1 + i2, outputs=("mid", "y"))
    res = rewrite_and_run(model, tmp_path, target=target)
    assert_hailo_clean(res)
    assert {o["name"] for o in res.doc["outputs"]} == {"mid", "y"}
    assert res.outputs["mid"].shape == (1, 6, 16)
    assert len(res.steps_on("hailo")) == 1
    assert set(res.ops("host")) <= EDGE_OPS


def test_value_used_twice(tmp_path, target):
    n1, i1 = _conv("c1", "x", "c", 4, 6)
    n2, i2 = _conv("c2", "s", "y", 6, 3)
    model = _model(
        [
            n1,
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("Sigmoid", ["c"], ["g"]),
            helper.make_node("Mul", ["r", "g"], ["m"]),
            helper.make_node("Add", ["m", "c"], ["s"]),
            n2,
        ],
        i1 + i2,
    )
    res = rewrite_and_run(model, tmp_path, target=target)
    assert_hailo_clean(res)
    assert len(res.steps_on("hailo")) == 1
    assert res.ops("hailo")["Conv"] == 2
    assert set(res.ops("host")) <= EDGE_OPS and res.ops("host")["Unsqueeze"] == 1


def test_both_operands_squeezed_meet_at_rank4(tmp_path, target, capsys):
    """Sub of two conv outputs, its square (the same value twice) and a residual sum: each op has
    both operands squeezed, and binary_both_squeezed runs it on the rank-4 values directly rather
    than unsqueezing one side again (one rewrite instead of two). One Hailo segment, exact."""
    from rewriter.cli import main

    n1, i1 = _conv("c1", "x", "a", 4, 6)
    n2, i2 = _conv("c2", "x", "b", 4, 6, k=1, pads=(0, 0))
    n3, i3 = _conv("c3", "r", "y", 6, 3)
    body = [
        n1,
        n2,
        helper.make_node("Sub", ["a", "b"], ["d"]),
        helper.make_node("Mul", ["d", "d"], ["sq"]),
        helper.make_node("Add", ["a", "sq"], ["r"]),
        n3,
    ]
    model = _model(body, i1 + i2 + i3, t=33)
    res = rewrite_and_run(model, tmp_path, target=target)
    assert_hailo_clean(res)
    assert len(res.steps_on("hailo")) == 1
    assert {k: res.ops("hailo")[k] for k in ("Sub", "Mul", "Add")} == {"Sub": 1, "Mul": 1, "Add": 1}
    capsys.readouterr()
    assert main(["inspect", str(tmp_path / "model.onnx"), "--target", str(target), "--explain"]) == 0
    fired = capsys.readouterr().out
    assert fired.count("(binary_both_squeezed)") >= 3, fired
    assert "(binary_squeezed_left_rank3)" not in fired


CONST_SHAPES = {"C1": [6, 1], "1C1": [1, 6, 1], "T": [16], "scalar": []}


@pytest.mark.parametrize("op", ["Sub", "Div", "Mul", "Add"])
@pytest.mark.parametrize("shape", list(CONST_SHAPES))
@pytest.mark.parametrize("const_first", [False, True])
def test_broadcast_constants(op, shape, const_first, tmp_path, target):
    rng = np.random.default_rng(1)
    k = rng.uniform(0.5, 1.5, CONST_SHAPES[shape]).astype(np.float32)
    n1, i1 = _conv("c1", "x", "c", 4, 6)
    n2, i2 = _conv("c2", "e", "y", 6, 3)
    args = ["k", "r"] if const_first else ["r", "k"]
    model = _model(
        [n1, helper.make_node("Relu", ["c"], ["r"]), helper.make_node(op, args, ["e"]), n2], i1 + i2 + [const("k", k)]
    )
    res = rewrite_and_run(model, tmp_path, target=target)
    assert_hailo_clean(res)
    if op == "Div" and const_first:
        # k / x: the target takes Div only with a constant divisor (const_inputs = [1]), so the Div
        # goes to the host, as rank 4 between two rank-4 Hailo segments.
        assert res.ops("host")["Div"] == 1 and len(res.steps_on("hailo")) == 2
        return
    assert len(res.steps_on("hailo")) == 1, [(s["name"], s["device"]) for s in res.doc["steps"]]
    assert res.ops("hailo")[op] + res.ops("hailo")["Conv"] >= 2
    assert set(res.ops("host")) <= EDGE_OPS


def test_pad_1d_constant(tmp_path, target):
    n1, i1 = _conv("c1", "x", "c", 4, 6)
    n2, i2 = _conv("c2", "p", "y", 6, 3, pads=(0, 0))
    pad = helper.make_node("Pad", ["c", "pads", "cv"], ["p"], mode="constant")
    model = _model([n1, pad, n2], i1 + i2 + [ints("pads", [0, 0, 2, 0, 0, 1]), const("cv", np.array(0.5, np.float32))])
    res = rewrite_and_run(model, tmp_path, target=target)
    assert_hailo_clean(res)
    assert res.ops("hailo")["Pad"] == 1 and len(res.steps_on("hailo")) == 1
    assert res.outputs["y"].shape == (1, 3, 17)  # 16 + 3 pad, then k=3 without padding


@pytest.mark.parametrize("axes", [[2], [-1]])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_mean_over_time(axes, keepdims, tmp_path, target):
    n1, i1 = _conv("c1", "x", "c", 4, 6)
    model = _model(
        [
            n1,
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("ReduceMean", ["r"], ["y"], axes=axes, keepdims=keepdims),
        ],
        i1,
    )
    res = rewrite_and_run(model, tmp_path, target=target)
    assert_hailo_clean(res)
    assert len(res.steps_on("hailo")) == 1
    assert res.ops("hailo")["ReduceMean"] + res.ops("hailo")["GlobalAveragePool"] == 1
    assert set(res.ops("host")) <= EDGE_OPS
    assert res.outputs["y"].shape == ((1, 6, 1) if keepdims else (1, 6))


def test_channels_last_input(tmp_path, target):
    n1, i1 = _conv("c1", "xt", "c", 4, 6)
    n2, i2 = _conv("c2", "r", "y", 6, 3)
    model = _model(
        [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]), n1, helper.make_node("Relu", ["c"], ["r"]), n2],
        i1 + i2,
        x_shape=[1, 16, 4],
    )
    res = rewrite_and_run(model, tmp_path, target=target)
    assert_hailo_clean(res)
    assert len(res.steps_on("hailo")) == 1
    assert res.ops("hailo") == {"Conv": 2, "Relu": 1}
    assert set(res.ops("host")) <= EDGE_OPS


@pytest.mark.parametrize("op", ["Relu", "Sigmoid", "LeakyRelu"])
def test_rank3_activation_before_first_conv_joins_hailo(op, tmp_path, target):
    """unsqueeze_before_*: the Unsqueeze left by conv1d.rw moves above an activation applied to the
    raw rank-3 input, so the activation runs in the rank-4 Hailo segment, not on the host."""
    act = helper.make_node(op, ["x"], ["a"], name="act")
    n1, i1 = _conv("c1", "a", "y", 4, 6)
    res = rewrite_and_run(_model([act, n1], i1), tmp_path, target=target)
    assert_hailo_clean(res)
    assert res.ops("hailo")[op] == 1 and res.ops("host")[op] == 0
    assert [n.op_type for s in res.steps_on("host") for n in res.segments[s["name"]].graph.node] == [
        "Unsqueeze",
        "Squeeze",
    ]


def test_rank3_activation_used_twice_stays_rank3(tmp_path, target):
    """uses(a) == 1 guards the move: an activation whose result also leaves the graph keeps its
    rank-3 form (moving it would duplicate it), and results still match."""
    act = helper.make_node("Relu", ["x"], ["a"], name="act")
    n1, i1 = _conv("c1", "a", "y", 4, 6)
    res = rewrite_and_run(_model([act, n1], i1, outputs=("y", "a")), tmp_path, target=target)
    assert_hailo_clean(res)
    assert res.ops("host")["Relu"] == 1


def test_global_mean_over_c_and_t_is_as_accurate_as_the_original(tmp_path):
    """A global layer norm's mean over C and T ([N, C, T], axes [1, 2]) on the rank-4 form keeps
    the reduced axes contiguous ([1, 2, 3] on [N, C, 1, T], not [1, 3]): onnxruntime reduces
    [1, 3] through a less accurate path, which cost ConvTasNet 1.8e-4 relative error at 16,000
    samples. Long input with a large offset, so a worse summation order shows."""
    from util import custom_target

    c, t = 64, 16000
    conv, inits = _conv("c1", "x", "h", 4, c, k=1, pads=(0, 0))
    nodes = [
        conv,
        helper.make_node("ReduceMean", ["h"], ["m"], axes=[1, 2], keepdims=1),
        helper.make_node("Sub", ["h", "m"], ["y"]),
    ]
    model = _model(nodes, inits, t=t)
    rng = np.random.default_rng(0)
    feeds = {"x": (rng.standard_normal((1, 4, t)) * 3 + 100).astype(np.float32)}
    target = custom_target(tmp_path, {"layer_row_values = 131072": "layer_row_values = 1000000000"})  # no tiling
    res = rewrite_and_run(model, tmp_path, feeds=feeds, target=target)
    (mean_node,) = [n for seg in res.hailo for n in seg.graph.node if n.op_type == "ReduceMean"]
    assert list(helper.get_attribute_value(next(a for a in mean_node.attribute if a.name == "axes"))) == [1, 2, 3]
    got, ref = res.outputs["y"], res.ref["y"]
    assert np.max(np.abs(got - ref)) <= 1e-6 * np.max(np.abs(ref))


@pytest.mark.parametrize(
    "form, mode, ctm",
    [
        ("scales", "nearest", "asymmetric"),  # F.interpolate(scale_factor=2) as TorchScript writes it
        ("scales", "linear", "half_pixel"),
        ("sizes", "nearest", "half_pixel"),
        ("sizes", "linear", "align_corners"),
    ],
)
def test_resize_along_time_between_conv1ds(form, mode, ctm, tmp_path, target):
    """A 1-D Upsample between Conv1ds runs at rank 4 on Hailo (resize_*_after_squeeze), odd length,
    its output also read by a residual branch."""
    n1, i1 = _conv("c1", "x", "c", 4, 6)
    n2, i2 = _conv("c2", "u", "y", 6, 5)
    n3, i3 = _conv("c3", "u", "z", 6, 5, k=1, pads=(0, 0))
    scales = const("sc", np.array([1.0, 1.0, 2.0], np.float32)) if form == "scales" else None
    sizes = ints("sz", [1, 6, 34]) if form == "sizes" else None
    resize_inputs = ["c", "", "sc"] if form == "scales" else ["c", "", "", "sz"]
    resize = helper.make_node("Resize", resize_inputs, ["u"], mode=mode, coordinate_transformation_mode=ctm)
    add = helper.make_node("Add", ["y", "z"], ["s"])
    inits = i1 + i2 + i3 + [t for t in (scales, sizes) if t is not None]
    model = _model([n1, resize, n2, n3, add], inits, t=17, outputs=("s",))
    res = rewrite_and_run(model, tmp_path, target=target)
    assert_hailo_clean(res)
    assert len(res.steps_on("hailo")) == 1 and res.ops("hailo")["Resize"] == 1
    assert set(res.ops("host")) <= EDGE_OPS
    assert res.outputs["s"].shape == (1, 5, 34)
