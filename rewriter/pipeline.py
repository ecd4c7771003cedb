"""The `rewrite` job: load -> passes -> partition -> plan steps (`rewrite`), and the same written
as a validated plan folder (`rewrite_to_plan`)."""

from __future__ import annotations

import gc
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import onnx
import onnx_graphsurgeon as gs

from passes.dedupe_nodes import DedupeNodes
from passes.fold_constants import FoldConstants
from passes.gathered_linear_resize import GatheredLinearResize
from passes.normalize_input import add_normalization, read_stats
from passes.remove_dead import RemoveDeadNodes
from passes.split_to_slices import SplitToSlices
from passes.stacked_sum import StackedSumToAdds
from rewriter.errors import UserError
from rewriter.ir.annotations import has_origin, origin_of
from rewriter.ir.freeze import frozen_values
from rewriter.ir.load import WORKING_OPSET, infer_shapes, load_graph, model_from_graph
from rewriter.ir.order import toposort
from rewriter.ir.outputs import check_computes_something, check_has_inputs, constant_outputs_as_nodes
from rewriter.ir.prefetch import source_entry as prefetched_entry
from rewriter.ir.widen import TargetWidening
from rewriter.partition.causes import host_causes
from rewriter.partition.partitioner import Partition, forced_host_nodes, partition
from rewriter.partition.placement import HOST
from rewriter.plan.document import plan_document
from rewriter.plan.merge_host import merge_host_steps
from rewriter.plan.steps import PlannedStep, steps_from_partition
from rewriter.plan.views import mark_views
from rewriter.target import Target
from rewriter.tiling import tile_steps
from rewriter.tiling.host_causes import tiled_causes, tiled_host_nodes
from rewriter.transform.pass_manager import Pass, PassContext, PassManager
from runtime.schema import file_entry


@dataclass
class RewriteOptions:
    """What the user asked of a rewrite (the CLI's options)."""

    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    rule_files: list[Path] = field(default_factory=list)  # user rules, after the target's
    start_nodes: list[str] = field(default_factory=list)
    end_nodes: list[str] = field(default_factory=list)
    debug: bool = False
    trace_rule: str | list[str] | None = None  # one rule name or several
    disabled_rules: list[str] = field(default_factory=list)
    helper_files: list[Path] = field(default_factory=list)  # --helpers FILE.py
    rules_first: bool = False  # user rule files run before the target's
    normalize: Path | None = None
    frozen: dict[str, list[str]] = field(default_factory=dict)  # --freeze: inputs held at a value
    keep_narrow_floats: bool = False  # --keep-float16: no widening of float16/bfloat16 to float32


@dataclass
class RewriteResult:
    """Everything a rewrite produced, before the plan is written."""

    graph: gs.Graph
    original: onnx.ModelProto
    partition: Partition
    steps: list[PlannedStep]
    manager: PassManager
    timings: dict[str, float]
    trace: list[str] = field(default_factory=list)  # lines of the (first) traced rule
    normalization: dict | None = None
    # normalized model with static shapes, same I/O names; its large float weights are dims only
    whole: onnx.ModelProto | None = None
    tiling: list = field(default_factory=list)  # TilingReport per tiled segment
    segments: list[dict] = field(default_factory=list)  # per partition segment, before tiling
    traces: dict[str, list[str]] = field(default_factory=dict)  # traced rule -> lines
    frozen: dict[str, dict] = field(default_factory=dict)  # frozen inputs: dtype, shape, value
    causes: list[dict] = field(default_factory=list)  # host nodes by cause, with the round trips each costs
    widening: dict | None = None  # float16/bfloat16 widened to float32 for the target, or why not

    def document(self, target: Target, source: Path, source_entry: dict | None = None) -> dict:
        extra = {"normalization": self.normalization} if self.normalization else {}
        if self.frozen:
            extra["frozen"] = [{"name": name, **spec} for name, spec in self.frozen.items()]
        if self.widening:
            extra["widening"] = self.widening
        extra["segments"] = self.segments
        extra["causes"] = self.causes
        extra["placement"] = self.placement_rows()
        return plan_document(
            target.name, source, self.original, self.steps, extra, pinned=self.whole, source_entry=source_entry
        )

    def placement_rows(self) -> list[dict]:
        """Every node with its device, reason and segment step (for a tiled segment, the step it
        was tiled from: its tiles' `tile.of`)."""
        step_of = {
            id(n): record["name"] for record, seg in zip(self.segments, self.partition.segments) for n in seg.nodes
        }
        tiled_host = tiled_host_nodes(self.segments)
        rows = []
        for node in self.graph.nodes:
            placed = self.partition.placements[id(node)]
            row = {
                "node": node.name,
                "op": node.op,
                "device": placed.device,
                "step": step_of.get(id(node)),
                "reason": placed.reason,
            }
            moved = tiled_host.get(node.name)
            if moved is not None:  # tiling runs it in a host step between device stages
                row.update(device=HOST, step=moved["step"], reason=moved["reason"])
            if has_origin(node):  # a rule made it: the source model's nodes it stands for
                row["origin"] = origin_of(node)
            rows.append(row)
        return rows


