"""Fold subgraphs whose inputs are all constants into initializers (onnxruntime evaluates them)."""

from __future__ import annotations

import onnx_graphsurgeon as gs

from rewriter.ir.load import fold_constants, foldable, inline_constants
from rewriter.transform.pass_manager import Pass, PassContext


class FoldConstants(Pass):
    name = "fold-constants"
    idempotent = True

    def run(self, graph: gs.Graph, ctx: PassContext) -> list[str]:
        before = {id(n): n.name for n in graph.nodes}
        inline_constants(graph)  # cheap; the onnxruntime fold only when something else is left
        if foldable(graph):
            fold_constants(graph)
        kept = {id(n) for n in graph.nodes}
        return [name for key, name in before.items() if key not in kept]
