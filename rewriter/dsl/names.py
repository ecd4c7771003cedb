"""Unique names for new values, initializers and nodes, seeded with every name in the graph."""
from __future__ import annotations

import onnx_graphsurgeon as gs


class NameAuthority:
    def __init__(self, graph: gs.Graph):
        self.used: set[str] = set()
        for n in graph.nodes:
            self.used.add(n.name)
            self.used.update(t.name for t in n.inputs)
            self.used.update(t.name for t in n.outputs)
        self.used.update(t.name for t in graph.inputs)
        self.used.update(t.name for t in graph.outputs)
        self.counters: dict[str, int] = {}

    def fresh(self, base: str) -> str:
        k = self.counters.get(base, 0)
        name = base
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.counters[base] = k
        self.used.add(name)
        return name
