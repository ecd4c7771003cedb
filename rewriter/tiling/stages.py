"""Cut a segment into stages, in topological order.

* tile:    time-local nodes run per (channel block, time tile); every tensor with more than N
           channels is split into the same N-channel blocks (so all of them must have the same
           channel count `cs`); tensors with <= N channels are computed whole in every job.
* partial: one dense conv with more than N input channels: (output block, input block) partial
           products, summed on the host before anything nonlinear can follow.
* host:    everything else (global reductions, reshapes, ...) as a small host ONNX step.
Between stages full tensors are materialized on the host.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from rewriter.tiling.graph import SegGraph
from rewriter.tiling.limits import kind


@dataclass
class Stage:
    kind: str
    nodes: list[int] = field(default_factory=list)
    cs: int | None = None            # channel count of blocked tensors (> N), tile stages only
    inputs: list[str] = field(default_factory=list)    # external variable inputs, first use order
    outputs: list[str] = field(default_factory=list)   # tensors needed after the stage


def _fits(g: SegGraph, stage: Stage, i: int, n: int) -> bool:
    """All tensors above N channels in one tile stage share the block layout of `cs`."""
    big = {g.channels(x) for x in g.var_inputs(i) + list(g.nodes[i].output[:1]) if g.channels(x) > n}
    if stage.cs is not None:
        big.add(stage.cs)
    if len(big) > 1:
        return False
    stage.cs = next(iter(big), None)
    return True


def form(g: SegGraph, n: int, breaks: set[int], forced_host: set[int]) -> list[Stage]:
    stages: list[Stage] = []
    cur: Stage | None = None
    for i in range(len(g.nodes)):
        k = "host" if i in forced_host else kind(g, i, n)
        joinable = cur is not None and cur.kind == k and k != "partial" and i not in breaks
        if k == "tile" and joinable:
            joinable = _fits(g, cur, i, n)
        if not joinable:
            cur = Stage(k)
            stages.append(cur)
            if k == "tile":
                _fits(g, cur, i, n)
        cur.nodes.append(i)
    for st in stages:
        _boundary(g, st)
    return stages


def _boundary(g: SegGraph, st: Stage) -> None:
    inside = set(st.nodes)
    produced = {o for i in st.nodes for o in g.nodes[i].output if o}
    for i in st.nodes:
        for x in g.var_inputs(i):
            if x not in produced and x not in st.inputs:
                st.inputs.append(x)
    outs = set(g.outputs)
    for i in st.nodes:
        for o in g.nodes[i].output:
            if o and (o in outs or set(g.consumers.get(o, [])) - inside):
                st.outputs.append(o)
