"""Grouped convs the target rejects become group=1: one dense block-diagonal conv (few groups)
or per-group convs joined by a Concat (many groups). A native pass: the per-group form has a
variable number of nodes, which a fixed pattern cannot write.

Policy from the target's [ops.Conv] / [ops.ConvTranspose]: `groups` says what is allowed,
`group_split` picks the form ("block_diagonal", "per_group" or "auto": block-diagonal while the
group count is at most `block_diagonal_max_groups`, whose MACs grow by the group count).
"""
from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from passes.helpers.folding import block_diagonal
from rewriter.ir.edit import FreshNames, detach
from rewriter.ir.opfacts import node_conv_kind
from rewriter.ir.order import toposort
from rewriter.transform.pass_manager import Pass, PassContext
from rewriter.ir.annotations import tag

PASS_NAME = "split-grouped-conv"


def needs_split(node: gs.Node, rule) -> bool:
    """The target's op constraint `rule` does not admit this conv's kind (grouped, or depthwise)."""
    return not rule.allows_conv(node_conv_kind(node))


def _block_diagonal(node: gs.Node, group: int, fresh: FreshNames) -> list[gs.Node]:
    weight = node.inputs[1]
    dense = block_diagonal(weight.values, group)
    node.inputs[1] = gs.Constant(fresh(f"{weight.name}_dense"), dense)
    node.attrs["group"] = 1
    tag(node, PASS_NAME)
    return [node]


def _per_group(graph: gs.Graph, node: gs.Node, group: int, fresh: FreshNames) -> list[gs.Node]:
    x, weight = node.inputs[0], node.inputs[1]
    bias = node.inputs[2] if len(node.inputs) > 2 and isinstance(node.inputs[2], gs.Constant) else None
    w = weight.values
    in_per = x.shape[1] // group
    # ConvTranspose weights are [Cin, Cout/g, ...]: slice rows; Conv weights [Cout, Cin/g, ...]
    rows = w.shape[0] // group
    out = node.outputs[0]
    out_per = out.shape[1] // group
    split_outs = [gs.Variable(fresh(f"{node.name}_in{g}"), x.dtype, [x.shape[0], in_per, *x.shape[2:]])
                  for g in range(group)]
    # one channel Slice per group (Slice is a Hailo op; Split is not in the hailo8 target)
    created = []
    axes = gs.Constant(fresh(f"{node.name}_slice_axes"), np.array([1], np.int64))
    for g in range(group):
        starts = gs.Constant(fresh(f"{node.name}_slice{g}_starts"), np.array([g * in_per], np.int64))
        ends = gs.Constant(fresh(f"{node.name}_slice{g}_ends"), np.array([(g + 1) * in_per], np.int64))
        created.append(gs.Node("Slice", fresh(f"{node.name}_slice{g}"), {}, [x, starts, ends, axes],
                               [split_outs[g]]))
    pieces = []
    for g in range(group):
        inputs = [split_outs[g], gs.Constant(fresh(f"{weight.name}_g{g}"), w[g * rows:(g + 1) * rows].copy())]
        if bias is not None:
            inputs.append(gs.Constant(fresh(f"{bias.name}_g{g}"),
                                      bias.values[g * out_per:(g + 1) * out_per].copy()))
        piece = gs.Variable(fresh(f"{node.name}_out{g}"), out.dtype, [out.shape[0], out_per, *out.shape[2:]])
        created.append(gs.Node(node.op, fresh(f"{node.name}_g{g}"), {**node.attrs, "group": 1}, inputs, [piece]))
        pieces.append(piece)
    detach(node)
    created.append(gs.Node("Concat", fresh(f"{node.name}_concat"), {"axis": 1}, pieces, [out]))
    for n in created:
        tag(n, PASS_NAME)
    graph.nodes.extend(created)
    return created


class SplitGroupedConv(Pass):
    name = PASS_NAME
    idempotent = True

    def run(self, graph: gs.Graph, ctx: PassContext) -> list[str]:
        target = ctx.target
        if target is None:
            return []
        fresh, changed = None, []
        for node in list(graph.nodes):
            rule = target.ops.get(node.op) if node.op in ("Conv", "ConvTranspose") else None
            if rule is None or not isinstance(node.inputs[1], gs.Constant) or not needs_split(node, rule):
                continue
            if node.inputs[0].shape is None or len(node.inputs) > 2 and not isinstance(node.inputs[2], gs.Constant):
                continue
            fresh = fresh or FreshNames(graph)
            group = int(node.attrs["group"])
            form = rule.group_split
            if form == "auto":
                form = "block_diagonal" if group <= rule.block_diagonal_max_groups else "per_group"
            made = _block_diagonal(node, group, fresh) if form == "block_diagonal" else \
                _per_group(graph, node, group, fresh)
            changed += [n.name for n in made]
        if changed:
            toposort(graph.cleanup(remove_unused_graph_inputs=False))
        return changed
