"""Targeted cases: when to tile, masks as model inputs, channel blocks inside one model, host
stages, strides and ConvTranspose phases, the per-HEF budget, batch > 1."""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper

from rewriter.plan.steps import PlannedStep
from rewriter.target import Resources, TilingLimits
from rewriter.tiling import tile_steps
from rewriter.tiling.graph import SegGraph
from rewriter.tiling.receptive import needs
from rewriter.tiling.stages import form
from rewriter.tiling.temporal import intervals

from .tiling_helpers import Chain, assert_plan_matches, check_tile_limits, write_tiled_plan

STRICT = TilingLimits(channels=64, width=64)


def _step(model):
    return PlannedStep(
        "hailo_0", "hailo", [i.name for i in model.graph.input], [o.name for o in model.graph.output], model
    )


def _doc(out):
    return json.loads((out / "plan.json").read_text())


def _device(out):
    return [s for s in _doc(out)["steps"] if s["device"] == "hailo"]


def test_a_segment_within_the_resources_is_returned_unchanged():
    # 2-D, H does not count: 64 channels x 160 wide x 160 high is 10k values per row
    model = Chain(16, 160).conv(64, k=3, pads=(1, 1)).act().model()
    for v in list(model.graph.input) + list(model.graph.output) + list(model.graph.value_info):
        v.type.tensor_type.shape.dim[2].dim_value = 160
    step = _step(model)
    steps, reports = tile_steps([step], TilingLimits())
    assert steps == [step] and not reports[0].tiled


def test_row_budget_and_strict_limits_trigger_tiling():
    model = Chain(8, 200).conv(128, k=1, pads=(0, 0)).model()  # 128 x 200 = 25,600 per row
    assert not tile_steps([_step(model)], TilingLimits())[1][0].tiled
    small = TilingLimits(resources=Resources(layer_row_values=10_000))
    steps, reports = tile_steps([_step(model)], small)
    assert reports[0].tiled and "per row" in reports[0].reason
    assert reports[0].stages[0]["tiles"] > 1 and reports[0].stages[0]["block"] is None
    steps, reports = tile_steps([_step(model)], TilingLimits(channels=64))
    assert reports[0].tiled and "channels" in reports[0].reason and reports[0].stages[0]["block"] == 64


def test_consume_lets_tiled_models_go_and_tiles_the_same():
    """consume=True (the pipeline's): a replaced step drops its model once tiled (its memory then
    serves the tile models); steps kept as they are keep theirs; the steps made are the same."""
    wide = Chain(8, 200).conv(128, k=3, pads=(1, 1)).act().conv(128, k=1, pads=(0, 0)).model()
    narrow = Chain(8, 40).conv(16, k=3, pads=(1, 1)).model()

    def steps():
        kept = PlannedStep("hailo_1", "hailo", ["x"], ["y"], narrow)
        return [_step(wide), kept]

    plain, _ = tile_steps(steps(), STRICT)
    given = steps()
    consumed, reports = tile_steps(given, STRICT, consume=True)
    assert reports[0].tiled and not reports[1].tiled
    assert given[0].model is None and given[1].model is narrow
    assert [(s.name, s.inputs, s.outputs, s.extra) for s in consumed] == [
        (s.name, s.inputs, s.outputs, s.extra) for s in plain
    ]
    assert [s.model.SerializeToString() for s in consumed] == [s.model.SerializeToString() for s in plain]


def test_receptive_intervals_accumulate_across_layers():
    model = Chain(4, 100).conv(4, k=3, d=2, pads=(2, 2)).conv(4, k=5, d=1, s=2, pads=(2, 2)).model()
    g = SegGraph(model)
    (stage,) = form(g)
    iv = intervals(g, stage, (10, 20))
    assert iv[g.nodes[1].output[0]] == (10, 20)
    assert iv[g.nodes[0].output[0]] == (18, 41)  # [10*2-2, 19*2-2+4+1)
    assert iv["x"] == (16, 43)  # k=3, d=2, pad 2: 2 further each side
    assert needs(g, 0, (0, 1)) == {"x": (-2, 3)}


def test_edge_padding_comes_from_mask_inputs_and_all_tiles_share_one_model(tmp_path):
    # one stage of three padded convs: deeper layers must see zeros, not computed halo values
    model = (
        Chain(8, 300, seed=3)
        .conv(16, k=3, d=4, pads=(4, 4))
        .act("PRelu")
        .conv(16, k=5, d=2, pads=(8, 0))
        .act()
        .conv(8, k=3, pads=(0, 2))
        .model()
    )
    out = tmp_path / "plan"
    steps, reports = write_tiled_plan(model, STRICT, out)
    (step,) = _device(out)
    tiles = step["tiles"]
    assert len(steps) == 1 and tiles["count"] > 3 and reports[0].stages[0]["nodes"] == 5
    masks = [b["mask"] for b in tiles["inputs"] if "mask" in b]
    assert len(masks) == 2 and {m["length"] for m in masks} == {300}  # before the 2nd and the 3rd conv
    assert len(list((out / "segments").glob("*.onnx"))) == 1
    assert_plan_matches(model, out)
    check_tile_limits(out, STRICT, {"Conv", "PRelu", "Relu", "Mul", "Slice"})