def segment_record(step: PlannedStep) -> dict:
    """What the summary says about a partition segment, whether or not it is tiled later."""
    return {
        "name": step.name,
        "device": step.device,
        "nodes": step.extra.get("nodes", 0),
        "macs": step.extra.get("macs", 0),
        "inputs": list(step.inputs),
        "outputs": list(step.outputs),
    }


def trace_names(options: RewriteOptions) -> list[str]:
    t = options.trace_rule
    return [] if not t else [t] if isinstance(t, str) else list(t)


def build_passes(target: Target, options: RewriteOptions) -> tuple[list[Pass], list]:
    """The pipeline: constant folding, then one pass per rule file (the common passthrough rules,
    the target's, the user's: after the target's, or before them with `rules_first`), CSE, and
    cleanup again. Returns the passes and the tracers of `--trace-rule`."""
    from passes.helpers import helpers_with
    from rewriter.transform.rules_pass import COMMON_RULES, rule_file_passes

    user = list(options.rule_files)
    ordered = user + list(target.rule_files) if options.rules_first else list(target.rule_files) + user
    rule_files = sorted(COMMON_RULES.glob("*.rw")) + ordered
    file_passes, tracers = rule_file_passes(
        rule_files, trace_names(options), helpers_with(options.helper_files), options.disabled_rules
    )
    # what needs more than a pattern: dynamo's gathered linear upsample as the Resize it is and a
    # sum of stacked parts as Adds (both before the rules reshape their pieces), a Split of any
    # arity as Slices
    passes: list[Pass] = [FoldConstants(), GatheredLinearResize(), StackedSumToAdds()] + file_passes
    passes += [SplitToSlices(), DedupeNodes(), FoldConstants(), RemoveDeadNodes()]
    return passes, tracers


