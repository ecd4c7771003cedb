"""Re-tile one hailo step of a written plan narrower (`rewrite compile --retry-shrink`), with
calibration data for the new pieces, written through the validated plan writer.

* An untiled step is tiled with the row budget at `factor` x its widest layer: device stages and
  host steps as in `rewrite`. Their calibration is re-propagated: the new steps run (onnxruntime)
  on the step's recorded calibration inputs and each new device step keeps what its model sees.
* A tiled step keeps its stage: its model is cut into `1/factor` sub-tiles per tile (and halved
  channel blocks when its convs have more than 64 channels), still one model, one batched call.
  The new windows are windows of the old ones, so calibration is sliced from the step's own.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx

from rewriter.plan.atomic import write_json_atomic
from rewriter.plan.calibration import capture, model_input_names, write_calib
from rewriter.plan.document import declare_tensors, finalize
from rewriter.plan.steps import PlannedStep, segment_file, step_entry
from rewriter.plan.writer import write_plan, write_plan_json, write_segment_files
from rewriter.target import Resources, TilingLimits, load_target
from rewriter.tiling.fit import Fit
from rewriter.tiling.graph import SegGraph
from rewriter.tiling.limits import CONVS, conv_channels, kind, rows
from rewriter.tiling.stages import make
from rewriter.tiling.temporal import align, geometry
from rewriter.tiling.tilemodel import build
from rewriter.tiling.tiler import tile_segment
from runtime import schema
from runtime.calib import load_calib_file


class RetileError(ValueError):
    """The step cannot be re-tiled narrower."""


def bind_names(model: onnx.ModelProto, inputs: list[str], outputs: list[str]) -> onnx.ModelProto:
    """Steps bind positionally: give the graph the step's tensor names."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    rename = {v.name: new for v, new in zip(list(g.input) + list(g.output), list(inputs) + list(outputs))}
    for v in list(g.input) + list(g.output) + list(g.value_info):
        v.name = rename.get(v.name, v.name)
    for node in g.node:
        node.input[:] = [rename.get(x, x) for x in node.input]
        node.output[:] = [rename.get(x, x) for x in node.output]
    return model


def _max_row(g: SegGraph) -> int:
    return max([g.channels(x) * g.width(x) for i in range(len(g.nodes)) for x in rows(g, i)] or [1])


def _resources(plan: dict) -> Resources:
    try:
        return load_target(plan.get("target") or "hailo8").tiling.resources
    except Exception:  # noqa: BLE001 - a custom target not available here: the defaults
        return Resources()


# ---- an untiled step: tile it ---------------------------------------------------------------
def _tile_untiled(plan: schema.PlanSpec, spec, factor: float) -> tuple[list[PlannedStep], dict]:
    model = bind_names(onnx.load_from_string(plan.read_file(spec.model_path)), spec.inputs, spec.outputs)
    g = SegGraph(model)
    res = _resources(plan.doc)
    limits = TilingLimits(resources=replace(res, layer_row_values=max(1, int(_max_row(g) * factor)), min_tile_width=1))
    step = PlannedStep(spec.name, "hailo", list(spec.inputs), list(spec.outputs), model)
    new, _ = tile_segment(step, limits, g, f"retile x{factor}")
    if not any(s.device == "hailo" for s in new):
        raise RetileError(f"step '{spec.name}': nothing in it can run in tiles (it would all go to the host)")
    calib = _propagated(plan, spec, new) if spec.calib_path is not None else {}
    return new, calib


