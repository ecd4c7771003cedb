"""Placement reasons and partition into convex, acyclic segments."""

from __future__ import annotations

import networkx as nx
import numpy as np
import onnx_graphsurgeon as gs
import pytest
from fd_util import (
    assert_parity,
    conv_chain_model,
    cycle_trap_model,
    make_model,
    no_cost_rule,
    ort_run,
    plan_run,
    random_feeds,
    save,
    target_toml,
    vi,
    weight,
)
from onnx import helper

from rewriter.errors import UserError
from rewriter.partition.placement import why_not
from rewriter.pipeline import RewriteOptions, rewrite
from rewriter.plan.writer import write_plan
from rewriter.target import load_target


@pytest.fixture(scope="module")
def hailo8():
    return load_target("hailo8")


@pytest.fixture
def free_target(tmp_path):
    """hailo8 without the cost rule (roundtrip_macs = 0)."""
    return load_target(str(target_toml(tmp_path, "free", edit=no_cost_rule)))


def _rewrite(tmp_path, model, target, **options):
    path = save(model, tmp_path / "m.onnx")
    return path, rewrite(path, target, RewriteOptions(**options))


def _rows(result) -> dict:
    return {r["node"]: r for r in result.placement_rows()}


def _segments(result) -> list[tuple[str, list[str]]]:
    return [(seg.device, [n.name for n in seg.nodes]) for seg in result.partition.segments]


def _write_and_check(tmp_path, path, target, result, model):
    out = tmp_path / "out.plan"
    write_plan(out, result.document(target, path), result.steps)
    feeds = random_feeds(model)
    assert_parity(plan_run(out, feeds), ort_run(model, feeds))
    return out


def _step_dag(result) -> nx.DiGraph:
    producer = {t: s.name for s in result.steps for t in s.outputs}
    dag = nx.DiGraph()
    dag.add_nodes_from(s.name for s in result.steps)
    for s in result.steps:
        for t in s.inputs:
            if t in producer:
                dag.add_edge(producer[t], s.name)
    return dag


# ---- why_not reasons -----------------------------------------------------------------------


def _node(op, in_shapes, out_shape, consts=(), attrs=None, dtype=np.float32):
    inputs = []
    for i, shape in enumerate(in_shapes):
        if i in consts:
            inputs.append(gs.Constant(f"c{i}", np.ones(shape, np.float32)))
        else:
            inputs.append(gs.Variable(f"v{i}", dtype=dtype, shape=shape))
    out = gs.Variable("out", dtype=dtype, shape=out_shape)
    node = gs.Node(op, name="n", inputs=inputs, outputs=[out], attrs=attrs or {})
    return node


def test_why_not_ok_for_plain_conv(hailo8):
    assert why_not(_node("Conv", [[1, 4, 8, 8], [4, 4, 3, 3]], [1, 4, 6, 6], consts=(1,)), hailo8) is None


def test_why_not_op_not_in_target(hailo8):
    assert why_not(_node("Floor", [[1, 4, 8, 8]], [1, 4, 8, 8]), hailo8) == "op Floor not in target hailo8"


def test_why_not_custom_domain(hailo8):
    node = _node("Relu", [[1, 4, 8, 8]], [1, 4, 8, 8])
    node.domain = "com.example"
    assert "custom-domain" in why_not(node, hailo8)


def test_why_not_rank3(hailo8):
    reason = why_not(_node("Conv", [[1, 4, 8], [4, 4, 3]], [1, 4, 6], consts=(1,)), hailo8)
    assert reason.startswith("rank-3")


def test_why_not_dynamic_dim(hailo8):
    reason = why_not(_node("Relu", [["N", 4, 8, 8]], ["N", 4, 8, 8]), hailo8)
    assert reason.startswith("dynamic or unknown shape")


def test_why_not_unknown_shape(hailo8):
    reason = why_not(_node("Relu", [None], [1, 4, 8, 8]), hailo8)
    assert reason.startswith("dynamic or unknown shape")


def test_why_not_dtype(hailo8):
    reason = why_not(_node("Add", [[1, 4, 8, 8], [1, 4, 8, 8]], [1, 4, 8, 8], dtype=np.int64), hailo8)
    assert reason.startswith("dtype int64")


