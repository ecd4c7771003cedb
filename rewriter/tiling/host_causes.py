"""The nodes of a tiled Hailo segment that tiling runs on the host, and why, in the summary's terms.

The partition places a node on Hailo; tiling may still run it in a host step between device
stages (a strided Slice, a Resize, a node that reads all of time). Those steps are device calls
and host work the user pays for, so the placement and the causes table say so: the node's device
is the host, its step the host step, and its cause costs one device call for every host step it
sits in that has device stages before and after it in its segment.
"""

from __future__ import annotations

MAX_EXAMPLES = 3


def tiled_host_nodes(segments: list[dict]) -> dict[str, dict]:
    """node name -> {"op", "reason", "step"} for every node tiling moved into a host step."""
    out = {}
    for record in segments:
        for stage in (record.get("tiled") or {}).get("stages", []):
            for op in stage.get("ops", []):
                out[op["node"]] = {"op": op["op"], "reason": _reason(op["reason"]), "step": stage["step"]}
    return out


def tiled_causes(segments: list[dict]) -> list[dict]:
    """Cause records (rewriter.partition.causes.Cause.record's keys) for those nodes."""
    causes: dict[str, dict] = {}
    for record in segments:
        for stage in (record.get("tiled") or {}).get("stages", []):
            held = set()
            for op in stage.get("ops", []):
                key = f"{op['op']}: {_reason(op['reason'])}"
                c = causes.setdefault(key, {"cause": key, "nodes": 0, "round_trips": 0, "examples": [], "segments": []})
                c["nodes"] += 1
                if len(c["examples"]) < MAX_EXAMPLES:
                    c["examples"].append(op["node"])
                held.add(key)
            for key in held:
                if stage.get("between"):
                    causes[key]["round_trips"] += 1
                    causes[key]["segments"].append(stage["step"])
    return sorted(causes.values(), key=lambda c: (-c["round_trips"], -c["nodes"], c["cause"]))


def _reason(reason: str | None) -> str:
    return f"on the host between time tiles ({reason or 'not time-local'})"
