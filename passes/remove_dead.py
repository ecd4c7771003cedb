"""Remove nodes whose outputs reach no graph output; graph inputs are kept (the plan's contract)."""

from __future__ import annotations

import onnx_graphsurgeon as gs

from rewriter.ir.edit import remove_dead_nodes
from rewriter.transform.pass_manager import Pass, PassContext


class RemoveDeadNodes(Pass):
    name = "remove-dead-nodes"
    idempotent = True

    def run(self, graph: gs.Graph, ctx: PassContext) -> list[str]:
        before = {id(n): n.name for n in graph.nodes}
        remove_dead_nodes(graph)
        kept = {id(n) for n in graph.nodes}
        return [name for key, name in before.items() if key not in kept]