def resolve_cut_names(graph: gs.Graph, options: RewriteOptions) -> tuple[list[str], list[str]]:
    """--start-node/--end-node names as rewritten node names. A name of the source model (as Netron
    or the DFC show it) stands for the rewritten nodes whose origin lists it: for --end-node the
    last of them in graph order, for --start-node the first, so the cut keeps all of them."""
    names = {n.name for n in graph.nodes}
    by_origin: dict[str, list[str]] = {}
    for node in graph.nodes:  # toposorted by the passes
        if has_origin(node):
            for source in origin_of(node):
                by_origin.setdefault(source, []).append(node.name)
    resolved = []
    for flag, wanted in (("--start-node", options.start_nodes), ("--end-node", options.end_nodes)):
        out = []
        for name in wanted:
            if name in names:
                out.append(name)
            elif name in by_origin:
                nodes = by_origin[name]
                out.append(nodes[0] if flag == "--start-node" else nodes[-1])
            else:
                raise UserError(
                    f"{flag} {name!r}: no node of that name, before or after rewriting "
                    "(see `rewrite inspect` for node names)"
                )
        resolved.append(out)
    return resolved[0], resolved[1]


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
    widening = None if options.keep_narrow_floats else TargetWidening(target.dtypes)
    graph, original = load_graph(model_path, options.input_shapes, frozen=options.frozen, widen=widening)
    check_has_inputs(graph)
    frozen = frozen_values(original, options.frozen) if options.frozen else {}
    normalization = None
    if options.normalize:
        normalization = add_normalization(graph, *read_stats(options.normalize))
    timings["load"] = time.perf_counter() - start

    start = time.perf_counter()
    passes, tracers = build_passes(target, options)
    manager = PassManager(passes, debug=options.debug)
    manager.run(graph, PassContext(target=target, options={"rewrite": options}))
    toposort(graph)  # what follows reads graph order; a rule file with nothing to match leaves it as is
    timings["passes"] = time.perf_counter() - start

    start = time.perf_counter()
    constant_outputs_as_nodes(graph)
    check_computes_something(graph)
    start_nodes, end_nodes = resolve_cut_names(graph, options)
    forced = forced_host_nodes(graph, start_nodes, end_nodes)
    part = partition(graph, target, forced)
    causes = [c.record() for c in host_causes(graph, target, part, part.names(), forced)]
    timings["partition"] = time.perf_counter() - start

    start = time.perf_counter()
    try:
        # the large weights go straight from the graph into the segments: the whole model holds
        # their dims only (all inference reads of them), not a copy of 20 MB to be copied out again
        deferred: dict = {}
        whole = infer_shapes(model_from_graph(graph, WORKING_OPSET, deferred), consume=True)
        steps = steps_from_partition(whole, list(graph.nodes), part, WORKING_OPSET, target.segment_opset, deferred)
    except Exception as exc:  # a pass broke the graph: name the rule and node when one did
        from rewriter.transform.blame import blame

        culprit = blame(graph)
        if culprit is None:
            raise
        raise UserError(culprit) from exc
    timings["extract"] = time.perf_counter() - start

    start = time.perf_counter()
    segments = [segment_record(s) for s in steps]
    steps, tiling = tile_steps(steps, target.tiling, consume=True)
    steps = merge_host_steps(steps, [o.name for o in original.graph.output])
    mark_views(steps)
    reports = {r.step: r for r in tiling}  # hailo segments only
    for record in segments:
        report = reports.get(record["name"])
        if report is not None and report.tiled:
            record["tiled"] = {
                "reason": report.reason,
                "device_steps": report.device_steps,
                "host_steps": report.host_steps,
                "stages": report.stages,
            }
    causes += tiled_causes(segments)
    timings["tiling"] = time.perf_counter() - start
    traces = {t.name: t.lines() for t in tracers}
    trace = next(iter(traces.values()), [])
    return RewriteResult(
        graph,
        original,
        part,
        steps,
        manager,
        timings,
        trace,
        normalization,
        whole,
        tiling,
        segments,
        traces,
        frozen,
        causes,
        widening.record if widening else None,
    )


def rewrite_to_plan(
    model_path: Path, out: Path, target: Target, options: RewriteOptions, calib: dict | None = None, progress=None
) -> tuple[RewriteResult, dict, list[str]]:
    """Rewrite `model_path` and write the plan folder `out` (atomically, validated by the runtime's
    loader before it replaces anything). `calib` ({plan input: (N, ...)}) adds per-step calibration
    data inside the staged plan. Returns (result, plan document, warnings)."""
    from rewriter.plan.writer import write_plan

    # the source's sha256: the CLI's prefetch took it, or it is taken beside the rewrite (file reads
    # and hashlib release the GIL)
    with ThreadPoolExecutor(max_workers=1) as pool:
        source_entry = pool.submit(lambda: prefetched_entry(model_path) or file_entry(Path(model_path)))
        result = rewrite(model_path, target, options)
        doc = result.document(target, model_path, source_entry.result())
    warnings: list[str] = []
    after = None
    if calib is not None:
        from rewriter.plan.calibration import propagate

        def after(stage):
            warnings.extend(propagate(stage, doc, calib, progress or (lambda m: None)))

    write_plan(out, doc, result.steps, after=after)
    return result, doc, warnings
