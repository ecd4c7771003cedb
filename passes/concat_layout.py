"""A rank-3 Concat of converted 1-D ops joins the rank-4 [N, C, 1, T] layout, whatever its number of
inputs (ECAPA-TDNN's Res2Net blocks concatenate 8 chunks). layout.rw does this for two and three
inputs; a rule pattern has a fixed arity, so the general case is this native pass.

    Concat(Squeeze(x1, [2]), ..., z, ...) {axis: k}   (rank 3, at least one input a Squeeze of rank 4)
 -> Squeeze(Concat(x1, ..., Unsqueeze(z, [2]), ...) {axis: k'}, [2])

with k' the rank-4 axis (time moves from 2 to 3). The Squeeze then moves on with the layout rules.
"""
from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from rewriter.ir.annotations import tag
from rewriter.ir.edit import FreshNames, detach
from rewriter.transform.pass_manager import Pass, PassContext

PASS_NAME = "concat-layout"


def _squeezed_source(tensor: gs.Tensor) -> gs.Tensor | None:
    """x when tensor = Squeeze(x, [2]) with x of rank 4."""
    if not tensor.inputs or tensor.inputs[0].op != "Squeeze":
        return None
    squeeze = tensor.inputs[0]
    axes = squeeze.inputs[1] if len(squeeze.inputs) > 1 else None
    source = squeeze.inputs[0]
    if not isinstance(axes, gs.Constant) or np.asarray(axes.values).tolist() != [2]:
        return None
    return source if source.shape is not None and len(source.shape) == 4 else None


class ConcatLayout(Pass):
    name = PASS_NAME

    def run(self, graph: gs.Graph, ctx: PassContext) -> list[str]:
        changed = []
        fresh = None
        for node in list(graph.nodes):
            out = node.outputs[0] if node.op == "Concat" and node.outputs else None
            if out is None or out.shape is None or len(out.shape) != 3:
                continue
            sources = [_squeezed_source(t) for t in node.inputs]
            if not any(s is not None for s in sources) or any(t.shape is None for t in node.inputs):
                continue
            fresh = fresh or FreshNames(graph)
            changed += self._lift(graph, node, sources, fresh)
        if changed:
            graph.toposort()
        return changed

    def _lift(self, graph: gs.Graph, node: gs.Node, sources: list, fresh: FreshNames) -> list[str]:
        out = node.outputs[0]
        axis = int(node.attrs.get("axis", 0)) % 3
        axes = gs.Constant(fresh(f"{node.name}_{PASS_NAME}_axes"), np.asarray([2], np.int64))
        created = []
        inputs = []
        for tensor, source in zip(node.inputs, sources):
            if source is not None:
                inputs.append(source)
            elif isinstance(tensor, gs.Constant):
                inputs.append(gs.Constant(fresh(f"{tensor.name}_{PASS_NAME}"), np.expand_dims(tensor.values, 2)))
            else:
                shape = list(tensor.shape[:2]) + [1] + list(tensor.shape[2:])
                lifted = gs.Variable(fresh(f"{tensor.name}_{PASS_NAME}"), tensor.dtype, shape)
                created.append(gs.Node("Unsqueeze", fresh(f"{node.name}_{PASS_NAME}_unsqueeze"),
                                       inputs=[tensor, axes], outputs=[lifted]))
                inputs.append(lifted)
        shape4 = list(out.shape[:2]) + [1] + list(out.shape[2:])
        out4 = gs.Variable(fresh(f"{out.name}_{PASS_NAME}"), out.dtype, shape4)
        concat = gs.Node("Concat", fresh(f"{node.name}_{PASS_NAME}"), attrs={"axis": axis + 1 if axis == 2 else axis},
                         inputs=inputs, outputs=[out4])
        detach(node)
        squeeze = gs.Node("Squeeze", fresh(f"{node.name}_{PASS_NAME}_squeeze"), inputs=[out4, axes], outputs=[out])
        created += [concat, squeeze]
        for n in created:
            tag(n, PASS_NAME)
        graph.nodes.extend(created)
        return [n.name for n in created]
