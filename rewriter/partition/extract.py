"""Cut a whole (shape-inferred) ONNX model into one self-contained model per segment."""

from __future__ import annotations

import onnx
import onnx_graphsurgeon as gs
from onnx import helper

from rewriter.ir.build import copy_tensor, make_model
from rewriter.ir.export import write_initializer
from rewriter.ir.scope import node_inputs


class SegmentExtractor:
    """Indexes the model once; `extract` is then linear in the segment's size."""

    def __init__(self, model: onnx.ModelProto, deferred: dict[str, gs.Constant] | None = None):
        """`deferred`: weights `model` holds as dims only (export_model's), written into each
        segment that reads them from their constants."""
        self.model = model
        self.deferred = deferred or {}
        graph = model.graph
        self.initializers = {t.name: t for t in graph.initializer}
        self.types = {v.name: v for v in list(graph.value_info) + list(graph.input) + list(graph.output)}
        self.graph_outputs = [o.name for o in graph.output]
        # each node's reads (bodies' outer reads too) and writes, taken from protobuf once
        self.reads = [node_inputs(node) for node in graph.node]
        self.writes = [[o for o in node.output if o] for node in graph.node]
        self.consumers: dict[str, set[int]] = {}
        for i, names in enumerate(self.reads):
            for name in names:
                self.consumers.setdefault(name, set()).add(i)

    def boundary(self, members: list[int]) -> tuple[list[str], list[str]]:
        """(inputs, outputs) tensor names of the segment made of node indices `members`."""
        inside = set(members)
        produced: set[str] = set()
        inputs: list[str] = []
        for i in members:
            for name in self.reads[i]:
                if name not in produced and name not in self.initializers and name not in inputs:
                    inputs.append(name)
            produced.update(self.writes[i])
        wanted = set(self.graph_outputs)
        outputs = [o for i in members for o in self.writes[i] if o in wanted or self.consumers.get(o, set()) - inside]
        return inputs, outputs

    def extract(self, members: list[int], name: str, opset: int) -> onnx.ModelProto:
        nodes = [self.model.graph.node[i] for i in members]
        inputs, outputs = self.boundary(members)
        used = dict.fromkeys(n for i in members for n in self.reads[i])  # first-use order
        internal = {o for i in members for o in self.writes[i]} - set(outputs)
        opsets = self._opsets(opset)
        model = make_model(
            nodes,
            name,
            [self._value(n) for n in inputs],
            [self._value(n) for n in outputs],
            (),
            [self.types[n] for n in sorted(internal) if n in self.types],
            opset_imports=opsets,
            producer_name="hailo-rewriter",
            ir_version=helper.find_min_ir_version_for(opsets),  # oldest IR that holds it: widest reach
        )
        graph = model.graph
        for n in used:
            if n in self.deferred:
                write_initializer(graph, self.deferred[n])
            elif n in self.initializers:
                copy_tensor(graph, self.initializers[n])
        return model

    def _value(self, name: str) -> onnx.ValueInfoProto:
        if name not in self.types:
            raise ValueError(f"tensor {name!r} has no inferred type/shape")
        return self.types[name]

    def _opsets(self, opset: int) -> list[onnx.OperatorSetIdProto]:
        others = [o for o in self.model.opset_import if o.domain not in ("", "ai.onnx")]
        return [helper.make_opsetid("", opset)] + list(others)
