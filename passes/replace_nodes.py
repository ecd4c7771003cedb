"""The loop every native pass that replaces one node at a time shares: visit the nodes of one op,
`match` says whether (and with what) to replace a node, `build` makes the nodes that take over its
outputs; the node is detached, the new nodes tagged with the pass's name and added. Fresh names
are collected from the graph only once something matches (a graph with nothing to do pays a scan
of its ops)."""

from __future__ import annotations

import onnx_graphsurgeon as gs

from rewriter.ir.annotations import tag
from rewriter.ir.edit import FreshNames, detach
from rewriter.transform.pass_manager import Pass, PassContext


class ReplaceNodes(Pass):
    #: the op of the nodes this pass looks at
    op = ""
    #: sort the graph after a change (for a pass whose new nodes later passes read in order)
    toposort_after = False

    def match(self, node: gs.Node):
        """What `build` needs to replace `node`, or None to leave it."""
        raise NotImplementedError

    def build(self, node: gs.Node, found, fresh: FreshNames) -> list[gs.Node]:
        """The nodes that replace `node`, writing its outputs (read them here: it is detached after)."""
        raise NotImplementedError

    def run(self, graph: gs.Graph, ctx: PassContext) -> list[str]:
        created = []
        fresh = None
        for node in [n for n in graph.nodes if n.op == self.op]:
            found = self.match(node)
            if found is None:
                continue
            fresh = fresh or FreshNames(graph)
            new = self.build(node, found, fresh)
            detach(node)
            for n in new:
                tag(n, self.name)
                graph.nodes.append(n)
                created.append(n.name)
        if created and self.toposort_after:
            graph.toposort()
        return created
