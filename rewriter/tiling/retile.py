"""Re-tile one hailo step of a written plan narrower (`rewrite compile --retry-shrink`)."""
from __future__ import annotations

from pathlib import Path

import onnx

from rewriter.plan.document import finalize
from rewriter.plan.steps import PlannedStep, step_entry
from rewriter.plan.writer import read_plan, write_plan_json, write_segment_files
from rewriter.target import TilingLimits
from rewriter.tiling.graph import SegGraph
from rewriter.tiling.limits import CONVS, conv_channels
from rewriter.tiling.tiler import tile_segment


def shrunk_limits(g: SegGraph, factor: float) -> TilingLimits:
    """`factor` x the step's widest tensor; channels too when a conv is wider than 64."""
    width = max(s[-1] for s in g.shapes.values() if s and len(s) == 4)
    chans = max([max(conv_channels(g, i)) for i, n in enumerate(g.nodes) if n.op_type in CONVS] or [1])
    channels = max(1, int(chans * factor)) if chans > 64 else chans
    return TilingLimits(channels=channels, width=max(1, int(width * factor)), tile_when_channels_above_at_width=0)


def bind_names(model: onnx.ModelProto, inputs: list[str], outputs: list[str]) -> onnx.ModelProto:
    """Steps bind positionally (shared tile files): give the graph the step's tensor names."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    rename = {v.name: new for v, new in zip(list(g.input) + list(g.output), list(inputs) + list(outputs))}
    for v in list(g.input) + list(g.output) + list(g.value_info):
        v.name = rename.get(v.name, v.name)
    for node in g.node:
        node.input[:] = [rename.get(x, x) for x in node.input]
        node.output[:] = [rename.get(x, x) for x in node.output]
    return model


def retile_segment(out_dir, step_name: str, factor: float = 0.5) -> list[str]:
    """Replace hailo step `step_name` of OUT/plan.json by tiles at `factor` of its width (and
    channels above 64); writes the new segment files, then plan.json atomically. Returns the new
    hailo step names. Calibration files are not carried over (the tiles see intermediate tensors)."""
    out_dir = Path(out_dir)
    plan = read_plan(out_dir)
    pos = next((i for i, s in enumerate(plan["steps"]) if s["name"] == step_name), None)
    if pos is None:
        raise KeyError(f"no step {step_name!r} in {out_dir / 'plan.json'}")
    old = plan["steps"][pos]
    if old.get("device") != "hailo" or old.get("kind", "onnx") != "onnx":
        raise ValueError(f"step {step_name!r} is not a hailo ONNX step")
    model = bind_names(onnx.load(str(out_dir / old["model"])), old["inputs"], old["outputs"])
    g = SegGraph(model)
    step = PlannedStep(step_name, "hailo", old["inputs"], old["outputs"], model)
    new, report = tile_segment(step, shrunk_limits(g, factor), g, f"retile x{factor}")
    write_segment_files(out_dir, new)
    plan["steps"][pos:pos + 1] = [step_entry(s) for s in new]
    finalize(plan, out_dir)  # the new tensors declared, the new files hashed
    write_plan_json(out_dir, plan)
    return [s.name for s in new if s.device == "hailo"]
