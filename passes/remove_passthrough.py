"""Remove Identity and Dropout (inference mode) nodes without renaming graph inputs or outputs."""
from __future__ import annotations

import onnx_graphsurgeon as gs

from rewriter.ir.edit import detach, replace_uses
from rewriter.transform.pass_manager import Pass, PassContext

PASSTHROUGH_OPS = ("Identity", "Dropout")


def bypass(graph: gs.Graph, node: gs.Node) -> bool:
    """Reconnect the consumers of node's first output to its first input; True when removed.

    When the output is a graph output, the producer of the input is made to write the graph output
    instead (the name must survive); if the input is itself a graph input/output, the node stays.
    """
    src, dst = node.inputs[0], node.outputs[0]
    extra_outputs_used = any(o.outputs or o in graph.outputs for o in node.outputs[1:])
    if extra_outputs_used:  # Dropout's mask is consumed: keep it
        return False
    if dst in graph.outputs:
        if src in graph.inputs or src in graph.outputs or isinstance(src, gs.Constant) or not src.inputs:
            return False
        producer = src.inputs[0]
        replace_uses(src, dst, skip=node)
        producer.outputs[producer.outputs.index(src)] = dst
    else:
        replace_uses(dst, src)
    detach(node)
    return True


class RemovePassthrough(Pass):
    name = "remove-identity-dropout"
    idempotent = True

    def run(self, graph: gs.Graph, ctx: PassContext) -> list[str]:
        removed = [n.name for n in list(graph.nodes) if n.op in PASSTHROUGH_OPS and bypass(graph, n)]
        if removed:
            graph.cleanup(remove_unused_graph_inputs=False)
        return removed
