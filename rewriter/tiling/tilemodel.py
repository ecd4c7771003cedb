"""Build the ONNX model of one (job, tile) of a stage.

W-pads of convs/pools are removed: the halo brings real neighbours, and positions outside a
tensor's [0, W) are zero — for stage inputs the host slice zero-fills them, for tensors computed
inside the tile a constant 0/1 mask (Mul) zeroes them before any conv/pool reads them, exactly
as the untiled model pads that intermediate tensor. Names depend only on the tile's shape, not
its position, so identical tiles serialize to identical bytes (see dedupe.py).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from rewriter.tiling.blocks import Job, channel_range, node_consts
from rewriter.tiling.graph import SegGraph
from rewriter.tiling.limits import np_dtype
from rewriter.tiling.receptive import SPATIAL, needs, produced
from rewriter.tiling.stages import Stage


def job_outputs(g: SegGraph, st: Stage, job: Job, n: int) -> list[str]:
    """Blocked outputs come from every job; whole ones (<= N channels) from job 0 only."""
    if st.kind == "partial":
        return list(st.outputs)
    return [y for y in st.outputs if (g.channels(y) > n and job.out is not None) or job.index == 0]


def _needed_nodes(g: SegGraph, st: Stage, outputs: list[str]) -> list[int]:
    want, keep = set(outputs), []
    for i in reversed(st.nodes):
        if g.nodes[i].output[0] in want:
            keep.append(i)
            want.update(g.var_inputs(i))
    return keep[::-1]


class _Builder:
    def __init__(self, g: SegGraph, st: Stage, job: Job, n: int):
        self.g, self.st, self.job, self.n = g, st, job, n
        self.nodes: list[onnx.NodeProto] = []
        self.inits: dict[str, np.ndarray] = {}
        self.avail: dict[str, tuple[str, tuple[int, int]]] = {}   # tensor -> (tile name, interval)
        self.cuts: dict = {}

    def const(self, name: str, value) -> str:
        self.inits.setdefault(name, np.asarray(value))
        return name

    def cut(self, x: str, iv: tuple[int, int]) -> str:
        """Tensor x restricted to iv (a Slice when it is computed on a wider interval)."""
        name, have = self.avail[x]
        if have == iv:
            return name
        key = (x, iv)
        if key not in self.cuts:
            lo, hi = iv[0] - have[0], iv[1] - have[0]
            out = f"{name}__w{lo}_{hi}"
            self.nodes.append(helper.make_node(
                "Slice", [name, self.const(f"{out}__lo", np.array([lo], np.int64)),
                          self.const(f"{out}__hi", np.array([hi], np.int64)),
                          self.const("axis_w", np.array([3], np.int64))], [out], name=out))
            self.cuts[key] = out
        return self.cuts[key]

    def emit(self, i: int, ivs: dict) -> None:
        g, node = self.g, self.g.nodes[i]
        y = node.output[0]
        consts, attrs = node_consts(g, self.st, self.job, i, self.n)
        reads = needs(g, i, ivs[y])
        inputs = []
        for x in node.input:
            if not x:
                inputs.append("")
            elif g.is_const(x):
                if x in consts and consts[x] is None:
                    continue   # a bias dropped on a later input block
                name, value = consts.get(x, (x, g.consts[x]))
                inputs.append(self.const(name, value))
            else:
                inputs.append(self.cut(x, reads[x]))
        new_attrs = dict(g.attrs[i])
        new_attrs.update(attrs)
        op = node.op_type
        if op in SPATIAL:   # W padding now comes from the halo / zero fill / masks
            new_attrs.pop("auto_pad", None)
            pads = list(new_attrs.get("pads") or [0, 0, 0, 0])
            if op != "ConvTranspose" and (g.attrs[i].get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")):
                pads = [0, 0, 0, 0]   # H stays 1 with SAME padding only for 1-high kernels
            pads[1] = pads[3] = 0
            new_attrs["pads"] = pads
            if op == "ConvTranspose":
                new_attrs.pop("output_padding", None)
        if op == "Slice":   # the interval bookkeeping already did the shift: keep everything
            inputs = [inputs[0], self.const("zero_w", np.array([0], np.int64)),
                      self.const(f"{y}__n", np.array([ivs[y][1] - ivs[y][0]], np.int64)),
                      self.const("axis_w", np.array([3], np.int64))]
        raw = y if op != "ConvTranspose" or produced(g, i, ivs[y]) == ivs[y] else f"{y}__raw"
        self.nodes.append(helper.make_node(op, inputs, [raw], name=node.name, domain=node.domain, **new_attrs))
        self.avail[y] = (raw, produced(g, i, ivs[y]))
        if raw != y:
            self.avail[y] = (self.cut(y, ivs[y]), ivs[y])
        self._mask(y, ivs[y])

    def _mask(self, y: str, iv: tuple[int, int]) -> None:
        g = self.g
        width = g.width(y)
        if iv[0] >= 0 and iv[1] <= width:
            return
        spatial = any(g.nodes[c].op_type in SPATIAL for c in g.consumers.get(y, []) if c in self.st.nodes)
        if not spatial:
            return   # garbage outside [0, W) is only ever cropped away
        pos = np.arange(iv[0], iv[1])
        mask = ((pos >= 0) & (pos < width)).astype(np_dtype(g.elem_type(y))).reshape(1, 1, 1, -1)
        name, _ = self.avail[y]
        lo, hi = -iv[0] if iv[0] < 0 else 0, max(iv[1] - width, 0)
        out = f"{y}__m{lo}_{hi}"
        self.nodes.append(helper.make_node("Mul", [name, self.const(f"{out}__k", mask)], [out], name=out))
        self.avail[y] = (out, iv)


def build(g: SegGraph, st: Stage, job: Job, n: int, ivs: dict, tile: tuple[int, int],
          graph_name: str) -> tuple[onnx.ModelProto, list[str], list[str]]:
    """(model, stage tensors bound to its inputs, stage tensors its outputs are tiles of)."""
    outputs = job_outputs(g, st, job, n)
    keep = _needed_nodes(g, st, outputs)
    used = {x for i in keep for x in g.var_inputs(i)}
    ext = [x for x in st.inputs if x in used]
    b = _Builder(g, st, job, n)
    ins = []
    for x in ext:
        c0, c1 = channel_range(g, st, job, x, n)
        shape = list(g.shape(x))
        shape[1], shape[3] = c1 - c0, ivs[x][1] - ivs[x][0]
        ins.append(helper.make_tensor_value_info(x, g.elem_type(x), shape))
        b.avail[x] = (x, ivs[x])
    for i in keep:
        b.emit(i, ivs)
    outs = []
    for y in outputs:
        name = b.cut(y, tile)
        if name in ext or name in [o.name for o in outs]:   # an output must be a distinct tensor
            b.nodes.append(helper.make_node("Identity", [name], [f"{y}__out"], name=f"{y}__out"))
            name = f"{y}__out"
        c0, c1 = channel_range(g, st, job, y, n)
        shape = list(g.shape(y))
        shape[1], shape[3] = c1 - c0, tile[1] - tile[0]
        outs.append(helper.make_tensor_value_info(name, g.elem_type(y), shape))
    graph = helper.make_graph(b.nodes, graph_name, ins, outs,
                              [numpy_helper.from_array(v, k) for k, v in b.inits.items()])
    model = helper.make_model(graph, opset_imports=list(g.model.opset_import), producer_name="hailo-rewriter")
    model.ir_version = g.model.ir_version
    model = shape_inference.infer_shapes(model, strict_mode=True)
    return model, ext, outputs
