"""Targeted cases: triggers, intermediate padding (masks), sharing, host fallback, plan fields."""
from __future__ import annotations

import json

from onnx import helper

from rewriter.plan.steps import PlannedStep
from rewriter.target import TilingLimits
from rewriter.tiling import tile_steps
from rewriter.tiling.graph import SegGraph
from rewriter.tiling.receptive import needs
from rewriter.tiling.temporal import intervals
from rewriter.tiling.tiler import plan_stages

from .tiling_helpers import Chain, assert_plan_matches, check_tile_limits, write_tiled_plan

WIDE = TilingLimits(channels=64, width=64, tile_when_channels_above_at_width=256)


def _step(model):
    return PlannedStep("hailo_0", "hailo", [i.name for i in model.graph.input],
                       [o.name for o in model.graph.output], model)


def test_fitting_step_is_returned_unchanged():
    model = Chain(8, 60).conv(16).act().model()
    step = _step(model)
    steps, reports = tile_steps([step], WIDE)
    assert steps == [step] and not reports[0].tiled


def test_channels_trigger_only_above_width_unless_forced():
    model = Chain(8, 200).conv(128, k=1, pads=(0, 0)).model()   # 128 channels at width 200 <= 256
    limits = TilingLimits(channels=64, width=512, tile_when_channels_above_at_width=256)
    assert tile_steps([_step(model)], limits)[0][0].name == "hailo_0"
    steps, reports = tile_steps([_step(model)], limits, force=True)
    assert reports[0].tiled and "channels" in reports[0].reason
    assert reports[0].stages[0]["grid"] == [2, 1]


def test_receptive_intervals_accumulate_across_layers():
    model = Chain(4, 100).conv(4, k=3, d=2, pads=(2, 2)).conv(4, k=5, d=1, s=2, pads=(2, 2)).model()
    g = SegGraph(model)
    (stage, plan), = plan_stages(g, TilingLimits(64, 1000, 0))
    iv = intervals(g, stage, (10, 20))
    assert iv[g.nodes[1].output[0]] == (10, 20)
    assert iv[g.nodes[0].output[0]] == (18, 41)          # [10*2-2, 19*2-2+4+1)
    assert iv["x"] == (16, 43)                           # k=3, d=2, pad 2: 2 further each side
    assert needs(g, 0, (0, 1)) == {"x": (-2, 3)}


def test_intermediate_padding_is_masked_in_edge_tiles_only(tmp_path):
    # one stage of three padded convs: deeper layers must see zeros, not computed halo values
    model = (Chain(8, 300, seed=3).conv(16, k=3, d=4, pads=(4, 4)).act("PRelu")
             .conv(16, k=5, d=2, pads=(8, 0)).act().conv(8, k=3, pads=(0, 2)).model())
    limits = TilingLimits(channels=64, width=80, tile_when_channels_above_at_width=0)
    out = tmp_path / "plan"
    steps, reports = write_tiled_plan(model, limits, out)
    assert len(reports[0].stages) == 1 and reports[0].stages[0]["nodes"] == 5
    tiles = [s for s in steps if s.device == "hailo"]
    masked = [s for s in tiles if any(n.op_type == "Mul" for n in s.model.graph.node)]
    assert 0 < len(masked) < len(tiles)                # edge tiles carry masks, interior ones not
    assert_plan_matches(model, out)
    check_tile_limits(out, limits, {"Conv", "PRelu", "Relu", "Mul", "Slice"})


def test_identical_interior_tiles_share_one_file(tmp_path):
    model = Chain(8, 1000).conv(8, k=3, pads=(1, 1)).act().conv(8, k=3, pads=(1, 1)).model()
    limits = TilingLimits(channels=64, width=100, tile_when_channels_above_at_width=0)
    out = tmp_path / "plan"
    write_tiled_plan(model, limits, out)
    doc = json.loads((out / "plan.json").read_text())
    hailo = [s for s in doc["steps"] if s["device"] == "hailo"]
    files = {s["model"] for s in hailo}
    assert len(hailo) >= 10 and len(files) == 3        # first, interior, last
    assert len(list((out / "segments").glob("*.onnx"))) == 3
    t = hailo[1]["tile"]
    assert t["grid"] == [1, len(hailo)] and t["index"] == [0, 1] and t["distinct"] == 3
    assert t["offset"] == hailo[0]["tile"]["width"] and t["halo"] == 4
    assert_plan_matches(model, out)


