"""Fold subgraphs whose inputs are all constants into initializers (onnxruntime evaluates them)."""
from __future__ import annotations

import onnx_graphsurgeon as gs

from rewriter.ir.load import fold_constants, foldable
from rewriter.transform.pass_manager import Pass, PassContext


class FoldConstants(Pass):
    name = "fold-constants"
    idempotent = True

    def run(self, graph: gs.Graph, ctx: PassContext) -> list[str]:
        if not foldable(graph):
            return []
        before = {id(n): n.name for n in graph.nodes}
        fold_constants(graph)
        kept = {id(n) for n in graph.nodes}
        return [name for key, name in before.items() if key not in kept]