def test_masks_are_skipped_where_zeros_survive(tmp_path):
    # the stage input is zero-filled outside [0, W), and Relu(0) == 0: the 2nd conv needs no mask,
    # but the 3rd conv reads a conv output (nonzero outside [0, W)) and needs one
    model = Chain(8, 300, seed=4).act("Relu").conv(8, k=3, pads=(1, 1)).conv(8, k=3, pads=(1, 1)).model()
    out = tmp_path / "plan"
    write_tiled_plan(model, STRICT, out)
    (step,) = _device(out)
    assert sum("mask" in b for b in step["tiles"]["inputs"]) == 1
    assert_plan_matches(model, out)


def test_channel_blocks_sit_side_by_side_in_one_model_bias_once(tmp_path):
    model = Chain(150, 90).conv(130, k=3, pads=(1, 1)).act("PRelu").conv(150, k=1, pads=(0, 0), depthwise=True).model()
    out = tmp_path / "plan"
    steps, reports = write_tiled_plan(model, TilingLimits(channels=64, width=512), out)
    (step,) = steps
    nodes = step.model.graph.node
    convs = [n for n in nodes if n.op_type == "Conv"]
    assert len(convs) == 3 * 3 + 3  # 3 out x 3 in partial convs, then 3 depthwise blocks
    partial = [n for n in convs if "__i" in n.name]
    assert sum(len(n.input) == 3 for n in partial) == 3  # the bias on one input block per output block
    assert sum(n.op_type == "Add" for n in nodes) == 3 * 2  # partial sums
    assert not any(n.op_type == "Concat" for n in nodes)  # blocks stay blocks up to the outputs
    outs = step.extra["tiles"]["outputs"]
    assert [b["channels"] for b in outs] == [[0, 64], [64, 128], [128, 130]]  # depthwise keeps 130
    assert_plan_matches(model, out)
    check_tile_limits(out, TilingLimits(channels=64, width=512))


def test_untileable_nodes_go_to_host_between_device_stages(tmp_path):
    # a global mean (ReduceMean over C and W) subtracted: not time-local -> host ONNX step
    chain = Chain(8, 200).conv(16, k=3, pads=(1, 1))
    red = helper.make_node("ReduceMean", [chain.cur], ["mean"], name="mean", axes=[1, 2, 3], keepdims=1)
    sub = helper.make_node("Sub", [chain.cur, "mean"], ["centered"], name="center")
    chain.nodes += [red, sub]
    chain.cur = "centered"
    chain.conv(8, k=3, pads=(1, 1))
    model = chain.model()
    out = tmp_path / "plan"
    steps, reports = write_tiled_plan(model, STRICT, out)
    assert [s["kind"] for s in reports[0].stages] == ["device", "host", "device"]
    assert [s.device for s in steps] == ["hailo", "host", "hailo"]
    assert_plan_matches(model, out)
    check_tile_limits(out, STRICT)


def test_conv_transpose_and_stride_keep_one_model(tmp_path):
    model = (
        Chain(4, 150, seed=5)
        .conv(16, k=4, s=2, pads=(1, 2))
        .act()
        .convT(8, k=6, s=3, pads=(1, 0), out_pad=2)
        .act()
        .model()
    )
    limits = TilingLimits(channels=8, width=48)
    out = tmp_path / "plan"
    write_tiled_plan(model, limits, out)
    (step,) = _device(out)
    assert step["tiles"]["outputs"][0]["width"] % 3 == 0  # ConvTranspose phases aligned
    assert_plan_matches(model, out)
    check_tile_limits(out, limits)


def test_conv_transpose_stride_above_kernel(tmp_path):
    # stride 3 > kernel 2: output columns without any contribution; tiles must still cover them
    model = Chain(4, 120, seed=7).convT(6, k=2, s=3, pads=(1, 0), out_pad=1).act().model()
    limits = TilingLimits(channels=64, width=40)
    out = tmp_path / "plan"
    write_tiled_plan(model, limits, out)
    assert_plan_matches(model, out)
    check_tile_limits(out, limits)


def test_hef_budget_cuts_a_stage_into_consecutive_models(tmp_path):
    chain = Chain(8, 300, seed=9)
    for _ in range(6):
        chain.conv(8, k=3, pads=(1, 1)).act()
    model = chain.model()
    limits = TilingLimits(width=100, resources=Resources(hef_layers=4))
    out = tmp_path / "plan"
    steps, reports = write_tiled_plan(model, limits, out)
    assert len(steps) > 1 and all(s.device == "hailo" for s in steps)
    assert all(st["layers"] <= 4 for st in reports[0].stages)
    assert_plan_matches(model, out)
    check_tile_limits(out, limits)


