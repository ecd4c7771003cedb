"""tile_steps: replace hailo steps that exceed the allocator limits by tiles + host stitching."""
from __future__ import annotations

from dataclasses import dataclass, field

from rewriter.plan.steps import PlannedStep
from rewriter.target import TilingLimits
from rewriter.tiling import temporal
from rewriter.tiling.assemble import StageWriter, host_model
from rewriter.tiling.graph import SegGraph
from rewriter.tiling.limits import exceeds
from rewriter.tiling.stages import Stage, form


@dataclass
class TilingReport:
    step: str
    tiled: bool
    reason: str | None = None
    new_steps: list[str] = field(default_factory=list)
    stages: list[dict] = field(default_factory=list)   # per stage: kind, nodes, grid, halo, distinct
    hailo_steps: int = 0
    host_steps: int = 0
    stitch_steps: int = 0
    distinct_files: int = 0


def _mixed_width_break(g: SegGraph, st: Stage) -> int | None:
    """A node to start a new stage at when the stage's outputs have different widths."""
    outs = sorted(st.outputs, key=lambda y: g.producer[y])
    first = g.width(outs[0])
    for y in outs[1:]:
        if g.width(y) != first:
            return g.producer[y]
    return None


def plan_stages(g: SegGraph, limits: TilingLimits) -> list[tuple[Stage, temporal.TimePlan | None]]:
    """Stages and their time plans; cuts stages further until each one can be tiled."""
    breaks: set[int] = set()
    forced: set[int] = set()
    while True:
        stages = form(g, limits.channels, breaks, forced)
        planned, retry = [], False
        for st in stages:
            if st.kind == "host":
                planned.append((st, None))
                continue
            cut = _mixed_width_break(g, st)
            tp = None if cut is not None else temporal.plan(g, st, limits.width)
            if tp is None:
                if cut is not None:
                    breaks.add(cut)
                elif len(st.nodes) > 1:
                    breaks.add(st.nodes[len(st.nodes) // 2])
                else:
                    forced.add(st.nodes[0])   # not even one output column fits: host
                retry = True
                break
            planned.append((st, tp))
        if not retry:
            return planned


def tile_segment(step: PlannedStep, limits: TilingLimits, g: SegGraph | None = None,
                 reason: str | None = None) -> tuple[list[PlannedStep], TilingReport]:
    g = g or SegGraph(step.model)
    report = TilingReport(step.name, True, reason)
    new: list[PlannedStep] = []
    for k, (st, tp) in enumerate(plan_stages(g, limits)):
        prefix = f"{step.name}_s{k}"
        if st.kind == "host":
            new.append(PlannedStep(prefix, "host", list(st.inputs), list(st.outputs),
                                   host_model(g, st, prefix), {"nodes": len(st.nodes)}))
            report.stages.append({"kind": "host", "nodes": len(st.nodes)})
            continue
        writer = StageWriter(g, st, tp, limits.channels, prefix)
        steps = writer.run(step.name)
        new += steps
        first = next(s for s in steps if s.device == "hailo")
        report.stages.append({"kind": st.kind, "nodes": len(st.nodes), "grid": first.extra["tile"]["grid"],
                              "halo": tp.halo, "tile_width": tp.tiles[0][1] - tp.tiles[0][0],
                              "distinct": len(writer.files)})
        report.distinct_files += len(writer.files)
    report.new_steps = [s.name for s in new]
    report.hailo_steps = sum(s.device == "hailo" for s in new)
    report.stitch_steps = sum(s.extra.get("kind", "onnx") != "onnx" for s in new)
    report.host_steps = len(new) - report.hailo_steps - report.stitch_steps
    return new, report


def tile_steps(steps: list[PlannedStep], limits: TilingLimits, force: bool = False
               ) -> tuple[list[PlannedStep], list[TilingReport]]:
    """Every hailo step that exceeds `limits` is replaced by tiles whose stitched outputs equal
    the step's outputs (float32 rounding only); other steps are returned unchanged."""
    out: list[PlannedStep] = []
    reports: list[TilingReport] = []
    for step in steps:
        if step.device != "hailo" or step.model is None or step.extra.get("kind", "onnx") != "onnx":
            out.append(step)
            continue
        g = SegGraph(step.model)
        why = exceeds(g, limits, force)
        if why is None:
            out.append(step)
            reports.append(TilingReport(step.name, False, None, [step.name]))
            continue
        new, report = tile_segment(step, limits, g, why)
        out += new
        reports.append(report)
    return out, reports
