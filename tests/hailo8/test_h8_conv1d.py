"""conv1d.rw: Conv1d / ConvTranspose1d / MaxPool1d / AvgPool1d become (1, k) 2-D ops with time on W."""

import pytest
import torch
from onnx import helper
from util import (
    assert_hailo_clean,
    backend_case,
    custom_target,
    make_model,
    rewrite_and_run,
    tensor_ranks,
    torch_export,
    vi,
    weight,
)

CONV1D_CASES = [
    "test_Conv1d",
    "test_Conv1d_dilated",
    "test_Conv1d_groups",
    "test_Conv1d_pad1",
    "test_Conv1d_pad1size1",
    "test_Conv1d_pad2",
    "test_Conv1d_pad2size1",
    "test_Conv1d_stride",
]
POOL1D_CASES = [
    "test_MaxPool1d",
    "test_MaxPool1d_stride",
    "test_MaxPool1d_stride_padding_dilation",
    "test_AvgPool1d",
    "test_AvgPool1d_stride",
]


def run_case(name, tmp_path, target):
    path, model, x, expected = backend_case(name)
    inits = {t.name for t in model.graph.initializer}
    iname = next(i.name for i in model.graph.input if i.name not in inits)
    oname = model.graph.output[0].name
    # the shipped cases are old opsets onnxruntime no longer runs: compare with output_0.pb
    return rewrite_and_run(path, tmp_path, {iname: x}, target=target, expected={oname: expected})


def assert_time_on_w(res, op):
    """The converted op runs on hailo as rank 4 with a (1, k) kernel: [N, C, 1, T]."""
    hailo_ops = res.ops("hailo")
    assert hailo_ops[op] >= 1, hailo_ops
    for seg in res.hailo:
        for n in seg.graph.node:
            if n.op_type == op:
                ks = next(a.ints for a in n.attribute if a.name == "kernel_shape")
                assert len(ks) == 2 and ks[0] == 1, ks
    # only the layout change at each end is left on the host
    assert set(res.ops("host")) <= {"Unsqueeze", "Squeeze"}, res.ops("host")


@pytest.mark.parametrize("name", CONV1D_CASES)
def test_backend_conv1d(name, tmp_path, target):
    res = run_case(name, tmp_path, target)
    assert_hailo_clean(res)
    assert_time_on_w(res, "Conv")
    assert len(res.steps_on("hailo")) == 1


@pytest.mark.parametrize("name", POOL1D_CASES)
def test_backend_pool1d(name, tmp_path, target):
    # test_MaxPool1d_stride_padding_dilation is 220,000 wide: above the row budget, and a padded
    # MaxPool cannot be tiled exactly (it pads with -inf), so the tiler would send it to the host.
    # This test is about the 1-D -> 2-D rewrite: lift the budget.
    target = custom_target(tmp_path, {"layer_row_values = 131072": "layer_row_values = 1000000000"})
    res = run_case(name, tmp_path, target)
    assert_hailo_clean(res)
    # The AvgPool1d exports are already 2-D in the vertical [N, C, T, 1] layout (Unsqueeze(axis 3),
    # a (k, 1) kernel): vertical.rw turns them to (1, k) on W like every other 1-D op.
    assert_time_on_w(res, "AveragePool" if name.startswith("test_AvgPool1d") else "MaxPool")


def test_backend_prelu_1d(tmp_path, target):
    # A PRelu alone has no converted op around it to lend it a rank-4 layout: it stays rank 3 and
    # runs on the host, exactly (run_case compares with the case's expected output).
    res = run_case("test_PReLU_1d", tmp_path, target)
    assert res.hailo == [] and res.ops("host") == {"PRelu": 1}


def test_backend_prelu_1d_multiparam(tmp_path, target):
    run_case("test_PReLU_1d_multiparam", tmp_path, target)


def test_backend_batchnorm1d_3d(tmp_path, target):
    res = run_case("test_BatchNorm1d_3d_input_eval", tmp_path, target)
    assert res.ops()["BatchNormalization"] == 0  # bn_fallback: Mul + Add
    assert all(r != 3 for seg in res.hailo for r in tensor_ranks(seg).values())


def _conv1d_then(op_nodes, inits, tmp_path, target, c=6, t=16):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3], pads=[1, 1])] + op_nodes
    model = make_model(nodes, [vi("x", [1, 4, t])], [vi("y", None)], [weight("w", [c, 4, 3])] + inits)
    return rewrite_and_run(model, tmp_path, target=target)


def test_prelu_1d_multiparam_after_conv_on_hailo(tmp_path, target):
    slope = weight("slope", [6, 1], scale=0.3)
    res = _conv1d_then([helper.make_node("PRelu", ["c", "slope"], ["y"])], [slope], tmp_path, target)
    assert_hailo_clean(res)
    assert res.ops("hailo")["PRelu"] == 1
    assert set(res.ops("host")) <= {"Unsqueeze", "Squeeze"}


def test_batchnorm1d_after_conv_is_fused(tmp_path, target):
    from util import bn_inits

    bn = bn_inits("bn", 6)
    res = _conv1d_then(
        [helper.make_node("BatchNormalization", ["c"] + [t.name for t in bn], ["y"])], bn, tmp_path, target
    )
    assert_hailo_clean(res)
    assert res.ops() == {"Unsqueeze": 1, "Conv": 1, "Squeeze": 1}


def test_conv1d_no_bias(tmp_path, target):
    model = make_model(
        [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[5], strides=[2], dilations=[2], pads=[3, 1])],
        [vi("x", [1, 3, 40])],
        [vi("y", None)],
        [weight("w", [8, 3, 5])],
    )
    res = rewrite_and_run(model, tmp_path, target=target)
    assert_hailo_clean(res)
    assert_time_on_w(res, "Conv")
    conv = next(n for n in res.hailo[0].graph.node if n.op_type == "Conv")
    assert len(conv.input) == 2  # no bias invented


@pytest.mark.parametrize(
    "kw",
    [
        dict(kernel_size=3, stride=2, padding=1, output_padding=1, dilation=1),
        dict(kernel_size=4, stride=3, padding=2, output_padding=0, dilation=2),
        dict(kernel_size=2, stride=2, padding=0, output_padding=1, dilation=1, bias=False),
        dict(kernel_size=3, stride=2, padding=1, output_padding=1, dilation=1, groups=2),
    ],
)
def test_convtranspose1d(kw, tmp_path, target):
    torch.manual_seed(0)
    m = torch.nn.ConvTranspose1d(4, 6, **kw)
    path = torch_export(m, torch.randn(1, 4, 12), tmp_path / "ct.onnx")
    res = rewrite_and_run(path, tmp_path, target=target)
    assert_hailo_clean(res)
    assert_time_on_w(res, "ConvTranspose")
