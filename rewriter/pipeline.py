"""The `rewrite` job: load -> passes -> partition -> plan steps (`rewrite`), and the same written
as a validated plan folder (`rewrite_to_plan`)."""
from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from pathlib import Path

import onnx
import onnx_graphsurgeon as gs

from passes.concat_layout import ConcatLayout
from passes.dedupe_nodes import DedupeNodes
from passes.fold_constants import FoldConstants
from passes.fsq_cut import FsqCut
from passes.normalize_input import add_normalization, read_stats
from passes.remove_dead import RemoveDeadNodes
from passes.remove_passthrough import RemovePassthrough
from passes.split_grouped_conv import SplitGroupedConv
from passes.split_to_slices import SplitToSlices
from rewriter.errors import UserError
from rewriter.ir.freeze import frozen_values
from rewriter.ir.load import WORKING_OPSET, infer_shapes, load_graph, model_from_graph
from rewriter.partition.causes import host_causes
from rewriter.partition.partitioner import Partition, forced_host_nodes, partition
from rewriter.transform.pass_manager import Pass, PassContext, PassManager
from rewriter.plan.document import plan_document
from rewriter.plan.steps import PlannedStep, steps_from_partition
from rewriter.target import Target
from rewriter.tiling import tile_steps
from rewriter.plan.views import mark_views


@dataclass
class RewriteOptions:
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    rule_files: list[Path] = field(default_factory=list)   # user rules, after the target's
    start_nodes: list[str] = field(default_factory=list)
    end_nodes: list[str] = field(default_factory=list)
    debug: bool = False
    trace_rule: str | None = None
    normalize: Path | None = None
    force_tiling: bool = False   # the user gave --tile-channels/--tile-width: apply them strictly
    frozen: dict[str, list[str]] = field(default_factory=dict)  # --freeze: inputs held at a value


@dataclass
class RewriteResult:
    graph: gs.Graph
    original: onnx.ModelProto
    partition: Partition
    steps: list[PlannedStep]
    manager: PassManager
    timings: dict[str, float]
    trace: list[str] = field(default_factory=list)
    normalization: dict | None = None
    whole: onnx.ModelProto | None = None  # normalized model with static shapes, same I/O names
    tiling: list = field(default_factory=list)  # TilingReport per tiled segment
    segments: list[dict] = field(default_factory=list)  # per partition segment, before tiling
    frozen: dict[str, dict] = field(default_factory=dict)  # frozen inputs: dtype, shape, value
    causes: list[dict] = field(default_factory=list)  # host nodes by cause, with the round trips each costs

    def document(self, target: Target, source: Path) -> dict:
        extra = {"normalization": self.normalization} if self.normalization else {}
        if self.frozen:
            extra["frozen"] = [{"name": name, **spec} for name, spec in self.frozen.items()]
        extra["segments"] = self.segments
        extra["causes"] = self.causes
        extra["placement"] = self.placement_rows()
        return plan_document(target.name, source, self.original, self.steps, extra, pinned=self.whole)

    def placement_rows(self) -> list[dict]:
        """Every node with its device, reason and segment step (for a tiled segment, the step it
        was tiled from: its tiles' `tile.of`)."""
        step_of = {id(n): record["name"] for record, seg in zip(self.segments, self.partition.segments)
                   for n in seg.nodes}
        rows = []
        for node in self.graph.nodes:
            placed = self.partition.placements[id(node)]
            rows.append({"node": node.name, "op": node.op, "device": placed.device,
                         "step": step_of.get(id(node)), "reason": placed.reason})
        return rows


def segment_record(step: PlannedStep) -> dict:
    """What the summary says about a partition segment, whether or not it is tiled later."""
    return {"name": step.name, "device": step.device, "nodes": step.extra.get("nodes", 0),
            "macs": step.extra.get("macs", 0), "inputs": list(step.inputs), "outputs": list(step.outputs)}


def build_passes(target: Target, options: RewriteOptions) -> tuple[list[Pass], object]:
    """The pipeline: cleanup, then one pass per rule file (the target's, then the user's), then the
    native passes that need more than a pattern, then cleanup again."""
    passes: list[Pass] = [FoldConstants(), RemovePassthrough()]
    tracer = None
    rule_files = list(target.rule_files) + list(options.rule_files)
    if rule_files:
        from rewriter.transform.rules_pass import rule_file_passes  # lark only when rules are used
        file_passes, tracer = rule_file_passes(rule_files, options.trace_rule)
        passes += file_passes + [ConcatLayout(), SplitToSlices(), RemovePassthrough(), DedupeNodes()]
    elif options.trace_rule:
        raise UserError(f"--trace-rule {options.trace_rule}: no rule files are loaded")
    passes += [SplitGroupedConv(), FoldConstants(), RemoveDeadNodes(), FsqCut()]
    return passes, tracer