def test_batch_entries_are_frames_of_the_same_call(tmp_path):
    # a decoder applied to two sources at once: [2, C, 1, W]
    rng = np.random.default_rng(1)
    w = onnx.numpy_helper.from_array((rng.standard_normal((6, 1, 1, 8)) * 0.3).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="dec", kernel_shape=[1, 8], strides=[1, 4])],
        "dec",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6, 1, 100])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 1, 1, 404])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    out = tmp_path / "plan"
    write_tiled_plan(model, TilingLimits(width=64), out)
    (step,) = _device(out)
    assert step["tiles"]["count"] > 1
    assert_plan_matches(model, out)


def test_plan_other_steps_untouched_and_order_kept():
    model = Chain(8, 300).conv(8, k=3, pads=(1, 1)).model()
    host = PlannedStep("host_0", "host", ["a"], ["x"], None, {"kind": "slice"})
    steps, _ = tile_steps([host, _step(model)], STRICT)
    assert steps[0] is host and all(s.name.startswith("hailo_0_s") for s in steps[1:])
    assert model.graph.output[0].name in {o for s in steps for o in s.outputs}


def test_elementwise_ops_tile_by_the_shared_op_classes_and_reciprocal_stays_off_the_tiles(tmp_path):
    """Which elementwise ops run inside tiles comes from rewriter/ir/opfacts.py: every unary op does
    (Sin, Floor: pointwise and finite), except those that turn the zeros outside [0, W) into inf
    (Reciprocal): a 0 mask times inf is NaN. Tiled plans of both match the model."""
    from rewriter.tiling.limits import kind

    for op, expected in (("Sin", "tile"), ("Floor", "tile"), ("Reciprocal", "host")):
        model = Chain(8, 200).conv(8, k=3, pads=(1, 1)).act(op).conv(8, k=3, pads=(1, 1)).model()
        g = SegGraph(model)
        assert kind(g, 1) == expected, op
        out = tmp_path / op
        write_tiled_plan(model, STRICT, out)
        assert_plan_matches(model, out)


def test_whole_weights_are_copied_as_the_bytes_from_array_would_write(monkeypatch):
    """A tiled model copies the segment's initializers it uses whole (conv weights and biases of
    unsplit channels, per-channel constants) instead of re-encoding them: the same bytes. One with
    more than dims/type/name/raw data (a doc_string) is re-encoded, as before."""
    from rewriter.ir import build

    model = Chain(16, 900).conv(24, k=3, pads=(1, 1)).act("PRelu").conv(8, k=1, pads=(0, 0)).model()
    marked = model.graph.initializer[0]
    marked.doc_string = "not what from_array writes"
    limits = TilingLimits(width=256)  # time tiles only: every channel range is whole

    def tiled() -> list[bytes]:
        steps, _ = tile_steps([_step(model)], limits)
        return [s.model.SerializeToString(deterministic=True) for s in steps if s.model is not None]

    asked = {}
    original = build._raw_copy_is_from_array

    def recording(t, v):
        asked[t.name] = original(t, v)
        return asked[t.name]

    monkeypatch.setattr(build, "_raw_copy_is_from_array", recording)
    fast = tiled()
    monkeypatch.setattr(build, "_raw_copy_is_from_array", lambda t, v: False)
    assert fast == tiled()
    assert len(fast) == 1 and set(asked) == {t.name for t in model.graph.initializer}
    assert asked.pop(marked.name) is False  # re-encoded
    assert all(asked.values())  # the others copied whole


def test_a_piece_with_outputs_at_two_widths_is_cut_into_runs_not_single_nodes(tmp_path):
    """UNet-like: a (W) -> strided conv -> b (W/2) -> ConvTranspose -> u (W), Concat(a, u) -> conv,
    and a global mean of b on the host gating the result. The level-0 piece writes b (W/2, for
    the host) and the conv (W): one tile geometry per stage needs one output width. It becomes
    three stages, [conv, relu] [conv/2, relu] [convT, relu, concat, conv], not a stage per node
    as the first cut (before the producer of the first other-width output) left it."""
    chain = Chain(4, 300, seed=11).conv(8, k=3, pads=(1, 1)).act().mark("a")
    chain.conv(16, k=4, s=2, pads=(1, 1)).act().mark("b")
    chain.convT(8, k=2, s=2).act()
    a, b, u = chain.saved["a"][0], chain.saved["b"][0], chain.cur
    chain.nodes += [
        helper.make_node("Concat", [a, u], ["cat"], name="cat", axis=1),
        helper.make_node("ReduceMean", [b], ["gate"], name="gate", axes=[1, 2, 3], keepdims=1),
    ]
    chain.cur, chain.c = "cat", 16
    chain.conv(8, k=3, pads=(1, 1))
    chain.nodes.append(helper.make_node("Mul", [chain.cur, "gate"], ["gated"], name="gated"))
    chain.cur = "gated"
    model = chain.model()
    limits = TilingLimits(width=64)
    out = tmp_path / "plan"
    steps, reports = write_tiled_plan(model, limits, out)
    kinds = [(st["kind"], st["nodes"]) for st in reports[0].stages]
    assert kinds[:3] == [("device", 2), ("device", 2), ("device", 4)], kinds
    assert kinds[3:] and all(k == "host" for k, _ in kinds[3:]), kinds  # the mean, and the gating Mul
    assert_plan_matches(model, out)
    check_tile_limits(out, limits)