def test_channel_blocks_sum_partial_products_bias_once(tmp_path):
    model = Chain(150, 90).conv(130, k=3, pads=(1, 1)).act("PRelu").conv(150, k=1, pads=(0, 0), depthwise=True).model()
    limits = TilingLimits(channels=64, width=512, tile_when_channels_above_at_width=0)
    out = tmp_path / "plan"
    steps, reports = write_tiled_plan(model, limits, out)
    kinds = [s["kind"] for s in reports[0].stages]
    assert kinds[0] == "partial" and reports[0].stages[0]["grid"] == [9, 1]   # 3 out x 3 in blocks
    doc = json.loads((out / "plan.json").read_text())
    assert any(s["kind"] == "sum" for s in doc["steps"])
    biased = [s for s in steps if s.device == "hailo" and s.extra["tile"].get("block", {}).get("in") == 0]
    unbiased = [s for s in steps if s.device == "hailo" and s.extra["tile"].get("block", {}).get("in", 0) > 0]
    assert all(len(s.model.graph.node[0].input) == 3 for s in biased)
    assert all(len(s.model.graph.node[0].input) == 2 for s in unbiased)
    assert_plan_matches(model, out)
    check_tile_limits(out, limits)


def test_untileable_nodes_go_to_host(tmp_path):
    # a global mean (ReduceMean over C and W) subtracted: not time-local -> host ONNX step
    chain = Chain(8, 200).conv(16, k=3, pads=(1, 1))
    red = helper.make_node("ReduceMean", [chain.cur], ["mean"], name="mean", axes=[1, 2, 3], keepdims=1)
    sub = helper.make_node("Sub", [chain.cur, "mean"], ["centered"], name="center")
    chain.nodes += [red, sub]
    chain.cur = "centered"
    chain.conv(8, k=3, pads=(1, 1))
    model = chain.model()
    limits = TilingLimits(channels=64, width=64, tile_when_channels_above_at_width=0)
    out = tmp_path / "plan"
    steps, reports = write_tiled_plan(model, limits, out)
    assert [s["kind"] for s in reports[0].stages] == ["tile", "host", "tile"]
    assert any(s.device == "host" and s.extra.get("kind", "onnx") == "onnx" for s in steps)
    assert_plan_matches(model, out)
    check_tile_limits(out, limits)


def test_conv_transpose_and_stride_tiles(tmp_path):
    model = (Chain(4, 150, seed=5).conv(16, k=4, s=2, pads=(1, 2)).act()
             .convT(8, k=6, s=3, pads=(1, 0), out_pad=2).act().model())
    limits = TilingLimits(channels=8, width=48, tile_when_channels_above_at_width=0)
    out = tmp_path / "plan"
    write_tiled_plan(model, limits, out)
    assert_plan_matches(model, out)
    check_tile_limits(out, limits)


def test_plan_other_steps_untouched_and_order_kept(tmp_path):
    model = Chain(8, 300).conv(8, k=3, pads=(1, 1)).model()
    host = PlannedStep("host_0", "host", ["a"], ["x"], None, {"kind": "slice"})
    steps, _ = tile_steps([host, _step(model)], WIDE)
    assert steps[0] is host and all(s.name.startswith("hailo_0_s") for s in steps[1:])
    produced = {o for s in steps for o in s.outputs}
    assert model.graph.output[0].name in produced


def test_conv_transpose_stride_above_kernel(tmp_path):
    # stride 3 > kernel 2: output columns without any contribution; tiles must still cover them
    model = Chain(4, 120, seed=7).convT(6, k=2, s=3, pads=(1, 0), out_pad=1).act().model()
    limits = TilingLimits(channels=64, width=40, tile_when_channels_above_at_width=0)
    out = tmp_path / "plan"
    write_tiled_plan(model, limits, out)
    assert_plan_matches(model, out)
    check_tile_limits(out, limits)
