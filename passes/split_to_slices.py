"""Split is not a Hailo op, Slice is: a Split with constant part sizes (or equal parts) becomes one
Slice per output, whatever their number (ECAPA-TDNN's Res2Net chunks in 8, ShuffleNet in 2). A
native pass because a rule pattern has a fixed number of outputs."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from passes.replace_nodes import ReplaceNodes
from rewriter.ir.edit import FreshNames

PASS_NAME = "split-to-slices"


def part_sizes(node: gs.Node) -> list[int] | None:
    """The sizes of the Split's parts along its axis, when they are known."""
    data = node.inputs[0]
    if data.shape is None:
        return None
    axis = int(node.attrs.get("axis", 0)) % len(data.shape)
    length = data.shape[axis]
    if not isinstance(length, (int, np.integer)):
        return None
    sizes = node.inputs[1] if len(node.inputs) > 1 and node.inputs[1].name else None
    if sizes is None:
        parts = len(node.outputs)
        return [int(length) // parts] * parts if length % parts == 0 else None
    if not isinstance(sizes, gs.Constant):
        return None
    return [int(s) for s in np.asarray(sizes.values).ravel()]


class SplitToSlices(ReplaceNodes):
    name = PASS_NAME
    op = "Split"
    toposort_after = True

    def match(self, node: gs.Node) -> list[int] | None:
        sizes = part_sizes(node)
        return sizes if sizes is not None and len(sizes) == len(node.outputs) else None

    def build(self, node: gs.Node, sizes: list[int], fresh: FreshNames) -> list[gs.Node]:
        data = node.inputs[0]
        axis = int(node.attrs.get("axis", 0)) % len(data.shape)
        axes = gs.Constant(fresh(f"{node.name}_axes"), np.asarray([axis], np.int64))
        pieces, start = [], 0
        for out, size in zip(list(node.outputs), sizes):
            bounds = [
                gs.Constant(fresh(f"{node.name}_{k}"), np.asarray([v], np.int64))
                for k, v in (("start", start), ("end", start + size))
            ]
            pieces.append(gs.Node("Slice", fresh(f"{node.name}_slice"), inputs=[data, *bounds, axes], outputs=[out]))
            start += size
        return pieces