def test_why_not_weight_not_constant(hailo8):
    reason = why_not(_node("Conv", [[1, 4, 8, 8], [4, 4, 3, 3]], [1, 4, 6, 6]), hailo8)
    assert reason == "input 1 (v1) must be a constant"


def test_why_not_attr(hailo8):
    node = _node("Pad", [[1, 4, 8, 8], [8]], [1, 4, 10, 10], consts=(1,), attrs={"mode": "reflect"})
    assert why_not(node, hailo8).startswith("attribute mode='reflect'")
    node.attrs["mode"] = "constant"
    assert why_not(node, hailo8) is None


def test_why_not_gemm_transA(hailo8):
    node = _node("Gemm", [[4, 1], [4, 3]], [1, 3], consts=(1,), attrs={"transA": 1})
    assert why_not(node, hailo8).startswith("attribute transA=1")


def test_why_not_output_rank(hailo8):
    reason = why_not(_node("Reshape", [[1, 4, 8, 8], [4]], [1, 4, 8, 8], consts=(1,)), hailo8)
    assert reason.startswith("rank-4 output")


def test_why_not_group_policy(hailo8, tmp_path):
    grouped = _node("Conv", [[1, 8, 8, 8], [8, 4, 3, 3]], [1, 8, 6, 6], consts=(1,), attrs={"group": 2})
    depthwise = _node("Conv", [[1, 8, 8, 8], [8, 1, 3, 3]], [1, 8, 6, 6], consts=(1,), attrs={"group": 8})
    assert why_not(grouped, hailo8) == "grouped Conv (group=2) not allowed (policy dense_or_depthwise)"
    assert why_not(depthwise, hailo8) is None
    dense = load_target(
        str(
            target_toml(
                tmp_path, "dense", edit=lambda t: t.replace('groups = "dense_or_depthwise"', 'groups = "dense"', 1)
            )
        )
    )
    assert why_not(depthwise, dense) == "depthwise Conv (group=8) not allowed (policy dense)"
    anyg = load_target(
        str(
            target_toml(
                tmp_path, "anyg", edit=lambda t: t.replace('groups = "dense_or_depthwise"', 'groups = "any"', 1)
            )
        )
    )
    assert why_not(grouped, anyg) is None


def test_weight_graph_input_goes_to_host_in_pipeline(tmp_path, free_target):
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")]
    model = make_model(nodes, [vi("x", [1, 4, 8, 8]), vi("w", [4, 4, 3, 3])], [vi("y", [1, 4, 6, 6])])
    _, result = _rewrite(tmp_path, model, free_target)
    assert _rows(result)["conv"]["reason"] == "input 1 (w) must be a constant"


# ---- convexity -----------------------------------------------------------------------------


def test_cycle_trap_not_grouped_into_one_segment(tmp_path, hailo8):
    model = cycle_trap_model()
    path, result = _rewrite(tmp_path, model, hailo8)
    seg_of = {n: i for i, (_, names) in enumerate(_segments(result)) for n in names}
    assert seg_of["convA"] != seg_of["add"]
    assert seg_of["floorH"] not in (seg_of["convA"], seg_of["add"])
    assert nx.is_directed_acyclic_graph(_step_dag(result))
    # steps are listed in an order that runs: every input is produced earlier or is a plan input
    known = {"x"}
    for step in result.steps:
        assert set(step.inputs) <= known, step.name
        known |= set(step.outputs)
    _write_and_check(tmp_path, path, hailo8, result, model)


def test_adjacent_host_nodes_merge(tmp_path, hailo8):
    shape = [1, 8, 16, 16]
    nodes = [
        helper.make_node("Floor", ["x"], ["a"], name="floor"),
        helper.make_node("Ceil", ["a"], ["b"], name="ceil"),
        helper.make_node("Round", ["b"], ["y"], name="round"),
    ]
    model = make_model(nodes, [vi("x", shape)], [vi("y", shape)])
    _, result = _rewrite(tmp_path, model, hailo8)
    assert _segments(result) == [("host", ["floor", "ceil", "round"])]


