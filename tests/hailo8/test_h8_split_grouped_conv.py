"""passes/split_grouped_conv.py: grouped convs become group=1 (block-diagonal or per-group)."""

import pytest
import torch
from onnx import helper
from util import assert_hailo_clean, custom_target, make_model, rewrite_and_run, torch_export, vi, weight


def grouped_model(c_in=16, c_out=16, group=2, spatial=(6, 7), op="Conv", bias=True):
    k = [3] * len(spatial)
    if op == "Conv":
        w = weight("w", [c_out, c_in // group, *k])
    else:
        w = weight("w", [c_in, c_out // group, *k])
    ins = ["r", "w"] + (["b"] if bias else [])
    inits = [w] + ([weight("b", [c_out])] if bias else [])
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node(op, ins, ["c"], kernel_shape=k, pads=[1] * 2 * len(k), group=group),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    return make_model(nodes, [vi("x", [1, c_in, *spatial])], [vi("y", None)], inits)


def convs(res, op="Conv"):
    return [n for seg in res.hailo for n in seg.graph.node if n.op_type == op]


def group_of(node):
    return next((a.i for a in node.attribute if a.name == "group"), 1)


def assert_one_segment(res):
    assert [s["device"] for s in res.doc["steps"]] == ["hailo"], [(s["name"], s["device"]) for s in res.doc["steps"]]


def test_groups2_block_diagonal(tmp_path, target):
    res = rewrite_and_run(grouped_model(group=2), tmp_path, target=target)
    assert_hailo_clean(res)
    assert_one_segment(res)
    (conv,) = convs(res)
    assert group_of(conv) == 1
    w = {t.name: t for t in res.hailo[0].graph.initializer}[conv.input[1]]
    assert list(w.dims) == [16, 16, 3, 3]  # dense, zero off the diagonal blocks


def test_groups8_per_group_auto(tmp_path, target):
    res = rewrite_and_run(grouped_model(group=8), tmp_path, target=target)
    assert_hailo_clean(res)
    assert_one_segment(res)  # the per-group split must not leave a host op in the middle
    cs = convs(res)
    assert len(cs) == 8 and all(group_of(c) == 1 for c in cs)
    assert res.ops("hailo")["Concat"] == 1


@pytest.mark.parametrize("mult", [1, 2])
def test_depthwise_stays_depthwise(mult, tmp_path, target):
    res = rewrite_and_run(grouped_model(c_in=8, c_out=8 * mult, group=8), tmp_path, target=target)
    assert_hailo_clean(res)
    assert_one_segment(res)
    (conv,) = convs(res)
    assert group_of(conv) == 8


@pytest.mark.parametrize("group", [2, 8])
def test_conv1d_groups(group, tmp_path, target):
    res = rewrite_and_run(grouped_model(group=group, spatial=(20,)), tmp_path, target=target)
    assert_hailo_clean(res)
    assert len(res.steps_on("hailo")) == 1
    assert all(group_of(c) == 1 for c in convs(res))
    # the leading rank-3 Relu sits before the Unsqueeze (layout.rw only pushes Squeezes down)
    assert set(res.ops("host")) <= {"Unsqueeze", "Squeeze", "Relu"}


@pytest.mark.parametrize("group", [2, 8])
def test_grouped_convtranspose2d(group, tmp_path, target):
    res = rewrite_and_run(grouped_model(group=group, op="ConvTranspose"), tmp_path, target=target)
    assert_hailo_clean(res)
    assert_one_segment(res)
    cts = convs(res, "ConvTranspose")
    assert len(cts) == (1 if group <= 4 else group) and all(group_of(c) == 1 for c in cts)


def test_grouped_convtranspose2d_torch(tmp_path, target):
    torch.manual_seed(0)
    m = torch.nn.ConvTranspose2d(8, 12, 3, stride=2, padding=1, output_padding=1, groups=4)
    path = torch_export(m, torch.randn(1, 8, 5, 6), tmp_path / "ct.onnx")
    res = rewrite_and_run(path, tmp_path, target=target)
    assert_hailo_clean(res)
    assert [group_of(c) for c in convs(res, "ConvTranspose")] == [1]


@pytest.mark.parametrize("form", ["per_group", "block_diagonal"])
def test_custom_target_group_split(form, tmp_path):
    toml = custom_target(
        tmp_path, {'group_split = "auto"             # grouped convs': f'group_split = "{form}"  # grouped convs'}
    )
    for group in (2, 8):
        res = rewrite_and_run(grouped_model(group=group), tmp_path, target=toml, name=f"g{group}")
        assert_hailo_clean(res)
        assert_one_segment(res)
        n = len(convs(res))
        assert n == (group if form == "per_group" else 1), (form, group, n)


def test_custom_target_groups_any_keeps_grouped(tmp_path):
    toml = custom_target(tmp_path, {'groups = "dense_or_depthwise"': 'groups = "any"'})
    res = rewrite_and_run(grouped_model(group=2), tmp_path, target=toml)
    (conv,) = convs(res)
    assert group_of(conv) == 2
