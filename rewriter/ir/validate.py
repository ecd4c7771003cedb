"""Structural checks of an input model, before any work is done on it: each failure is a one-line
UserError naming the node or tensor at fault (onnx's checker reports these deep inside the
pipeline, as tracebacks, or not at all).

* every tensor a node reads is defined (graph input, initializer, node output, or for an If/Loop/Scan
  body a tensor of an enclosing graph), and is defined once;
* graph outputs are defined and listed once;
* the nodes form no cycle;
* every default-domain op exists in the model's opset;
* no tensor is larger than a plan may hold (runtime.schema.MAX_ELEMENTS), no dimension above MAX_DIM:
  a model declaring a width of 2^40 or 2*10^8 is refused here instead of exhausting memory or time in
  folding or tiling.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import onnx

from rewriter.errors import UserError
from rewriter.ir.scope import node_inputs
from runtime.schema import MAX_ELEMENTS

DEFAULT_DOMAINS = ("", "ai.onnx")
KNOWN_DOMAINS = DEFAULT_DOMAINS + ("ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training")


def _label(node: onnx.NodeProto) -> str:
    return f"node {node.name!r} ({node.op_type})" if node.name else f"a {node.op_type} node"


def check_structure(model: onnx.ModelProto) -> None:
    """Definitions, references, cycles and ops of the model's graph (and its bodies)."""
    top = _read(model.graph)
    _check_graph(model.graph, outer=frozenset(), where="", nodes=top)
    _check_acyclic(top)
    _check_ops(model, top)


class _Node(NamedTuple):
    """A node's fields read once for the three checks below: each access to a protobuf field builds
    a wrapper (reading every node three times made the checks 23 ms of the ConvTasNet example's
    load; 11 ms now)."""

    proto: onnx.NodeProto
    inputs: list[str]
    outputs: list[str]
    bodies: list[tuple[str, onnx.GraphProto]]  # (attribute name, graph) of its subgraph attributes
    op_type: str
    domain: str


def _read(graph: onnx.GraphProto) -> list[_Node]:
    out = []
    for node in graph.node:
        bodies = []
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                bodies.append((attr.name, attr.g))
            else:
                graphs = attr.graphs
                if graphs:
                    bodies.extend((attr.name, g) for g in graphs)
        out.append(_Node(node, list(node.input), list(node.output), bodies, node.op_type, node.domain))
    return out


def _check_graph(graph: onnx.GraphProto, outer: frozenset, where: str, nodes: list[_Node]) -> None:
    defined: dict[str, object] = {}  # name -> what defines it (a node's label is made on an error only)
    for v in graph.input:
        defined.setdefault(v.name, "a graph input")
    for t in list(graph.initializer) + [s.values for s in graph.sparse_initializer]:
        defined.setdefault(t.name, "an initializer")
    for node in nodes:
        for out in node.outputs:
            if not out:
                continue
            if out in defined:
                first = defined[out] if isinstance(defined[out], str) else _label(defined[out])
                raise UserError(
                    f"{where}tensor {out!r} is defined twice: by {first} and by {_label(node.proto)} "
                    "(ONNX names each value once)"
                )
            defined[out] = node.proto
    visible = outer | frozenset(defined)
    for node in nodes:
        for name in node.inputs:
            if name and name not in visible:
                what = "which no node, graph input or initializer defines"
                raise UserError(f"{where}{_label(node.proto)} reads tensor {name!r}, {what}")
        for attr_name, body in node.bodies:
            _check_graph(body, visible, f"{where}in the body {attr_name!r} of {_label(node.proto)}: ", _read(body))
    seen: set[str] = set()
    for out in graph.output:
        if out.name in seen:
            raise UserError(f"{where}graph output {out.name!r} is listed twice")
        seen.add(out.name)
        if out.name not in visible:
            raise UserError(f"{where}graph output {out.name!r} is not produced by any node, input or initializer")


def _check_acyclic(nodes: list[_Node]) -> None:
    producer = {o: i for i, n in enumerate(nodes) for o in n.outputs if o}
    users: list[list[int]] = [[] for _ in nodes]
    indegree = [0] * len(nodes)
    for j, node in enumerate(nodes):
        reads = node_inputs(node.proto) if node.bodies else node.inputs  # a body's outer reads too
        for i in {producer[n] for n in reads if n in producer}:
            users[i].append(j)
            indegree[j] += 1
    ready = [i for i, d in enumerate(indegree) if d == 0]
    done = 0
    while ready:
        i = ready.pop()
        done += 1
        for j in users[i]:
            indegree[j] -= 1
            if indegree[j] == 0:
                ready.append(j)
    if done != len(nodes):
        stuck = [_label(n.proto) for n, d in zip(nodes, indegree) if d > 0]
        raise UserError(f"the graph has a cycle: {len(stuck)} node(s) wait on each other, e.g. " + ", ".join(stuck[:3]))


def _check_ops(model: onnx.ModelProto, top: list[_Node]) -> None:
    imported = {o.domain or "": o.version for o in model.opset_import}
    opset = imported.get("", imported.get("ai.onnx"))
    functions = {(f.domain, f.name) for f in model.functions}
    known: set[tuple[str, str]] = set()  # (domain, op) already checked: a schema lookup per op, not per node
    for node in _all_nodes(top):
        domain = node.domain or ""
        if (node.domain, node.op_type) in functions or (domain, node.op_type) in known:
            continue
        known.add((domain, node.op_type))
        if domain in DEFAULT_DOMAINS:
            try:
                onnx.defs.get_schema(node.op_type, opset or onnx.defs.onnx_opset_version(), "")
            except onnx.defs.SchemaError:
                what = (
                    "is not an ONNX operator"
                    if not onnx.defs.has(node.op_type)
                    else f"does not exist in opset {opset} (the model's)"
                )
                raise UserError(f"{_label(node.proto)} uses op {node.op_type!r}, which {what}") from None
        elif domain not in imported:
            raise UserError(
                f"{_label(node.proto)} uses domain {domain!r}, which the model does not import (opset_import)"
            )


def _all_nodes(nodes: list[_Node]):
    for node in nodes:
        yield node
        for _, body in node.bodies:
            yield from _all_nodes(_read(body))


MAX_DIM = 1 << 20  # any one dimension: 2^20 samples is over a minute of 16 kHz audio, 2,048 tiles of 512


def check_sizes(model: onnx.ModelProto) -> None:
    """Every tensor with a known shape holds at most MAX_ELEMENTS elements (also the runtime's bound)
    and no dimension above MAX_DIM (tiling along a dimension costs time and plan steps in proportion)."""
    g = model.graph
    for v in list(g.input) + list(g.value_info) + list(g.output):
        if not v.type.HasField("tensor_type") or not v.type.tensor_type.HasField("shape"):
            continue
        dims = [d.dim_value for d in v.type.tensor_type.shape.dim if d.HasField("dim_value")]
        if any(d < 0 for d in dims):
            raise UserError(f"tensor {v.name!r} declares a negative dimension {dims}")
        if any(d > MAX_DIM for d in dims):
            raise UserError(
                f"tensor {v.name!r} has shape {dims}: a dimension above {MAX_DIM}, the largest this rewriter accepts"
            )
        count = math.prod(dims)
        if count > MAX_ELEMENTS:
            raise UserError(
                f"tensor {v.name!r} would have shape {dims} ({count:.3g} elements): more than the "
                f"{MAX_ELEMENTS} elements a plan may hold per tensor"
            )
