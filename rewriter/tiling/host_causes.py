"""The nodes of a tiled Hailo segment that tiling runs on the host, and why, in the summary's terms.

The partition places a node on Hailo; tiling may still run it in a host step between device
stages (a strided Slice, a Resize, a node that reads all of time). Those steps are device calls
and host work the user pays for, so the placement and the causes table say so: the node's device
is the host, its step the host step, and its cause costs one device call for every host step it
sits in that has device stages before and after it in its segment.
"""

from __future__ import annotations

from collections.abc import Iterator

from rewriter.partition.causes import Cause


def _moved(segments: list[dict]) -> Iterator[tuple[dict, dict]]:
    """(host stage, node record) for every node tiling moved into a host step."""
    for record in segments:
        for stage in (record.get("tiled") or {}).get("stages", []):
            for op in stage.get("ops", []):
                yield stage, op


def tiled_host_nodes(segments: list[dict]) -> dict[str, dict]:
    """node name -> {"op", "reason", "step"} for every node tiling moved into a host step."""
    return {
        op["node"]: {"op": op["op"], "reason": _reason(op["reason"]), "step": stage["step"]}
        for stage, op in _moved(segments)
    }


def tiled_causes(segments: list[dict]) -> list[dict]:
    """Cause records (the partition's, rewriter.partition.causes.Cause) for those nodes."""
    causes: dict[str, Cause] = {}
    held: dict[int, tuple[dict, set[str]]] = {}  # id(host stage) -> (stage, its causes)
    for stage, op in _moved(segments):
        key = f"{op['op']}: {_reason(op['reason'])}"
        causes.setdefault(key, Cause(key)).nodes.append(op["node"])
        held.setdefault(id(stage), (stage, set()))[1].add(key)
    for stage, keys in held.values():
        if stage.get("between"):
            for key in keys:
                causes[key].round_trips += 1
                causes[key].segments.append(stage["step"])
    ranked = sorted(causes.values(), key=lambda c: (-c.round_trips, -len(c.nodes), c.cause))
    return [c.record() for c in ranked]


def _reason(reason: str | None) -> str:
    return f"on the host between time tiles ({reason or 'not time-local'})"