def _propagated(plan: schema.PlanSpec, spec, new: list[PlannedStep]) -> dict:
    """Run the new steps on the old step's calibration inputs; what each new device step's model sees."""
    from runtime import Plan

    tensors = {name: {"shape": list(t.shape), "dtype": t.dtype} for name, t in plan.tensors.items()}
    sig = [(x, tensors[x]["shape"]) for x in spec.inputs]
    samples = load_calib_file(spec.calib_path, sig, spec.name, plan.read_file)
    sub = {
        "format": schema.FORMAT,
        "version": schema.VERSION,
        "target": plan.target,
        "inputs": [{"name": x, "shape": tensors[x]["shape"], "dtype": tensors[x]["dtype"]} for x in spec.inputs],
        "outputs": [{"name": y, "shape": tensors[y]["shape"], "dtype": tensors[y]["dtype"]} for y in spec.outputs],
        "steps": [step_entry(s) for s in new],
    }
    models = {id(e): s.model for e, s in zip(sub["steps"], new)}
    sub["tensors"] = declare_tensors(sub["inputs"], sub["steps"], lambda e: models[id(e)])
    sub["files"] = {}
    with tempfile.TemporaryDirectory(prefix="retile-") as tmp:
        root = Path(tmp) / "sub"
        write_plan(root, sub, new)
        with Plan.load(root, backend="onnxruntime") as sub_plan:
            feeds = [dict(zip(spec.inputs, sample)) for sample in samples]
            wanted = sub_plan.spec.hailo_steps
            got = capture(sub_plan, feeds, wanted)
            return {s.name: (model_input_names(sub_plan, s), got[s.name]) for s in wanted}


# ---- a tiled step: sub-tiles of its tiles ----------------------------------------------------
def _frame_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """The tile model with batch 1 (for analysis: every shape static)."""
    m = onnx.ModelProto.FromString(model.SerializeToString())
    for v in list(m.graph.input) + list(m.graph.output):
        v.type.tensor_type.shape.dim[0].dim_value = 1
    del m.graph.value_info[:]
    return m


