"""Group placed nodes into convex segments: as few Hailo segments as the plan's acyclicity allows.

1. Grouping in waves (as ONNX Runtime's CreateSupportedPartitions does): a topological sort that keeps
   taking ready nodes of the current device and switches device only when none is ready. Every group
   is then an interval of one topological order, hence convex.
2. Merging (rewriter/segment_merge.py): two segments of the same device merge when no path runs
   from one to the other through a third segment, which is exactly convexity of the union.
3. Cost rule: a Hailo segment whose MACs are below the target's `roundtrip_macs` is cheaper on the
   host than one device round trip; its nodes go to the host and grouping is redone.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import onnx_graphsurgeon as gs

from rewriter.ir.macs import node_macs
from rewriter.ir.order import toposort
from rewriter.ir.scope import reads
from rewriter.partition.dag import CycleError, Dag, group_order, reachable
from rewriter.partition.merge import merge_groups
from rewriter.partition.placement import HAILO, HOST, Placement, place_nodes
from rewriter.target import Target


@dataclass
class Segment:
    """Consecutive nodes placed on one device."""

    device: str
    nodes: list[gs.Node] = field(default_factory=list)

    @property
    def macs(self) -> int:
        return sum(node_macs(n) for n in self.nodes)


@dataclass
class Partition:
    """The graph cut into segments, with every node's placement."""

    segments: list[Segment]
    placements: dict[int, Placement]  # id(node) -> final placement with reason

    def names(self) -> list[str]:
        """Each segment's step name: its device and its number among that device's segments."""
        counts = {HAILO: 0, HOST: 0}
        names = []
        for seg in self.segments:
            names.append(f"{seg.device}_{counts[seg.device]}")
            counts[seg.device] += 1
        return names


def node_graph(nodes: list[gs.Node]) -> Dag:
    """Node-index DAG: edge i -> j when node j reads an output of node i (directly or in a body)."""
    index = {id(n): i for i, n in enumerate(nodes)}
    dag = Dag(len(nodes))
    for j, node in enumerate(nodes):
        for tensor in reads(node):
            for producer in tensor.inputs:
                if id(producer) in index:
                    dag.add_edge(index[id(producer)], j)
    return dag


def _waves(dag: Dag, device: list[str]) -> list[list[int]]:
    indegree = {v: dag.in_degree(v) for v in dag}
    ready = {HAILO: [], HOST: []}
    for v, d in indegree.items():
        if d == 0:
            heapq.heappush(ready[device[v]], v)
    groups: list[list[int]] = []
    current = None
    while ready[HAILO] or ready[HOST]:
        if current is None or not ready[current]:
            current = min((d for d in ready if ready[d]), key=lambda d: ready[d][0])
            groups.append([])
        v = heapq.heappop(ready[current])
        groups[-1].append(v)
        for w in dag.successors(v):
            indegree[w] -= 1
            if indegree[w] == 0:
                heapq.heappush(ready[device[w]], w)
    return groups


def _order(dag: Dag, groups: list[list[int]]) -> list[list[int]]:
    try:
        order = group_order(dag, groups)
    except CycleError:  # a non-convex group: a bug here, not a user error
        raise AssertionError("partition produced a cyclic segment graph") from None
    return [groups[g] for g in order]


def forced_host_nodes(graph: gs.Graph, start_nodes: list[str], end_nodes: list[str]) -> set[str]:
    """Names of nodes outside the [start, end] cut, as the DFC's start/end node names define it."""
    nodes = list(graph.nodes)
    by_name = {n.name: i for i, n in enumerate(nodes)}
    dag = node_graph(nodes)
    cut: set[int] = set()
    for name in end_nodes:
        cut |= reachable(dag, by_name[name])
    for name in start_nodes:
        cut |= reachable(dag, by_name[name], forward=False)
    return {nodes[i].name for i in cut}


def partition(
    graph: gs.Graph,
    target: Target,
    forced_host: set[str] = frozenset(),
    placements: dict[int, Placement] | None = None,
    cost_rule: bool = True,
) -> Partition:
    """`placements` (id(node) -> Placement) replaces the target's own, e.g. to ask what the
    partition would be if the target accepted more nodes (rewriter/partition/causes.py)."""
    toposort(graph)
    nodes = list(graph.nodes)
    dag = node_graph(nodes)
    placements = dict(placements) if placements is not None else place_nodes(graph, target, forced_host)
    while True:
        device = [placements[id(n)].device for n in nodes]
        groups = _order(dag, merge_groups(dag, _waves(dag, device), device))
        small = [
            g
            for g in groups
            if cost_rule and device[g[0]] == HAILO and sum(node_macs(nodes[i]) for i in g) < target.roundtrip_macs
        ]
        if not small:
            break
        for g in small:
            macs = sum(node_macs(nodes[i]) for i in g)
            for i in g:
                placements[id(nodes[i])] = Placement(
                    HOST, f"too small for a device round trip ({macs} MACs < roundtrip_macs {target.roundtrip_macs})"
                )
    segments = [Segment(device[g[0]], [nodes[i] for i in g]) for g in groups]
    return Partition(segments, placements)
