"""tile_steps: replace hailo steps that exceed the resource model by device stages (one batched
device call each) and host steps."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from rewriter.plan.steps import PlannedStep
from rewriter.target import Resources, TilingLimits
from rewriter.tiling.assemble import device_step, host_step
from rewriter.tiling.fit import Fit, fit
from rewriter.tiling.graph import SegGraph
from rewriter.tiling.limits import exceeds
from rewriter.tiling.stages import Stage, form
from rewriter.tiling.tilemodel import StageModel, build


@dataclass
class TilingReport:
    """What tiling did to one Hailo step (or why it left it whole)."""

    step: str
    tiled: bool
    reason: str | None = None
    new_steps: list[str] = field(default_factory=list)
    stages: list[dict] = field(default_factory=list)  # per stage: kind, nodes, tiles, tile_width, halo, block
    device_steps: int = 0
    host_steps: int = 0


Planned = tuple[Stage, StageModel | None, Fit | None]


def _mixed_width_cut(g: SegGraph, st: Stage) -> int | None:
    """Where to cut a stage whose outputs have different widths (one tile geometry needs one):
    after the longest prefix whose own outputs share one width. Cutting before the producer of the
    first output of another width instead left a stage per width change (a lone MaxPool, a lone
    Relu: one HEF and one device call each) in a UNet-like segment."""
    if len({g.width(y) for y in st.outputs}) <= 1:
        return None
    n = len(st.nodes)
    pos = {i: k for k, i in enumerate(st.nodes)}
    after = set(st.outputs)  # read after the stage
    born: list[list[int]] = [[] for _ in range(n)]  # widths of what node k writes for later nodes
    dies: list[list[int]] = [[] for _ in range(n + 1)]  # ... and the position of their last reader
    for k, i in enumerate(st.nodes):
        for o in g.nodes[i].output:
            readers = [pos[c] for c in g.consumers.get(o, []) if c in pos]
            last = n if o in after else max(readers, default=k)
            if o and last > k:
                born[k].append(g.width(o))
                dies[last].append(g.width(o))
    live: Counter = Counter()
    best = None
    for cut in range(1, n):  # the prefix is nodes[:cut]; its outputs: written before cut, read from cut on
        live.update(born[cut - 1])
        live.subtract(dies[cut - 1])
        if len(+live) == 1:
            best = cut
    if best is not None:
        return best
    outs = sorted(st.outputs, key=lambda y: g.producer[y])  # no such prefix: at the first other width
    first = g.width(outs[0])
    return next(st.nodes.index(g.producer[y]) for y in outs[1:] if g.width(y) != first)


def _budget_cut(sm: StageModel, st: Stage, res: Resources) -> int | None:
    """Where to cut a stage whose model exceeds the per-HEF budget (None: it fits)."""
    if sm.layer_count <= res.hef_layers and sm.weight_bytes <= res.hef_weight_bytes:
        return None
    layers = weights = 0
    for k, i in enumerate(st.nodes):
        layers += sm.layers[i]
        weights += sm.weights[i]
        if layers > res.hef_layers or weights > res.hef_weight_bytes:
            return max(k, 1)
    return None


def plan_segment(g: SegGraph, limits: TilingLimits) -> list[Planned]:
    """Stages in order, each device stage with its model and fit. A device stage that cannot fit
    is cut in two (at a width change, else in the middle); a single node that cannot fit runs on
    the host; a stage above the per-HEF budget is cut where the budget runs out."""
    forced: set[int] = set()
    while True:
        planned: list[Planned] = []
        queue = form(g, forced)
        restart = False
        while queue:
            st = queue.pop(0)
            if st.kind == "host":
                planned.append((st, None, None))
                continue
            cut = _mixed_width_cut(g, st)
            if cut is not None:
                queue[:0] = st.split(g, cut)
                continue
            f = fit(g, st, limits)
            if f is None:
                if len(st.nodes) > 1:
                    queue[:0] = st.split(g, len(st.nodes) // 2)
                    continue
                forced.add(st.nodes[0])
                restart = True
                break
            sm = build(g, st, f, "stage")
            cut = _budget_cut(sm, st, limits.resources) if len(st.nodes) > 1 else None
            if cut is not None:
                queue[:0] = st.split(g, cut)
                continue
            planned.append((st, sm, f))
        if not restart:
            return planned


def tile_segment(
    step: PlannedStep, limits: TilingLimits, g: SegGraph | None = None, reason: str | None = None
) -> tuple[list[PlannedStep], TilingReport]:
    g = g or SegGraph(step.model)
    report = TilingReport(step.name, True, reason)
    new: list[PlannedStep] = []
    planned = plan_segment(g, limits)
    for k, (st, sm, f) in enumerate(planned):
        name = f"{step.name}_s{k}"
        if st.kind == "host":
            new.append(host_step(g, st, name))
            between = any(p.kind == "tile" for p, _, _ in planned[:k]) and any(
                p.kind == "tile" for p, _, _ in planned[k + 1 :]
            )
            ops = [{"node": g.nodes[i].name, "op": g.nodes[i].op_type, "reason": st.reasons.get(i)} for i in st.nodes]
            report.stages.append({"kind": "host", "nodes": len(st.nodes), "ops": ops, "between": between, "step": name})
            continue
        new.append(device_step(g, st, sm, f, name, step.name))
        report.stages.append(
            {
                "kind": "device",
                "nodes": len(st.nodes),
                "tiles": f.geo.count,
                "tile_width": f.geo.tw,
                "halo": f.geo.halo(g, st.inputs),
                "block": f.block,
                "layers": sm.layer_count,
            }
        )
    report.new_steps = [s.name for s in new]
    report.device_steps = sum(s.device == "hailo" for s in new)
    report.host_steps = len(new) - report.device_steps
    return new, report


def tile_steps(
    steps: list[PlannedStep], limits: TilingLimits, consume: bool = False
) -> tuple[list[PlannedStep], list[TilingReport]]:
    """Every hailo step that exceeds `limits` is replaced by device stages and host steps whose
    outputs equal the step's outputs (float32 rounding only); other steps are returned unchanged.
    `consume`: the caller drops `steps`, and a replaced step lets its model go as soon as it is
    tiled, so the tile models reuse the memory of its weights rather than take fresh memory."""
    out: list[PlannedStep] = []
    reports: list[TilingReport] = []
    for step in steps:
        if step.device != "hailo" or step.model is None or step.extra.get("kind", "onnx") != "onnx":
            out.append(step)
            continue
        g = SegGraph(step.model)
        why = exceeds(g, limits)
        if why is None:
            out.append(step)
            reports.append(TilingReport(step.name, False, None, [step.name]))
            continue
        new, report = tile_segment(step, limits, g, why)
        if consume:
            step.model = g = None
        out += new
        reports.append(report)
    return out, reports
