"""retile_segment: a written plan's hailo step re-tiled at half width, still exact."""
from __future__ import annotations

import json

from rewriter.plan.document import plan_document
from rewriter.plan.steps import PlannedStep
from rewriter.plan.writer import write_plan
from rewriter.target import TilingLimits
from rewriter.tiling import retile_segment

from .tiling_helpers import Chain, assert_plan_matches, check_tile_limits


def test_retile_halves_width_and_keeps_parity(tmp_path):
    model = Chain(96, 200).conv(96, k=3, pads=(1, 1)).act().conv(32, k=5, d=2, pads=(4, 4)).model()
    src = tmp_path / "m.onnx"
    src.write_bytes(model.SerializeToString())
    step = PlannedStep("hailo_0", "hailo", ["x"], [model.graph.output[0].name], model)
    out = tmp_path / "plan"
    write_plan(out, plan_document("hailo8", src, model, [step]), [step])
    new = retile_segment(out, "hailo_0", factor=0.5)
    doc = json.loads((out / "plan.json").read_text())
    assert "hailo_0" not in {s["name"] for s in doc["steps"]}
    assert new and set(new) <= {s["name"] for s in doc["steps"]}
    assert check_tile_limits(out, TilingLimits(channels=48, width=100, tile_when_channels_above_at_width=0)) == len(new)
    assert_plan_matches(model, out)
    again = retile_segment(out, new[0], factor=0.5)   # a tile can be re-tiled in place too
    assert again
    assert_plan_matches(model, out)
