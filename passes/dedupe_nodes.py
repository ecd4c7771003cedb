"""Common-subexpression elimination: nodes with the same op, attributes and inputs compute the same
value, so later ones are dropped and their consumers read the first (e.g. two Unsqueezes of one
tensor left by converting two convs that share an input). Graph outputs are never merged away."""

from __future__ import annotations

import onnx_graphsurgeon as gs

from rewriter.ir.edit import detach, replace_uses
from rewriter.transform.pass_manager import Pass, PassContext

# ops whose result depends on more than their inputs and attributes
NONDETERMINISTIC = {
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Multinomial",
    "Bernoulli",
    "Dropout",
}


SMALL_CONSTANT = 64  # compare small constants (axes, shapes) by value; big ones by identity


def _input_key(tensor):
    if isinstance(tensor, gs.Constant) and tensor.values.size <= SMALL_CONSTANT:
        return ("value", str(tensor.values.dtype), tensor.values.shape, tensor.values.tobytes())
    return ("tensor", id(tensor))


def _key(node: gs.Node):
    attrs = tuple(sorted((k, repr(v)) for k, v in node.attrs.items()))
    return node.op, node.domain, attrs, tuple(_input_key(t) for t in node.inputs), len(node.outputs)


class DedupeNodes(Pass):
    name = "dedupe-nodes"
    idempotent = True

    def run(self, graph: gs.Graph, ctx: PassContext) -> list[str]:
        outputs = {id(t) for t in graph.outputs}
        seen: dict = {}
        removed = []
        for node in graph.nodes:
            if node.op in NONDETERMINISTIC or any(id(o) in outputs for o in node.outputs):
                continue
            first = seen.setdefault(_key(node), node)
            if first is node:
                continue
            for mine, theirs in zip(node.outputs, first.outputs):
                replace_uses(mine, theirs)
            detach(node)
            removed.append(node.name)
        if removed:
            graph.cleanup(remove_unused_graph_inputs=False)
        return removed
