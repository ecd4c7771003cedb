"""What a node reads: its inputs, plus the tensors its subgraphs (If/Loop/Scan bodies) read from the
enclosing scope. ONNX lets a body use any tensor of the outer graph by name, so such a node must run
after those tensors' producers, and a segment holding it must receive them as inputs.

One definition serves both representations: onnx protos (validation, extraction) and
onnx-graphsurgeon graphs (ordering, placement, partitioning).
"""

from __future__ import annotations

import onnx
import onnx_graphsurgeon as gs


class _ProtoView:
    @staticmethod
    def subgraphs(node: onnx.NodeProto) -> list:
        out = []
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                out.append(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                out.extend(attr.graphs)
        return out

    @staticmethod
    def defined(g: onnx.GraphProto) -> set[str]:
        return (
            {v.name for v in g.input}
            | {t.name for t in g.initializer}
            | {t.values.name for t in g.sparse_initializer}
            | {o for n in g.node for o in n.output}
        )

    @staticmethod
    def nodes(g: onnx.GraphProto):
        return g.node

    @staticmethod
    def inputs(node: onnx.NodeProto) -> list:
        return list(node.input)

    @staticmethod
    def name(item) -> str:
        return item


class _GsView:
    @staticmethod
    def subgraphs(node: gs.Node) -> list:
        out = []
        for value in node.attrs.values():  # every node of every sort, every graph order: no generators
            if isinstance(value, gs.Graph):
                out.append(value)
            elif isinstance(value, (list, tuple)):
                for v in value:
                    if isinstance(v, gs.Graph):
                        out.append(v)
        return out

    @staticmethod
    def defined(g: gs.Graph) -> set[str]:
        return {t.name for t in g.inputs} | {t.name for n in g.nodes for t in n.outputs}

    @staticmethod
    def nodes(g: gs.Graph):
        return g.nodes

    @staticmethod
    def inputs(node: gs.Node) -> list:
        return [t for t in node.inputs if not isinstance(t, gs.Constant)]  # constants need no producer

    @staticmethod
    def name(item) -> str:
        return item.name


def _outer_reads(subgraphs: list, view) -> list:
    """Items (names or tensors) the subgraphs read but do not define, first-use order, no repeats."""
    refs, seen = [], set()
    for g in subgraphs:
        defined = view.defined(g)
        for inner in view.nodes(g):
            for item in view.inputs(inner) + _outer_reads(view.subgraphs(inner), view):
                name = view.name(item)
                if name and name not in defined and name not in seen:
                    seen.add(name)
                    refs.append(item)
    return refs


def subgraph_refs(node: onnx.NodeProto) -> list[str]:
    """Names a node's subgraphs read from the enclosing scope."""
    return _outer_reads(_ProtoView.subgraphs(node), _ProtoView)


def node_inputs(node: onnx.NodeProto) -> list[str]:
    """Every name a node reads: its (non-empty) inputs, then its subgraphs' outer-scope reads."""
    own = [n for n in node.input if n]
    return own + [n for n in subgraph_refs(node) if n not in own]


def outer_tensors(node: gs.Node) -> list[gs.Tensor]:
    """Tensors of the enclosing graph a gs node's subgraphs read."""
    return _outer_reads(_GsView.subgraphs(node), _GsView)


def proto_subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    """The bodies an onnx node holds (If branches, Loop/Scan bodies, a custom op's graphs)."""
    return _ProtoView.subgraphs(node)


def proto_has_body(node: onnx.NodeProto) -> bool:
    """Whether an onnx node holds subgraphs (If/Loop/Scan bodies, or a custom op's graph attribute)."""
    return bool(_ProtoView.subgraphs(node))


def has_body(node: gs.Node) -> bool:
    """Whether a gs node holds subgraphs (If/Loop/Scan bodies, or a custom op's graph attribute)."""
    return bool(node.attrs) and bool(_GsView.subgraphs(node))


def reads(node: gs.Node) -> list[gs.Tensor]:
    """Every tensor a gs node reads: its inputs, then its subgraphs' outer-scope reads."""
    own = list(node.inputs)
    if not node.attrs or not _GsView.subgraphs(node):
        return own  # the common case, on every node of every sort: no body to look into
    ids = {id(t) for t in own}
    return own + [t for t in outer_tensors(node) if id(t) not in ids]
