"""Small in-place edits of gs graphs shared by the native passes."""

from __future__ import annotations

import onnx_graphsurgeon as gs


def replace_uses(old: gs.Tensor, new: gs.Tensor, skip: gs.Node | None = None) -> None:
    """Every consumer of `old` (but `skip`) reads `new` instead. Graph outputs are not touched."""
    for consumer in list(old.outputs):
        if consumer is skip:
            continue
        for i, tensor in enumerate(consumer.inputs):
            if tensor is old:
                consumer.inputs[i] = new


def detach(node: gs.Node) -> None:
    """Disconnect a node so graph.cleanup() drops it."""
    node.inputs.clear()
    node.outputs.clear()


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
