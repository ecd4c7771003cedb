"""Small in-place edits of gs graphs shared by the native passes."""

from __future__ import annotations

import onnx_graphsurgeon as gs

from rewriter.ir.scope import has_body


def replace_uses(old: gs.Tensor, new: gs.Tensor, skip: gs.Node | None = None) -> None:
    """Every consumer of `old` (but `skip`) reads `new` instead. Graph outputs are not touched."""
    for consumer in list(old.outputs):
        if consumer is skip:
            continue
        for i, tensor in enumerate(consumer.inputs):
            if tensor is old:
                consumer.inputs[i] = new


def detach(node: gs.Node) -> None:
    """Disconnect a node so graph.cleanup() drops it: node.inputs.clear() and node.outputs.clear(),
    with the node found in each tensor's list by identity. gs's synchronized lists find it with
    list.remove, i.e. by Node.__eq__, which compares every node ahead of it structurally (a shared
    constant such as Squeeze's axes has hundreds of consumers), and would take a structurally equal
    twin for it."""
    for mine, theirs in ((node.inputs, "outputs"), (node.outputs, "inputs")):
        for tensor in mine:
            side = getattr(tensor, theirs)
            for i, other in enumerate(side):
                if other is node:
                    list.__delitem__(side, i)  # the tensor's side only: `mine` is emptied below
                    break
        list.clear(mine)


def remove_dead_nodes(graph: gs.Graph) -> gs.Graph:
    """What `graph.cleanup(remove_unused_graph_inputs=False)` does, in one walk back from the graph
    outputs: nodes none of whose outputs reaches a graph output are detached and dropped (order
    kept). gs's cleanup first maps every tensor of the graph by name; the rule driver runs this
    after every rule file that changed something, where that map cost more than the rewriting.
    Graphs with subgraphs or local functions (whose bodies gs cleans too) go to gs."""
    if graph.functions or any(has_body(n) for n in graph.nodes):
        return graph.cleanup(remove_unused_graph_inputs=False)
    for tensor in graph.inputs:
        tensor.inputs.clear()  # as gs does: a graph input has no producer
    live: set[int] = set()
    seen: set[int] = set()
    stack = list(graph.outputs)
    while stack:
        tensor = stack.pop()
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        for node in tensor.inputs:
            if id(node) not in live:
                live.add(id(node))
                stack.extend(node.inputs)
    dead = [n for n in graph.nodes if id(n) not in live]
    if dead:
        for node in dead:
            detach(node)
        graph.nodes = [n for n in graph.nodes if id(n) in live]
    return graph


class FreshNames:
    """Names not yet used in a graph (tensors and nodes), for the nodes a native pass creates."""

    def __init__(self, graph: gs.Graph):
        self.used = set(graph.tensors()) | {n.name for n in graph.nodes}

    def __call__(self, base: str) -> str:
        name, i = base, 0
        while name in self.used:
            i += 1
            name = f"{base}_{i}"
        self.used.add(name)
        return name
