"""The node-index DAG the partitioner works on, and the few graph algorithms it needs.

Small on purpose: importing networkx for these four algorithms cost about 0.2 s of every `rewrite`
(more than partitioning itself). The interface is the subset of networkx.DiGraph the partitioner
reads (iteration, successors, in_degree, edges), so a networkx graph can be handed in too.
"""

from __future__ import annotations

import heapq


class CycleError(ValueError):
    """The groups of a partition depend on each other in a cycle."""


class Dag:
    """Nodes 0..n-1, edges kept once each, in insertion order."""

    def __init__(self, n: int):
        self._succ: list[dict[int, None]] = [{} for _ in range(n)]
        self._pred: list[dict[int, None]] = [{} for _ in range(n)]

    def add_edge(self, u: int, v: int) -> None:
        self._succ[u][v] = None
        self._pred[v][u] = None

    def __iter__(self):
        return iter(range(len(self._succ)))

    def __len__(self) -> int:
        return len(self._succ)

    def successors(self, v: int):
        return iter(self._succ[v])

    def predecessors(self, v: int):
        return iter(self._pred[v])

    def in_degree(self, v: int) -> int:
        return len(self._pred[v])

    @property
    def edges(self):
        return [(u, v) for u, vs in enumerate(self._succ) for v in vs]


def reachable(dag, start: int, forward: bool = True) -> set[int]:
    """Nodes reachable from `start` (descendants; with forward=False ancestors), `start` excluded."""
    step = dag.successors if forward else dag.predecessors
    seen: set[int] = set()
    stack = [start]
    while stack:
        for w in step(stack.pop()):
            if w not in seen:
                seen.add(w)
                stack.append(w)
    seen.discard(start)
    return seen


def group_order(dag, groups: list[list[int]]) -> list[int]:
    """Indices of `groups` (disjoint node sets) in topological order of the graph they induce, ties
    broken by smallest member first (networkx's lexicographical_topological_sort of the condensation).
    Raises CycleError when the groups depend on each other in a cycle (a group that is not convex)."""
    owner = {v: g for g, members in enumerate(groups) for v in members}
    succ: list[set[int]] = [set() for _ in groups]
    indegree = [0] * len(groups)
    for u, v in dag.edges:
        gu, gv = owner[u], owner[v]
        if gu != gv and gv not in succ[gu]:
            succ[gu].add(gv)
            indegree[gv] += 1
    key = [min(members) for members in groups]
    ready = [(key[g], g) for g in range(len(groups)) if indegree[g] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, g = heapq.heappop(ready)
        order.append(g)
        for h in succ[g]:
            indegree[h] -= 1
            if indegree[h] == 0:
                heapq.heappush(ready, (key[h], h))
    if len(order) != len(groups):
        raise CycleError(f"{len(groups) - len(order)} group(s) lie on a cycle")
    return order