def _subtile(plan: schema.PlanSpec, spec, factor: float) -> tuple[list[PlannedStep], dict]:
    t = spec.tiles
    model = onnx.load_from_string(plan.read_file(spec.model_path))
    g = SegGraph(_frame_model(model))
    st = make(g, "tile", list(range(len(g.nodes))))
    if any(kind(g, i) != "tile" for i in st.nodes):
        raise RetileError(f"step '{spec.name}': its model holds nodes that cannot be tiled again")
    tw = t.outputs[0].width
    f = max(2, round(1 / factor))
    a = align(g, st)
    while f <= tw and (tw % f or (tw // f) % a):
        f += 1
    if f > tw:
        raise RetileError(f"step '{spec.name}': tile width {tw} cannot be split further")
    widest = max([max(conv_channels(g, i)) for i, n in enumerate(g.nodes) if n.op_type in CONVS] or [1])
    block = widest // 2 if widest > 64 else None
    geo = geometry(g, st, tw // f)
    if geo is None:
        raise RetileError(f"step '{spec.name}': no uniform sub-tiling at width {tw // f}")
    sm = build(g, st, Fit(block, geo), spec.name)
    length = t.outputs[0].length
    count = math.ceil(length / geo.tw)
    ins = [_compose_input(t.inputs[g.inputs.index(b["tensor"])], b, f, spec.name) for b in sm.inputs]
    outs = []
    for b in sm.outputs:
        parent = t.outputs[g.outputs.index(b["tensor"])]
        c0 = parent.c0 + b["channels"][0]
        outs.append(
            {
                "tensor": parent.tensor,
                "channels": [c0, c0 + b["channels"][1] - b["channels"][0]],
                "width": geo.tw,
                "length": parent.length,
            }
        )
    tiles = {**spec.raw["tiles"], "count": count, "inputs": ins, "outputs": outs, "block": block}
    step = PlannedStep(
        f"{spec.name}_x{f}",
        "hailo",
        list(spec.inputs),
        list(spec.outputs),
        sm.model,
        {k: v for k, v in spec.raw.items() if k in ("nodes",)}
        | {"layers": sm.layer_count, "weight_bytes": sm.weight_bytes, "tiles": tiles},
    )
    calib = {}
    if spec.calib_path is not None:
        calib[step.name] = ([v.name for v in sm.model.graph.input], _sliced(plan, spec, g, sm.inputs, f))
    return [step], calib


def _compose_input(parent, b: dict, f: int, name: str) -> dict:
    """Window b of the model's input (sub-tile u of tile t) as a window of the plan tensor:
    position start + t*step + s + u*s' with step == f*s', affine in the new index t*f + u."""
    s, sub_step, width = b["start"], b["step"], b["width"]
    if parent.step != f * sub_step:
        raise RetileError(f"step '{name}': sub-tiles do not advance evenly (step {parent.step} vs {f} x {sub_step})")
    if isinstance(parent, schema.Mask):
        return {
            "mask": {
                "length": parent.length,
                "start": parent.start + s,
                "step": sub_step,
                "width": width,
                "height": parent.height,
            }
        }
    c0 = parent.c0 + b["channels"][0]
    return {
        "tensor": parent.tensor,
        "channels": [c0, c0 + b["channels"][1] - b["channels"][0]],
        "start": parent.start + s,
        "step": sub_step,
        "width": width,
    }


def _sliced(plan: schema.PlanSpec, spec, g: SegGraph, bindings: list[dict], f: int) -> list[np.ndarray]:
    """The new model's calibration: sub-windows of the old model's calibration frames."""
    sig = [(x, [1] + list(g.shape(x))[1:]) for x in g.inputs]
    samples = load_calib_file(spec.calib_path, sig, spec.name, plan.read_file)
    old = [np.concatenate([s[k] for s in samples]) for k in range(len(g.inputs))]  # NCHW frames
    arrays = []
    for b in bindings:
        x = old[g.inputs.index(b["tensor"])][:, b["channels"][0] : b["channels"][1]]
        parts = [x[..., b["start"] + u * b["step"] : b["start"] + u * b["step"] + b["width"]] for u in range(f)]
        sub = np.stack(parts, axis=1).reshape(-1, *parts[0].shape[1:])  # frame-major, then sub-tile
        arrays.append(np.ascontiguousarray(sub.transpose(0, 2, 3, 1)))
    return arrays


# ---- the entry point -----------------------------------------------------------------------
def retile_segment(out_dir, step_name: str, factor: float = 0.5) -> list[str]:
    """Replace hailo step `step_name` of OUT/plan.json by narrower pieces (see the module doc);
    writes the new segment and calibration files, then plan.json through the validated writer.
    Returns the new hailo step names."""
    out_dir = Path(out_dir)
    doc, path, _ = schema.read_plan_json(out_dir)
    plan = schema.parse_spec(doc, path)
    pos = next((i for i, s in enumerate(plan.steps) if s.name == step_name), None)
    if pos is None:
        raise KeyError(f"no step {step_name!r} in {path}")
    step = plan.steps[pos]
    if step.device != "hailo" or step.kind != "onnx":
        raise ValueError(f"step {step_name!r} is not a hailo ONNX step")
    new, calib = (_subtile if step.tiles is not None else _tile_untiled)(plan, step, factor)
    write_segment_files(out_dir, new)
    entries = [step_entry(s) for s in new]
    for entry in entries:
        if entry["name"] in calib:
            write_calib(out_dir, entry, *calib[entry["name"]])
    doc["steps"][pos : pos + 1] = entries
    finalize(doc, out_dir)  # the new tensors declared, the new files hashed
    _validated(out_dir, doc, new)
    write_plan_json(out_dir, doc)
    return [s.name for s in new if s.device == "hailo"]


def _validated(out_dir: Path, doc: dict, new: list[PlannedStep]) -> None:
    """The runtime's whole validation (schema and every step's binding to its model) of the new
    plan.json before it replaces the old one."""
    from rewriter.plan.writer import signature
    from runtime import validate

    trial = out_dir / f".plan.retile-{os.getpid()}.json"
    try:
        write_json_atomic(trial, doc)
        validate(trial, {segment_file(s): signature(s.model) for s in new})
    finally:
        trial.unlink(missing_ok=True)
