"""Cut a segment into stages: time-local device stages and the host steps between them.

A stage ends only where time-locality ends (global reductions, broadcasts of a non-constant,
reshapes...): those nodes go to host steps. Every time-local node gets a level, the number of host
steps on its longest path from the segment inputs (ASAP); all time-local nodes of one level that
share an output width form ONE device stage (one model, one HEF), the host nodes of level k run
between device levels k and k+1. Time-local nodes that would only make a round trip (a component
without any conv or pool, or one-column tensors) run on the host too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rewriter.tiling.graph import SegGraph
from rewriter.tiling.limits import HEAVY, why_host

TOO_BIG = "does not fit one device stage within the target's limits"


@dataclass
class Stage:
    """Nodes of a segment tiled together (a device stage) or run whole on the host."""

    kind: str  # "tile" (device) or "host"
    nodes: list[int] = field(default_factory=list)  # topological order
    inputs: list[str] = field(default_factory=list)  # variable inputs from outside, first use order
    outputs: list[str] = field(default_factory=list)  # tensors needed after the stage
    reasons: dict[int, str] = field(default_factory=dict)  # host stage: why each node runs there

    def split(self, g: SegGraph, at: int) -> tuple[Stage, Stage]:
        """Two consecutive stages: nodes before position `at` and from it on."""
        return make(g, self.kind, self.nodes[:at]), make(g, self.kind, self.nodes[at:])


def make(g: SegGraph, kind_: str, nodes: list[int]) -> Stage:
    st = Stage(kind_, sorted(nodes))
    inside = set(st.nodes)
    produced = {o for i in st.nodes for o in g.nodes[i].output if o}
    seen = set()
    for i in st.nodes:
        for x in g.var_inputs(i):
            if x not in produced and x not in seen:
                seen.add(x)
                st.inputs.append(x)
    outs = set(g.outputs)
    for i in st.nodes:
        for o in g.nodes[i].output:
            if o and (o in outs or any(c not in inside for c in g.consumers.get(o, []))):
                st.outputs.append(o)
    return st


def _components(g: SegGraph, nodes: list[int]) -> dict[int, int]:
    """node -> a representative of its connected component among `nodes` (linked by tensors)."""
    members = set(nodes)
    parent = {i: i for i in nodes}

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i in nodes:
        for x in g.var_inputs(i):
            j = g.producer.get(x)
            if j in members:
                parent[find(i)] = find(j)
    return {i: find(i) for i in nodes}


def _host_reasons(g: SegGraph, forced_host: set[int]) -> dict[int, str]:
    """The nodes that run on the host, each with why; every other node is tiled."""
    reasons = {i: TOO_BIG if i in forced_host else why_host(g, i) for i in range(len(g.nodes))}
    reasons = {i: r for i, r in reasons.items() if r}
    for i in range(len(g.nodes)):
        if i not in reasons and g.width(g.nodes[i].output[0]) == 1:
            reasons[i] = "one column wide: not worth a device call"
    # a connected piece of device nodes without a conv or pool would only be a round trip
    comp = _components(g, [i for i in range(len(g.nodes)) if i not in reasons])
    heavy = {comp[i] for i in comp if g.nodes[i].op_type in HEAVY}
    for i in comp:
        if comp[i] not in heavy:
            reasons[i] = "no conv or pool beside it: a device call would only be a round trip"
    return reasons


def form(g: SegGraph, forced_host: set[int] = frozenset()) -> list[Stage]:
    """Stages in execution order: device stages of level 0, host step of level 0, level 1, ..."""
    reasons = _host_reasons(g, forced_host)
    level = [0] * len(g.nodes)
    for i in range(len(g.nodes)):  # nodes are in topological order
        lv = 0
        for x in g.var_inputs(i):
            j = g.producer.get(x)
            if j is not None:
                lv = max(lv, level[j] + (j in reasons and i not in reasons))
        level[i] = lv
    top = max(level, default=0)
    stages: list[Stage] = []
    for lv in range(top + 1):
        device = [i for i in range(len(g.nodes)) if level[i] == lv and i not in reasons]
        stages += _by_width(g, device)
        host = [i for i in range(len(g.nodes)) if level[i] == lv and i in reasons]
        if host:
            stages.append(make(g, "host", host))
            stages[-1].reasons = {i: reasons[i] for i in host}
    return stages


def _by_width(g: SegGraph, nodes: list[int]) -> list[Stage]:
    """One stage per output width: the level's connected pieces whose outputs share a width merge
    (one HEF); a piece with outputs of several widths stays alone (the planner cuts it)."""
    pieces: dict[int, list[int]] = {}
    for i, root in _components(g, nodes).items():
        pieces.setdefault(root, []).append(i)
    groups: dict[object, list[int]] = {}
    for root, piece in pieces.items():
        widths = {g.width(o) for o in make(g, "tile", piece).outputs}
        key = next(iter(widths)) if len(widths) == 1 else ("mixed", root)
        groups.setdefault(key, []).extend(piece)
    stages = [make(g, "tile", piece) for piece in groups.values()]
    return sorted(stages, key=lambda s: s.nodes[0])
