"""Fold subgraphs whose inputs are all constants into initializers (onnxruntime evaluates them)."""
from __future__ import annotations

import onnx_graphsurgeon as gs

from rewriter.load import fold_constants
from rewriter.pass_manager import Pass, PassContext


def _foldable(graph: gs.Graph) -> bool:
    return any(n.op in ("Shape", "Constant", "Size") or
               (n.inputs and all(isinstance(t, gs.Constant) for t in n.inputs)) for n in graph.nodes)


class FoldConstants(Pass):
    name = "fold-constants"
    idempotent = True

    def run(self, graph: gs.Graph, ctx: PassContext) -> list[str]:
        if not _foldable(graph):
            return []
        before = {id(n): n.name for n in graph.nodes}
        fold_constants(graph)
        kept = {id(n) for n in graph.nodes}
        return [name for key, name in before.items() if key not in kept]
