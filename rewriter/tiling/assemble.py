"""Plan steps of a tiled segment: one batched device step per device stage, one host ONNX step per
host stage."""

from __future__ import annotations

import onnx
from onnx import numpy_helper

from rewriter.ir.build import make_model
from rewriter.plan.steps import PlannedStep
from rewriter.tiling.fit import Fit
from rewriter.tiling.graph import SegGraph
from rewriter.tiling.stages import Stage
from rewriter.tiling.tilemodel import StageModel


def host_model(g: SegGraph, st: Stage, name: str) -> onnx.ModelProto:
    nodes = [g.nodes[i] for i in st.nodes]
    used = {x for n in nodes for x in n.input if x}
    inits = [numpy_helper.from_array(g.consts[x], x) for x in sorted(used) if x in g.consts]
    internal = {o for n in nodes for o in n.output if o} - set(st.outputs)
    return make_model(
        nodes,
        name,
        [g.types[x] for x in st.inputs],
        [g.types[y] for y in st.outputs],
        inits,
        [g.types[x] for x in sorted(internal) if x in g.types],
        opset_imports=list(g.model.opset_import),
        producer_name="hailo-rewriter",
        ir_version=g.model.ir_version,
    )


def host_step(g: SegGraph, st: Stage, name: str) -> PlannedStep:
    return PlannedStep(
        name, "host", list(st.inputs), list(st.outputs), host_model(g, st, name), {"nodes": len(st.nodes)}
    )


def device_step(g: SegGraph, st: Stage, sm: StageModel, fit: Fit, name: str, of: str) -> PlannedStep:
    """The stage as ONE hailo step that runs all its time tiles as one batch (`tiles`)."""
    sm.model.graph.name = name
    tiles = {
        "count": fit.geo.count,
        "inputs": sm.inputs,
        "outputs": sm.outputs,
        "of": of,
        "halo": fit.geo.halo(g, st.inputs),
        "block": fit.block,
    }
    return PlannedStep(
        name,
        "hailo",
        list(st.inputs),
        list(st.outputs),
        sm.model,
        {"nodes": len(st.nodes), "layers": sm.layer_count, "weight_bytes": sm.weight_bytes, "tiles": tiles},
    )