def test_independent_hailo_branches_merge_into_one_segment(tmp_path, free_target):
    shape = [1, 8, 16, 16]
    nodes = [
        helper.make_node("Conv", ["x", "W1"], ["y1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Floor", ["x"], ["f"], name="floor"),
        helper.make_node("Conv", ["f", "W2"], ["y2"], pads=[1, 1, 1, 1], name="conv2"),
    ]
    model = make_model(
        nodes,
        [vi("x", shape)],
        [vi("y1", shape), vi("y2", shape)],
        [weight("W1", (8, 8, 3, 3)), weight("W2", (8, 8, 3, 3))],
    )
    path, result = _rewrite(tmp_path, model, free_target)
    segments = _segments(result)
    assert segments == [("host", ["floor"]), ("hailo", ["conv1", "conv2"])]
    _write_and_check(tmp_path, path, free_target, result, model)


def test_small_segment_goes_to_host_with_too_small_reason(tmp_path, hailo8):
    shape = [1, 8, 16, 16]
    nodes = [
        helper.make_node("Floor", ["x"], ["a"], name="floor"),
        helper.make_node("Relu", ["a"], ["b"], name="relu"),
        helper.make_node("Ceil", ["b"], ["y"], name="ceil"),
    ]
    model = make_model(nodes, [vi("x", shape)], [vi("y", shape)])
    _, result = _rewrite(tmp_path, model, hailo8)
    row = _rows(result)["relu"]
    assert row["device"] == "host" and row["reason"].startswith("too small for a device round trip")
    assert "roundtrip_macs 200000" in row["reason"]
    assert _segments(result) == [("host", ["floor", "relu", "ceil"])]


def test_big_conv_between_host_ops_stays_on_hailo(tmp_path, hailo8):
    shape = [1, 16, 32, 32]
    nodes = [
        helper.make_node("Floor", ["x"], ["a"], name="floor"),
        helper.make_node("Conv", ["a", "W"], ["b"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Ceil", ["b"], ["y"], name="ceil"),
    ]
    model = make_model(nodes, [vi("x", shape)], [vi("y", shape)], [weight("W", (16, 16, 3, 3))])
    _, result = _rewrite(tmp_path, model, hailo8)
    row = _rows(result)["conv"]
    assert row["device"] == "hailo" and row["reason"] == ""
    assert [d for d, _ in _segments(result)] == ["host", "hailo", "host"]
    assert result.partition.segments[1].macs == 16 * 32 * 32 * 16 * 9


# ---- --start-node / --end-node ------------------------------------------------------------


def test_start_node_cut(tmp_path, hailo8):
    model = conv_chain_model(n=3)
    path, result = _rewrite(tmp_path, model, hailo8, start_nodes=["conv1"])
    rows = _rows(result)
    for name in ("conv0", "relu0"):
        assert rows[name]["device"] == "host" and rows[name]["reason"] == "cut by --start-node/--end-node"
    assert all(rows[n]["device"] == "hailo" for n in ("conv1", "relu1", "conv2", "relu2"))
    assert [d for d, _ in _segments(result)] == ["host", "hailo"]
    _write_and_check(tmp_path, path, hailo8, result, model)


def test_end_node_cut(tmp_path, hailo8):
    model = conv_chain_model(n=3)
    _, result = _rewrite(tmp_path, model, hailo8, end_nodes=["relu1"])
    rows = _rows(result)
    assert all(rows[n]["device"] == "hailo" for n in ("conv0", "relu0", "conv1", "relu1"))
    for name in ("conv2", "relu2"):
        assert rows[name]["device"] == "host" and rows[name]["reason"] == "cut by --start-node/--end-node"


def test_start_and_end_node_cut(tmp_path, hailo8):
    _, result = _rewrite(tmp_path, conv_chain_model(n=3), hailo8, start_nodes=["conv1"], end_nodes=["relu1"])
    assert _segments(result) == [
        ("host", ["conv0", "relu0"]),
        ("hailo", ["conv1", "relu1"]),
        ("host", ["conv2", "relu2"]),
    ]


def test_unknown_cut_node_is_user_error(tmp_path, hailo8):
    with pytest.raises(UserError, match="--end-node 'nope'"):
        _rewrite(tmp_path, conv_chain_model(n=2), hailo8, end_nodes=["nope"])
