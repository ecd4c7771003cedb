"""Read-only view of one segment model: shapes, constants, producers/consumers, attributes."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from rewriter.ir.constants import ConstantArrays


def attrs_of(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _typed(model: onnx.ModelProto) -> bool:
    """Every node output already has a type and shape (extracted segments do): no inference needed."""
    g = model.graph
    known = {v.name for v in list(g.value_info) + list(g.output) if v.type.tensor_type.HasField("shape")}
    return all(o in known for n in g.node for o in n.output if o)


class SegGraph:
    """Indexes a shape-inferred segment; tensors are addressed by name, nodes by position."""

    def __init__(self, model: onnx.ModelProto):
        if not _typed(model):
            model = shape_inference.infer_shapes(model, strict_mode=False)
        self.model = model
        g = model.graph
        self.protos = {t.name: t for t in g.initializer}
        self.consts = ConstantArrays(self.protos)
        for n in g.node:  # Constant nodes are constants too (folding should have removed them)
            if n.op_type == "Constant" and "value" in attrs_of(n):
                self.consts[n.output[0]] = numpy_helper.to_array(attrs_of(n)["value"])
        self.nodes = [n for n in g.node if not (n.op_type == "Constant" and n.output[0] in self.consts)]
        self.inputs = [v.name for v in g.input if v.name not in self.consts]
        self.outputs = [v.name for v in g.output]
        self.types = {v.name: v for v in list(g.value_info) + list(g.input) + list(g.output)}
        self.shapes = {}
        for name, v in self.types.items():
            dims = v.type.tensor_type.shape.dim
            self.shapes[name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        self.producer: dict[str, int] = {}
        self.consumers: dict[str, list[int]] = {}
        for i, n in enumerate(self.nodes):
            for o in n.output:
                if o:
                    self.producer[o] = i
            for x in n.input:
                if x:
                    self.consumers.setdefault(x, []).append(i)
        self.attrs = [attrs_of(n) for n in self.nodes]
        # read for every node at every tile width the fit tries: from protobuf once
        self._var_inputs = [tuple(x for x in n.input if x and x not in self.consts) for n in self.nodes]
        self.memo: dict = {}  # facts derived from this (unchanging) graph, kept by the tiling modules

    def is_const(self, name: str) -> bool:
        return name in self.consts

    def var_inputs(self, i: int) -> list[str]:
        return list(self._var_inputs[i])

    def shape(self, name: str) -> list:
        return self.shapes.get(name) or self.consts.get(name, np.zeros(())).shape

    def width(self, name: str) -> int:
        return self.shape(name)[-1]

    def channels(self, name: str) -> int:
        return self.shape(name)[1]

    def elem_type(self, name: str) -> int:
        return self.types[name].type.tensor_type.elem_type

    def rank4(self, name: str) -> bool:
        s = self.shapes.get(name)
        return s is not None and len(s) == 4 and all(isinstance(d, int) and d > 0 for d in s)
