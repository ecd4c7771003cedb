"""Unique names for new values, initializers and nodes, seeded with every name in the graph."""

from __future__ import annotations

import onnx_graphsurgeon as gs


class NameAuthority:
    """`lazy`: the graph's names are collected on the first `seed()` or `fresh()`, not now (a rule
    file that rewrites nothing never pays for the scan); the caller seeds before it edits the graph."""

    def __init__(self, graph: gs.Graph, lazy: bool = False):
        self._graph = graph
        self._used: set[str] | None = None
        self.counters: dict[str, int] = {}
        if not lazy:
            self.seed()

    def seed(self) -> None:
        if self._used is not None:
            return
        graph, used = self._graph, set()
        for n in graph.nodes:
            used.add(n.name)
            used.update(t.name for t in n.inputs)
            used.update(t.name for t in n.outputs)
        used.update(t.name for t in graph.inputs)
        used.update(t.name for t in graph.outputs)
        self._used = used

    @property
    def used(self) -> set[str]:
        self.seed()
        return self._used

    def fresh(self, base: str) -> str:
        used = self.used
        k = self.counters.get(base, 0)
        name = base
        while name in used:
            k += 1
            name = f"{base}_{k}"
        self.counters[base] = k
        used.add(name)
        return name
