"""Why each cut exists: host nodes grouped by cause, and the device round trips each cause costs.

Every Hailo segment is one device round trip per inference. A host segment that runs after one
Hailo segment and before another splits them: one extra round trip. A cause (an op the target does
not hold, a rank or attribute it does not take...) costs the round trips of the splitting host
segments that hold a node of that cause; a segment with several causes counts for each of them, so
the costs need not add up. The cost rule's moves ("too small for a device round trip") are the
other way round: they are reported with the round trips the rule saves, as a negative cost (the
partition computed again with the rule off).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import onnx_graphsurgeon as gs

from rewriter.ir.annotations import host_reason
from rewriter.partition.partitioner import Partition, partition
from rewriter.partition.placement import HAILO, HOST, place_nodes
from rewriter.target import Target

TOO_SMALL = "too small for a device round trip"
MAX_EXAMPLES = 3
RANK_CHANGES = ("op Squeeze ", "op Unsqueeze ")  # around ops left at rank 3: listed after the ops themselves


@dataclass
class Cause:
    """One reason nodes went to the host, the nodes it sent and what it cost."""

    cause: str
    nodes: list[str] = field(default_factory=list)
    round_trips: int = 0  # splitting host segments holding it (negative: saved by the cost rule)
    segments: list[str] = field(default_factory=list)  # those host segments' step names

    def record(self) -> dict:
        return {
            "cause": self.cause,
            "nodes": len(self.nodes),
            "round_trips": self.round_trips,
            "examples": self.nodes[:MAX_EXAMPLES],
            "segments": self.segments,
        }


def cause_of(op: str, reason: str) -> str:
    """The reason without what differs from node to node (tensor names, MAC counts)."""
    if reason.startswith(TOO_SMALL):
        return TOO_SMALL
    reason = re.sub(r"input (\d+) \([^)]*\)", r"input \1", reason)
    reason = re.sub(r"^dynamic or unknown shape .* on \S+$", "dynamic or unknown shape", reason)
    reason = re.sub(r" on \S+$", "", reason)
    return reason if reason.startswith(f"op {op} ") or reason.startswith("random op") else f"{op}: {reason}"


def splitting_segments(part: Partition) -> list[int]:
    """Indices of host segments with a Hailo segment before and after them in the dataflow. One
    pass each way over the segments, which come in topological order."""
    owner = {id(n): i for i, seg in enumerate(part.segments) for n in seg.nodes}
    preds: list[set[int]] = [set() for _ in part.segments]
    for i, seg in enumerate(part.segments):
        for node in seg.nodes:
            for tensor in node.inputs:
                for producer in tensor.inputs:
                    j = owner.get(id(producer))
                    if j is not None and j != i:
                        preds[i].add(j)
    hailo = [seg.device == HAILO for seg in part.segments]
    before = [False] * len(hailo)
    for i in range(len(hailo)):
        before[i] = any(hailo[j] or before[j] for j in preds[i])
    after = [False] * len(hailo)
    for i in reversed(range(len(hailo))):
        for j in preds[i]:
            after[j] = after[j] or hailo[i] or after[i]
    return [i for i, seg in enumerate(part.segments) if seg.device == HOST and before[i] and after[i]]


def host_causes(
    graph: gs.Graph, target: Target, part: Partition, names: list[str], forced_host: set[str] = frozenset()
) -> list[Cause]:
    """Host nodes of `part` grouped by cause, most costly first; `names` are the segments' step names."""

    def key(node: gs.Node) -> str:
        reason = part.placements[id(node)].reason
        pinned = host_reason(node) == reason or node.name in forced_host  # a pass's or the user's decision
        return reason if pinned else cause_of(node.op, reason)

    causes: dict[str, Cause] = {}
    for node in graph.nodes:
        if part.placements[id(node)].device == HOST:
            causes.setdefault(key(node), Cause(key(node))).nodes.append(node.name)
    for i in splitting_segments(part):
        held = {key(n) for n in part.segments[i].nodes}
        for cause in held - {TOO_SMALL}:
            causes[cause].round_trips += 1
            causes[cause].segments.append(names[i])
    if TOO_SMALL in causes:  # what the partition would be had the cost rule kept them on Hailo
        unruled = partition(graph, target, forced_host, place_nodes(graph, target, forced_host), cost_rule=False)
        causes[TOO_SMALL].round_trips = _hailo_count(part) - _hailo_count(unruled)
    return sorted(
        causes.values(), key=lambda c: (-c.round_trips, c.cause.startswith(RANK_CHANGES), -len(c.nodes), c.cause)
    )


def _hailo_count(part: Partition) -> int:
    return sum(1 for s in part.segments if s.device == HAILO)
