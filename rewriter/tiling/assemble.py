"""Turn planned stages into plan steps: host slices in, tile steps, host sums/concats out."""
from __future__ import annotations

import onnx
from onnx import helper, numpy_helper

from rewriter.plan.steps import PlannedStep
from rewriter.tiling.blocks import Job, channel_range, jobs
from rewriter.tiling.dedupe import ModelFiles
from rewriter.tiling.graph import SegGraph
from rewriter.tiling.stages import Stage
from rewriter.tiling.temporal import TimePlan
from rewriter.tiling.tilemodel import build


def host_model(g: SegGraph, st: Stage, name: str) -> onnx.ModelProto:
    nodes = [g.nodes[i] for i in st.nodes]
    used = {x for n in nodes for x in n.input if x}
    inits = [numpy_helper.from_array(g.consts[x], x) for x in sorted(used) if x in g.consts]
    internal = {o for n in nodes for o in n.output if o} - set(st.outputs)
    graph = helper.make_graph(nodes, name, [g.types[x] for x in st.inputs], [g.types[y] for y in st.outputs],
                              inits, value_info=[g.types[x] for x in sorted(internal) if x in g.types])
    model = helper.make_model(graph, opset_imports=list(g.model.opset_import), producer_name="hailo-rewriter")
    model.ir_version = g.model.ir_version
    return model


class StageWriter:
    """Collects the steps of one tiled stage; `alias` renames a lone piece to its final name."""

    def __init__(self, g: SegGraph, st: Stage, plan: TimePlan, n: int, prefix: str):
        self.g, self.st, self.plan, self.n, self.prefix = g, st, plan, n, prefix
        self.steps: list[PlannedStep] = []
        self.cache: dict = {}
        self.files = ModelFiles(prefix)

    def stitch(self, kind: str, inputs: list[str], output: str, **fields) -> str:
        self.steps.append(PlannedStep(f"{self.prefix}_{kind}{len(self.steps)}", "host", list(inputs), [output],
                                      None, {"kind": kind, **fields}))
        return output

    def window(self, x: str, c: tuple[int, int], iv: tuple[int, int]) -> str:
        """x's channels c and W interval iv (zero-filled outside), sliced on the host once."""
        g = self.g
        if c != (0, g.channels(x)):
            key = (x, c)
            if key not in self.cache:
                self.cache[key] = self.stitch("slice", [x], f"{self.prefix}/{x}/c{c[0]}_{c[1]}",
                                              axis=1, start=c[0], end=c[1], pad=[0, 0])
            x_c = self.cache[key]
        else:
            x_c = x
        width = g.width(x)
        if iv == (0, width):
            return x_c
        key = (x_c, iv)
        if key not in self.cache:
            pad = [max(-iv[0], 0), max(iv[1] - width, 0)]
            self.cache[key] = self.stitch("slice", [x_c], f"{x_c}/w{iv[0]}_{iv[1]}", axis=3,
                                          start=iv[0], end=iv[1], pad=pad)
        return self.cache[key]

    def run(self, step_name: str) -> list[PlannedStep]:
        g, st, plan, n = self.g, self.st, self.plan, self.n
        js = jobs(g, st, n)
        pieces: dict[str, dict[tuple[int, int], str]] = {}   # stage output -> (job, tile) -> tensor
        tiles: list[PlannedStep] = []
        for t, tile in enumerate(plan.tiles):
            ivs = plan.ivs[t]
            for job in js:
                model, ext, outs = build(g, st, job, n, ivs, tile, f"{self.prefix}")
                model, file = self.files.add(model)
                ins = [self.window(x, channel_range(g, st, job, x, n), ivs[x]) for x in ext]
                names = [f"{self.prefix}/{y}/j{job.index}t{t}" for y in outs]
                for y, name in zip(outs, names):
                    pieces.setdefault(y, {})[(job.index, t)] = name
                info = {"grid": [len(js), len(plan.tiles)], "halo": plan.halo, "index": [job.index, t],
                        "offset": tile[0], "width": tile[1] - tile[0], "of": step_name}
                if st.kind == "partial":
                    info["block"] = {"out": job.ob, "in": job.ib}
                s = PlannedStep(f"{self.prefix}_j{job.index}_t{t}", "hailo", ins, names, model,
                                {"model_file": file, "nodes": len(model.graph.node), "tile": info})
                self.steps.append(s)
                tiles.append(s)
        for s in tiles:
            s.extra["tile"]["distinct"] = len(self.files)
        alias = {}
        for y, got in pieces.items():
            alias.update(self._combine(y, got, js))
        for s in self.steps:
            s.outputs = [alias.get(o, o) for o in s.outputs]
            s.inputs = [alias.get(x, x) for x in s.inputs]
        return self.steps

    def _combine(self, y: str, got: dict, js: list[Job]) -> dict:
        """Sum input blocks, concat time tiles, concat output blocks, ending in tensor y."""
        n_t = len(self.plan.tiles)
        groups: dict[int, list[str]] = {}
        if self.st.kind == "partial":
            n_in = max(j.ib for j in js) + 1
            for ob in range(max(j.ob for j in js) + 1):
                per_t = []
                for t in range(n_t):
                    parts = [got[(ob * n_in + ib, t)] for ib in range(n_in)]
                    per_t.append(parts[0] if len(parts) == 1 else
                                 self.stitch("sum", parts, f"{self.prefix}/{y}/o{ob}t{t}"))
                groups[ob] = per_t
        else:
            for (j, t) in sorted(got):
                groups.setdefault(j, []).append(got[(j, t)])
        blocks = [v[0] if len(v) == 1 else self.stitch("concat", v, f"{self.prefix}/{y}/b{k}", axis=3)
                  for k, v in sorted(groups.items())]
        if len(blocks) > 1:
            self.stitch("concat", blocks, y, axis=1)
            return {}
        last = blocks[0]
        return {last: y}
