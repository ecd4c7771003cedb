"""Turn a partitioned graph into a plan: plan.json + segments/*.onnx, deterministic and atomic."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import version_converter

from rewriter.ir import annotations
from rewriter.plan.atomic import staged_dir, write_json_atomic
from rewriter.partition.extract import SegmentExtractor
from rewriter.ir.macs import node_macs
from rewriter.partition.partitioner import Partition

PLAN_FORMAT = "hailo-rewriter-plan"
PLAN_VERSION = 1


@dataclass
class PlannedStep:
    """One step of the plan, before it is written."""
    name: str
    device: str
    inputs: list[str]
    outputs: list[str]
    model: onnx.ModelProto | None = None
    extra: dict = field(default_factory=dict)   # nodes, macs, rules, tile, calib, kind...


def value_spec(value: onnx.ValueInfoProto) -> dict:
    ttype = value.type.tensor_type
    return {"name": value.name, "shape": [d.dim_value for d in ttype.shape.dim],
            "dtype": np.dtype(onnx.helper.tensor_dtype_to_np_dtype(ttype.elem_type)).name}


def steps_from_partition(model: onnx.ModelProto, nodes: list, part: Partition, working_opset: int,
                         segment_opset: int) -> list[PlannedStep]:
    """One step per segment; `model` is the exported, shape-inferred whole graph whose nodes are
    `nodes` (the gs nodes, in export order)."""
    extractor = SegmentExtractor(model)
    index = {id(n): i for i, n in enumerate(nodes)}
    steps = []
    counts = {"hailo": 0, "host": 0}
    for seg in part.segments:
        members = sorted(index[id(n)] for n in seg.nodes)
        name = f"{seg.device}_{counts[seg.device]}"
        counts[seg.device] += 1
        segment = extractor.extract(members, name, working_opset)
        if seg.device == "hailo" and segment_opset != working_opset:
            segment = version_converter.convert_version(segment, segment_opset)
        inputs, outputs = [v.name for v in segment.graph.input], [v.name for v in segment.graph.output]
        steps.append(PlannedStep(name, seg.device, inputs, outputs, segment, {
            "nodes": len(seg.nodes), "macs": int(sum(node_macs(n) for n in seg.nodes)),
            "rules": annotations.rules_in(segment)}))
    return steps


def _with_values(model: onnx.ModelProto, values: dict) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.graph.input.extend(values.get(v.name, v) for v in model.graph.input)
    copy.graph.output.extend(values.get(v.name, v) for v in model.graph.output)
    copy.graph.initializer.extend(onnx.TensorProto(name=t.name) for t in model.graph.initializer)
    return copy


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def plan_document(target_name: str, source: Path, original: onnx.ModelProto, steps: list[PlannedStep],
                  extra: dict | None = None, pinned: onnx.ModelProto | None = None) -> dict:
    """`original` gives the I/O names and order; `pinned` (the normalized model, same names) the
    static shapes, since the original may have dynamic dims."""
    inits = {t.name for t in original.graph.initializer}
    if pinned is not None:
        static = {v.name: v for v in list(pinned.graph.input) + list(pinned.graph.output)}
        original = _with_values(original, static)
    doc = {
        "format": PLAN_FORMAT,
        "version": PLAN_VERSION,
        "target": target_name,
        "source": {"model": source.name, "sha256": sha256_file(source)},
        "inputs": [value_spec(v) for v in original.graph.input if v.name not in inits],
        "outputs": [value_spec(v) for v in original.graph.output],
    }
    doc.update(extra or {})
    doc["steps"] = [step_entry(step) for step in steps]
    return doc


def segment_file(step: PlannedStep) -> str:
    """Path of the step's model relative to OUT (tiles with equal models share one file)."""
    return step.extra.get("model_file", f"segments/{step.name}.onnx")


def step_entry(step: PlannedStep) -> dict:
    """The step's plan.json object."""
    entry = {"name": step.name, "device": step.device, "kind": step.extra.get("kind", "onnx")}
    if step.model is not None:
        entry["model"] = segment_file(step)
    entry["inputs"], entry["outputs"] = step.inputs, step.outputs
    entry.update({k: v for k, v in step.extra.items() if k not in ("kind", "model_file")})
    return entry


def write_segment_files(folder: Path, steps: list[PlannedStep]) -> None:
    """Each distinct segment file once, checked by onnx's checker, serialized deterministically."""
    written = set()
    for step in steps:
        rel = segment_file(step)
        if step.model is not None and rel not in written:
            onnx.checker.check_model(step.model, full_check=True)
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(step.model.SerializeToString(deterministic=True))
            written.add(rel)


def write_plan_json(folder: Path, doc: dict) -> None:
    write_json_atomic(Path(folder) / "plan.json", doc)


def write_plan(out_dir: Path, doc: dict, steps: list[PlannedStep], after=None) -> None:
    """Writes everything into a staging folder and swaps it in: never a half-written plan.
    `after(stage)` may add to the staged plan (calibration data) before the swap."""
    with staged_dir(Path(out_dir)) as stage:
        (stage / "segments").mkdir()
        write_segment_files(stage, steps)
        write_plan_json(stage, doc)
        if after is not None:
            after(stage)
