"""`torch.stack(parts).sum(0)` (pytorch-tcn sums its skip connections so) is exported as

    ReduceSum(Concat(Unsqueeze(p1, [k]), ..., Unsqueeze(pn, [k])) {axis: k}, [k]) {keepdims: 0}

which is p1 + p2 + ... + pn: Adds, which Hailo runs, where ReduceSum over a stacking axis is no
Hailo op (pytorch-tcn's projection conv followed the sum to the host). Exact for two parts; for
more, the additions happen in the parts' order, which may round differently from onnxruntime's
ReduceSum by an ulp. A native pass because the number of parts varies.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from passes.replace_nodes import ReplaceNodes
from rewriter.ir.edit import FreshNames

PASS_NAME = "stacked-sum-to-adds"


def _axes(t: gs.Tensor, rank: int) -> list[int] | None:
    if not isinstance(t, gs.Constant):
        return None
    return sorted(int(a) % rank for a in np.asarray(t.values).ravel().tolist())


def stacked_parts(node: gs.Node) -> list[gs.Tensor] | None:
    """The summed parts when `node` is a ReduceSum over the axis a Concat of Unsqueezes stacked."""
    if node.op != "ReduceSum" or node.attrs.get("keepdims", 1) != 0 or len(node.inputs) < 2:
        return None
    stacked = node.inputs[0]
    if not isinstance(stacked, gs.Variable) or len(stacked.inputs) != 1 or stacked.inputs[0].op != "Concat":
        return None
    concat = stacked.inputs[0]
    if stacked.shape is None or len(concat.inputs) < 2:
        return None
    rank = len(stacked.shape)
    axis = int(concat.attrs.get("axis", 0)) % rank
    if _axes(node.inputs[1], rank) != [axis]:
        return None
    parts = []
    for piece in concat.inputs:
        if not isinstance(piece, gs.Variable) or len(piece.inputs) != 1 or piece.inputs[0].op != "Unsqueeze":
            return None
        unsqueeze = piece.inputs[0]
        if len(unsqueeze.inputs) < 2 or _axes(unsqueeze.inputs[1], rank) != [axis]:
            return None
        parts.append(unsqueeze.inputs[0])
    shapes = {tuple(p.shape) if p.shape is not None else None for p in parts}
    return parts if len(shapes) == 1 and None not in shapes else None  # stacked parts share a shape


class StackedSumToAdds(ReplaceNodes):
    name = PASS_NAME
    op = "ReduceSum"
    idempotent = True  # the Adds it writes are no ReduceSum

    def match(self, node: gs.Node) -> list[gs.Tensor] | None:
        return stacked_parts(node)

    def build(self, node: gs.Node, parts: list[gs.Tensor], fresh: FreshNames) -> list[gs.Node]:
        y, adds, total = node.outputs[0], [], parts[0]
        for k, part in enumerate(parts[1:], start=1):
            out = y if k == len(parts) - 1 else gs.Variable(fresh(f"{node.name}_sum{k}"), y.dtype, y.shape)
            adds.append(gs.Node("Add", fresh(f"{node.name}_add"), inputs=[total, part], outputs=[out]))
            total = out
        return adds
