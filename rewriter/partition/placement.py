"""Decide, node by node, whether the target can run it, and say why not."""

from __future__ import annotations

from dataclasses import dataclass

import onnx_graphsurgeon as gs

from rewriter.errors import UserError
from rewriter.ir.annotations import host_reason
from rewriter.ir.composites import COMPOSITES
from rewriter.ir.dtypes import dtype_name
from rewriter.ir.load import static_shape
from rewriter.ir.opfacts import CONV_OPS, RANDOM_OPS, node_conv_kind
from rewriter.ir.scope import reads
from rewriter.target import Target

HAILO, HOST = "hailo", "host"


@dataclass(frozen=True)
class Placement:
    """Where a node runs and, for the host, why."""

    device: str
    reason: str = ""


def _dtype_name(tensor) -> str | None:
    dtype = getattr(tensor, "dtype", None)
    return None if dtype is None else dtype_name(dtype)


def _attr(node: gs.Node, name: str):
    value = node.attrs.get(name)
    if isinstance(value, bytes):
        value = value.decode()
    return value


def why_not(node: gs.Node, target: Target) -> str | None:
    """None when `node` may run in a Hailo segment of `target`, else the reason it may not."""
    rule = target.ops.get(node.op)
    if node.op in RANDOM_OPS:
        return "random op: a new draw on every run, so never folded and kept on the host"
    if node.domain not in ("", "ai.onnx", None):
        return f"custom-domain op {node.domain}.{node.op}"
    if rule is None:
        known = target.host_reasons.get(node.op)
        return f"op {node.op} not in target {target.name}" + (f": {known}" if known else "")
    for i, tensor in enumerate(node.inputs):
        if isinstance(tensor, gs.Constant) or (tensor.name == "" and not tensor.inputs):
            continue
        if i in rule.const_inputs:
            return f"input {i} ({tensor.name}) must be a constant"
    for tensor in [t for t in reads(node) if isinstance(t, gs.Variable) and t.name] + list(node.outputs):
        if not static_shape(tensor.shape):
            return f"dynamic or unknown shape {tensor.shape} on {tensor.name}"
        dtype = _dtype_name(tensor)
        if dtype is not None and dtype not in target.dtypes:
            return f"dtype {dtype} on {tensor.name}"
    ranks = {len(t.shape) for t in node.inputs if isinstance(t, gs.Variable) and t.name}
    out_ranks = {len(t.shape) for t in node.outputs}
    if rule.output_ranks:
        bad = sorted(r for r in out_ranks if r not in rule.output_ranks)
        if bad:
            return f"rank-{bad[0]} output (allowed: {list(rule.output_ranks)})"
        out_ranks = set()
    for r in sorted(ranks | out_ranks):
        if r not in rule.ranks:
            return f"rank-{r} tensor (allowed: {list(rule.ranks)})"
    for name, allowed in rule.attrs.items():
        value = _attr(node, name)
        if value is not None and value not in allowed:
            return f"attribute {name}={value!r} (allowed: {allowed})"
    if rule.within:
        if rule.within not in COMPOSITES:
            raise UserError(
                f"target {target.name}: ops.{node.op}.within = {rule.within!r} names no known "
                f"composite (known: {', '.join(COMPOSITES)})"
            )
        if not COMPOSITES[rule.within](node):
            return f"{node.op} outside a {rule.within} (the target takes it only as part of one)"
    if node.op in CONV_OPS:
        kind = node_conv_kind(node)
        if not rule.allows_conv(kind):
            return f"{kind} {node.op} (group={node.attrs['group']}) not allowed (policy {rule.groups})"
    return None


def place_nodes(graph: gs.Graph, target: Target, forced_host: set[str] = frozenset()) -> dict[int, Placement]:
    """id(node) -> Placement for every node of the graph."""
    placements = {}
    for node in graph.nodes:
        if node.name in forced_host:
            placements[id(node)] = Placement(HOST, "cut by --start-node/--end-node")
            continue
        pinned = host_reason(node)
        if pinned:
            placements[id(node)] = Placement(HOST, pinned)
            continue
        reason = why_not(node, target)
        placements[id(node)] = Placement(HOST, reason) if reason else Placement(HAILO)
    return placements
