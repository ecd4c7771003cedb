"""Plan steps before they are written: one per partition segment (tiling may replace hailo steps by
tiles and stitch steps), and their plan.json objects."""

from __future__ import annotations

from dataclasses import dataclass, field

import onnx

from rewriter.ir import annotations
from rewriter.ir.macs import node_macs
from rewriter.ir.opset import segment_at_opset
from rewriter.partition.extract import SegmentExtractor
from rewriter.partition.partitioner import Partition


@dataclass
class PlannedStep:
    """One step of the plan, before it is written."""

    name: str
    device: str
    inputs: list[str]
    outputs: list[str]
    model: onnx.ModelProto | None = None
    extra: dict = field(default_factory=dict)  # nodes, macs, rules, tile, calib, kind...


def steps_from_partition(
    model: onnx.ModelProto,
    nodes: list,
    part: Partition,
    working_opset: int,
    segment_opset: int,
    deferred: dict | None = None,
) -> list[PlannedStep]:
    """One step per segment; `model` is the exported, shape-inferred whole graph whose nodes are
    `nodes` (the gs nodes, in export order), its `deferred` weights dims only (export_model's)."""
    extractor = SegmentExtractor(model, deferred)
    index = {id(n): i for i, n in enumerate(nodes)}
    steps = []
    for seg, name in zip(part.segments, part.names()):
        members = sorted(index[id(n)] for n in seg.nodes)
        segment = extractor.extract(members, name, working_opset)
        if seg.device == "hailo" and segment_opset != working_opset:
            segment = segment_at_opset(segment, segment_opset, name)
        inputs, outputs = [v.name for v in segment.graph.input], [v.name for v in segment.graph.output]
        steps.append(
            PlannedStep(
                name,
                seg.device,
                inputs,
                outputs,
                segment,
                {
                    "nodes": len(seg.nodes),
                    "macs": int(sum(node_macs(n) for n in seg.nodes)),
                    "rules": annotations.rules_in(segment),
                },
            )
        )
    return steps


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