def check_cut_names(graph: gs.Graph, options: RewriteOptions) -> None:
    names = {n.name for n in graph.nodes}
    for flag, wanted in (("--start-node", options.start_nodes), ("--end-node", options.end_nodes)):
        for name in wanted:
            if name not in names:
                raise UserError(f"{flag} {name!r}: no node of that name after rewriting "
                                "(see `rewrite inspect` for node names)")


def rewrite(model_path: Path, target: Target, options: RewriteOptions) -> RewriteResult:
    """Load, rewrite, partition and extract. The cyclic garbage collector is paused meanwhile:
    gs graphs are large webs of reference cycles that it would rescan over and over (it cost a
    third of the time on 1,000-node models); what the rewrite discards is collected once, after."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return _rewrite(model_path, target, options)
    finally:
        if paused:
            gc.enable()


def _rewrite(model_path: Path, target: Target, options: RewriteOptions) -> RewriteResult:
    timings = {}
    start = time.perf_counter()
    graph, original = load_graph(model_path, options.input_shapes, frozen=options.frozen)
    frozen = frozen_values(original, options.frozen) if options.frozen else {}
    normalization = None
    if options.normalize:
        normalization = add_normalization(graph, *read_stats(options.normalize))
    timings["load"] = time.perf_counter() - start

    start = time.perf_counter()
    passes, tracer = build_passes(target, options)
    manager = PassManager(passes, debug=options.debug)
    manager.run(graph, PassContext(target=target, options={"rewrite": options}))
    timings["passes"] = time.perf_counter() - start

    start = time.perf_counter()
    check_cut_names(graph, options)
    forced = forced_host_nodes(graph, options.start_nodes, options.end_nodes)
    part = partition(graph, target, forced)
    causes = [c.record() for c in host_causes(graph, target, part, part.names(), forced)]
    timings["partition"] = time.perf_counter() - start

    start = time.perf_counter()
    whole = infer_shapes(model_from_graph(graph, WORKING_OPSET))
    steps = steps_from_partition(whole, list(graph.nodes), part, WORKING_OPSET, target.segment_opset)
    timings["extract"] = time.perf_counter() - start

    start = time.perf_counter()
    segments = [segment_record(s) for s in steps]
    steps, tiling = tile_steps(steps, target.tiling, force=options.force_tiling)
    mark_views(steps)
    reports = {r.step: r for r in tiling}  # hailo segments only
    for record in segments:
        report = reports.get(record["name"])
        if report is not None and report.tiled:
            record["tiled"] = {"reason": report.reason, "hailo_runs": report.hailo_steps,
                               "host_steps": report.host_steps, "stitch_steps": report.stitch_steps,
                               "distinct_files": report.distinct_files,
                               "stages": [{k: st.get(k) for k in ("kind", "grid", "halo")} for st in report.stages]}
    timings["tiling"] = time.perf_counter() - start
    trace = tracer.lines() if tracer is not None else []
    return RewriteResult(graph, original, part, steps, manager, timings, trace, normalization, whole, tiling,
                         segments, frozen, causes)


def rewrite_to_plan(model_path: Path, out: Path, target: Target, options: RewriteOptions,
                    calib: dict | None = None, progress=None) -> tuple[RewriteResult, dict, list[str]]:
    """Rewrite `model_path` and write the plan folder `out` (atomically, validated by the runtime's
    loader before it replaces anything). `calib` ({plan input: (N, ...)}) adds per-step calibration
    data inside the staged plan. Returns (result, plan document, warnings)."""
    from rewriter.plan.writer import write_plan
    result = rewrite(model_path, target, options)
    doc = result.document(target, model_path)
    warnings: list[str] = []
    after = None
    if calib is not None:
        from rewriter.plan.calibration import propagate

        def after(stage):
            warnings.extend(propagate(stage, doc, calib, progress or (lambda m: None)))
    write_plan(out, doc, result.steps, after=after)
    return result, doc, warnings
