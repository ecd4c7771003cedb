"""Build the model of one device stage: every layer of the stage, its channel blocks side by side,
computed on one tile's intervals, with a symbolic batch dimension (`tiles`) so all time tiles run
as one batch. Its graph inputs are windows of the stage inputs (gathered by the runtime, zero
outside [0, W)) and 0/1 masks; its outputs are channel blocks of one tile of the stage outputs.

Exactness at the sequence ends: W-pads of convs/pools are removed (the halo brings the real
neighbours, the gathered windows bring zeros outside [0, W)). A tensor computed *inside* the tile
also needs zeros outside [0, W) before a conv/pool/ConvTranspose reads it, as the untiled model
pads it; unless it provably is zero there already (elementwise ops with f(0) = 0 of such tensors),
it is multiplied by a 0/1 mask that is a model input built by the runtime from the tile geometry.
So interior and edge tiles run the same model. See docs/tiling.md.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper

from rewriter.ir.build import add_initializer, make_model
from rewriter.tiling.fit import Fit
from rewriter.tiling.graph import SegGraph
from rewriter.tiling.limits import ACTIVATIONS, CONVS, HEAVY, is_depthwise, keeps_zero, np_dtype, spatial
from rewriter.tiling.receptive import needs, produced, window
from rewriter.tiling.stages import Stage

BATCH = "tiles"  # the symbolic batch dimension: one entry per time tile
Block = tuple[int, int]


def ranges(c: int, n: int | None) -> list[Block]:
    if n is None or c <= n:
        return [(0, c)]
    return [(c0, min(c0 + n, c)) for c0 in range(0, c, n)]


@dataclass
class StageModel:
    """The one model that serves every tile of a stage, and its tile bindings."""

    model: onnx.ModelProto
    inputs: list[dict]  # `tiles.inputs` bindings, graph input order
    outputs: list[dict]  # `tiles.outputs` bindings, graph output order
    layers: Counter = field(default_factory=Counter)  # stage node -> layers it became
    weights: Counter = field(default_factory=Counter)  # stage node -> int8 weight bytes

    @property
    def layer_count(self) -> int:
        return sum(self.layers.values())

    @property
    def weight_bytes(self) -> int:
        return sum(self.weights.values())


def _sl(a: np.ndarray, axis: int, r: Block) -> np.ndarray:
    idx = [slice(None)] * a.ndim
    idx[axis] = slice(*r)
    return np.ascontiguousarray(a[tuple(idx)])


class _Builder:
    def __init__(self, g: SegGraph, st: Stage, fit: Fit):
        self.g, self.st, self.geo, self.block = g, st, fit.geo, fit.block
        self.nodes: list[onnx.NodeProto] = []
        self.inits: dict[str, np.ndarray] = {}
        self.sources: dict[str, str] = {}  # init -> the segment's initializer it equals, unsliced
        self.avail: dict[str, tuple[list[str], list[Block], tuple[int, int]]] = {}  # names, layout, interval
        self.cuts: dict = {}
        self.zero: set[str] = set()  # tensors exactly zero outside [0, W) in every tile
        self.masks: dict[tuple, str] = {}  # geometry -> mask input
        self.expanded: dict[tuple, str] = {}  # (mask, channels) -> mask broadcast to that many channels
        self.graph_inputs: list[onnx.ValueInfoProto] = []
        self.bindings: list[dict] = []
        self.cur = -1
        self.layers: Counter = Counter()
        self.weights: Counter = Counter()
        self.inside = set(st.nodes)

    # ---- small helpers ----------------------------------------------------------------------
    def const(self, name: str, value, source: str | None = None) -> str:
        """An initializer; names made here start with `tile__` so they never meet the model's own.
        `source`: the segment's initializer `value` is, whole (its bytes are then copied as they are)."""
        if name not in self.inits:
            self.inits[name] = np.asarray(value)
            if source is not None:
                self.sources[name] = source
        return name

    def add(self, op: str, inputs: list[str], out: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        if op not in ACTIVATIONS:
            self.layers[self.cur] += 1
        return out

    def value(self, name: str, elem: int, c: int, h: int, w: int) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, elem, [BATCH, c, h, w])

    def std(self, c: int) -> list[Block]:
        return ranges(c, self.block)

    def cut(self, x: str, iv: tuple[int, int]) -> tuple[list[str], list[Block]]:
        """x's blocks restricted to interval iv (Slices when it is computed on a wider one). Cached
        per block tensor: tensors that share blocks (a channel Concat, a W Slice) share the cut."""
        names, layout, have = self.avail[x]
        if have == iv:
            return names, layout
        lo, hi = iv[0] - have[0], iv[1] - have[0]
        out = []
        for n in names:
            key = (n, lo, hi)
            if key not in self.cuts:
                starts = self.const(f"tile__w{lo}", np.array([lo], np.int64))
                ends = self.const(f"tile__w{hi}", np.array([hi], np.int64))
                axis = self.const("tile__axis_w", np.array([3], np.int64))
                self.cuts[key] = self.add("Slice", [n, starts, ends, axis], f"{n}__w{lo}_{hi}")
            out.append(self.cuts[key])
        return out, layout

    def reblock(self, names: list[str], src: list[Block], dst: list[Block]) -> list[str]:
        """The same tensor in another channel layout (channel Slices, Concat where blocks span)."""
        if src == dst:
            return names
        out = []
        for a, b in dst:
            pieces = []
            for n, (s0, s1) in zip(names, src):
                lo, hi = max(a, s0), min(b, s1)
                if lo >= hi:
                    continue
                if (lo, hi) == (s0, s1):
                    pieces.append(n)
                else:
                    st_ = self.const(f"tile__c{lo - s0}", np.array([lo - s0], np.int64))
                    en_ = self.const(f"tile__c{hi - s0}", np.array([hi - s0], np.int64))
                    pieces.append(
                        self.add(
                            "Slice",
                            [n, st_, en_, self.const("tile__axis_c", np.array([1], np.int64))],
                            f"{n}__c{lo - s0}_{hi - s0}",
                        )
                    )
            out.append(pieces[0] if len(pieces) == 1 else self.add("Concat", pieces, f"{names[0]}__r{a}_{b}", axis=1))
        return out

    def per_channel(self, x: str, c_out: int, r: Block) -> str:
        """Constant x for output channels r (sliced when it varies per channel)."""
        a = self.g.consts[x]
        if a.ndim >= 3 and a.shape[-3] == c_out and c_out > 1 and r != (0, c_out):
            return self.const(f"{x}__c{r[0]}_{r[1]}", _sl(a, a.ndim - 3, r))
        return self.const(x, a, source=x)

    # ---- stage inputs and outputs -----------------------------------------------------------
    def bind_input(self, x: str) -> None:
        g, geo = self.g, self.geo
        lo, hi = geo.iv[x]
        layout = self.std(g.channels(x))
        names = []
        for a, b in layout:
            name = x if layout == [(0, g.channels(x))] else f"{x}__c{a}_{b}"
            self.graph_inputs.append(self.value(name, g.elem_type(x), b - a, g.shape(x)[2], hi - lo))
            self.bindings.append({"tensor": x, "channels": [a, b], "start": lo, "step": geo.step[x], "width": hi - lo})
            names.append(name)
        self.avail[x] = (names, layout, (lo, hi))
        self.zero.add(x)  # the runtime zero-fills what lies outside [0, W)

    def outputs(self) -> tuple[list[onnx.ValueInfoProto], list[dict]]:
        g, tw = self.g, self.geo.tw
        values, bindings, used = [], [], {v.name for v in self.graph_inputs}
        for y in self.st.outputs:
            names, layout = self.cut(y, (0, tw))
            for n, (a, b) in zip(names, layout):
                if n in used:  # a graph output must be its own tensor
                    n = self.add("Identity", [n], f"{y}__c{a}_{b}__out")
                used.add(n)
                values.append(self.value(n, g.elem_type(y), b - a, g.shape(y)[2], tw))
                bindings.append({"tensor": y, "channels": [a, b], "width": tw, "length": g.width(y)})
        return values, bindings

    # ---- masks ------------------------------------------------------------------------------
    def mask(self, y: str) -> None:
        """Zero y outside [0, W) (as the untiled model's padding of y) before a spatial op reads it."""
        g, geo = self.g, self.geo
        names, layout, (lo, hi) = self.avail[y]
        width, step = g.width(y), geo.step[y]
        if y in self.zero or (lo >= 0 and hi + (geo.count - 1) * step <= width):
            return
        if not any(spatial(g, c) for c in g.consumers.get(y, []) if c in self.inside):
            return  # values outside [0, W) are only ever cropped away
        h = g.shape(y)[2]
        key = (width, lo, step, hi - lo, h)
        if key not in self.masks:
            name = f"mask{len(self.masks)}"
            self.masks[key] = name
            self.graph_inputs.append(self.value(name, g.elem_type(y), 1, h, hi - lo))
            self.bindings.append({"mask": {"length": width, "start": lo, "step": step, "width": hi - lo, "height": h}})
        m = self.masks[key]
        masked = []
        for n, (a, b) in zip(names, layout):
            ek = (m, b - a)
            if ek not in self.expanded:  # 1 -> c channels by a 1x1 conv of ones: no broadcasting on the device
                ones = self.const(f"tile__ones{b - a}", np.ones((b - a, 1, 1, 1), np_dtype(g.elem_type(y))))
                self.expanded[ek] = self.add("Conv", [m, ones], f"{m}__x{b - a}", kernel_shape=[1, 1])
            if (n, m) not in self.cuts:  # blocks shared by two tensors are masked once
                self.cuts[(n, m)] = self.add("Mul", [n, self.expanded[ek]], f"{n}__{m}")
            masked.append(self.cuts[(n, m)])
        self.avail[y] = (masked, layout, (lo, hi))
        self.zero.add(y)

    # ---- one stage node ---------------------------------------------------------------------
    def emit(self, i: int) -> None:
        g, node = self.g, self.g.nodes[i]
        self.cur = i
        op, y = node.op_type, node.output[0]
        ivy = self.geo.iv[y]
        reads = needs(g, i, ivy)
        if op in CONVS:
            names, layout, made = self._conv(i, reads)
        elif op == "Concat":
            names, layout, made = self._concat(i, reads)
        elif op == "Slice":  # a W-only Slice: the interval bookkeeping already shifted it
            names, layout = self.cut(node.input[0], reads[node.input[0]])
            made = ivy
        else:
            names, layout, made = self._elementwise(i, reads)
        self.avail[y] = (names, layout, made)
        if made != ivy:
            self.avail[y] = (*self.cut(y, ivy), ivy)
        if keeps_zero(g, i, self.zero):
            self.zero.add(y)
        self.mask(y)

    def _attrs(self, i: int) -> dict:
        """The node's attributes with W padding removed (H padding made explicit)."""
        g = self.g
        at = dict(g.attrs[i])
        if g.nodes[i].op_type not in HEAVY:
            return at
        at.pop("auto_pad", None)
        hw = window(g, i, axis=-2)
        at["pads"] = [hw.pl, 0, hw.pr, 0]
        if g.nodes[i].op_type == "ConvTranspose" and "output_padding" in at:
            at["output_padding"] = [hw.out_pad, 0]
        return at

    def _conv(self, i: int, reads: dict):
        g, node = self.g, self.g.nodes[i]
        op, x, y = node.op_type, node.input[0], node.output[0]
        xs, lx = self.cut(x, reads[x])
        w = g.consts[node.input[1]]
        b = g.consts[node.input[2]] if len(node.input) > 2 and node.input[2] else None
        at = self._attrs(i)
        made = produced(g, i, self.geo.iv[y])
        if is_depthwise(g, i):
            out = []
            for n, r in zip(xs, lx):
                tag = "" if len(lx) == 1 else f"__c{r[0]}_{r[1]}"
                whole = r == (0, w.shape[0])
                ins = [n, self.const(node.input[1] + tag, _sl(w, 0, r), node.input[1] if whole else None)]
                if b is not None:
                    ins.append(self.const(node.input[2] + tag, _sl(b, 0, r), node.input[2] if whole else None))
                self.weights[i] += (r[1] - r[0]) * int(np.prod(w.shape[1:]))
                out.append(self.add(op, ins, y + tag, **{**at, "group": r[1] - r[0]}))
            return out, lx, made
        out_axis, in_axis = (0, 1) if op == "Conv" else (1, 0)
        ly = self.std(g.channels(y))
        out = []
        for o in ly:
            tag = "" if len(ly) == 1 else f"__c{o[0]}_{o[1]}"
            parts = []
            for k, (n, r) in enumerate(zip(xs, lx)):
                part = f"{y}{tag}" + ("" if len(lx) == 1 else f"__i{r[0]}_{r[1]}")
                wk = _sl(_sl(w, out_axis, o), in_axis, r)
                whole = o == (0, w.shape[out_axis]) and r == (0, w.shape[in_axis])
                ins = [
                    n,
                    self.const(f"{node.input[1]}__o{o[0]}_{o[1]}_i{r[0]}_{r[1]}", wk, node.input[1] if whole else None),
                ]
                if b is not None and k == 0:  # the bias once, on the first input block
                    bias = node.input[2] if o == (0, b.shape[0]) else None
                    ins.append(self.const(f"{node.input[2]}__o{o[0]}_{o[1]}", _sl(b, 0, o), bias))
                self.weights[i] += wk.size
                parts.append(self.add(op, ins, part, **at))
            out.append(self._sum(parts, f"{y}{tag}"))
        return out, ly, made

    def _sum(self, parts: list[str], name: str) -> str:
        """Partial products of the input blocks added pairwise (a balanced tree of Adds)."""
        k = 0
        while len(parts) > 1:
            nxt = []
            for a in range(0, len(parts) - 1, 2):
                nxt.append(self.add("Add", [parts[a], parts[a + 1]], f"{name}__s{k}"))
                k += 1
            parts = nxt + parts[len(parts) - len(parts) % 2 :]
        return parts[0]

    def _concat(self, i: int, reads: dict):
        g, node = self.g, self.g.nodes[i]
        y = node.output[0]
        names, layout, off = [], [], 0
        for x in node.input:
            xs, lx = self.cut(x, reads[x])
            names += xs
            layout += [(a + off, b + off) for a, b in lx]
            off += g.channels(x)
        if len(names) > 1 and (self.block is None or off <= self.block):
            return [self.add("Concat", names, y, axis=1)], [(0, off)], self.geo.iv[y]
        return names, layout, self.geo.iv[y]

    def _elementwise(self, i: int, reads: dict):
        g, node = self.g, self.g.nodes[i]
        y = node.output[0]
        c = g.channels(y)
        operands = {}
        for x in g.var_inputs(i):
            operands[x] = self.cut(x, reads[x])
        ref = next((operands[x][1] for x in g.var_inputs(i) if g.channels(x) == c), self.std(c))
        for x, (xs, lx) in operands.items():
            if g.channels(x) == c:
                operands[x] = (self.reblock(xs, lx, ref), ref)
        at = self._attrs(i)
        out = []
        for k, r in enumerate(ref):
            tag = "" if len(ref) == 1 else f"__c{r[0]}_{r[1]}"
            ins = []
            for x in node.input:
                if not x:
                    ins.append("")
                elif g.is_const(x):
                    ins.append(self.per_channel(x, c, r))
                else:
                    xs, _ = operands[x]
                    ins.append(xs[k] if g.channels(x) == c else xs[0])  # one channel broadcast to all
            out.append(self.add(node.op_type, ins, y + tag, **at))
        return out, ref, self.geo.iv[y]


def build(g: SegGraph, st: Stage, fit: Fit, name: str) -> StageModel:
    b = _Builder(g, st, fit)
    for x in st.inputs:
        b.bind_input(x)
    for i in st.nodes:
        b.emit(i)
    outs, out_bindings = b.outputs()
    model = make_model(
        b.nodes,
        name,
        b.graph_inputs,
        outs,
        opset_imports=list(g.model.opset_import),
        producer_name="hailo-rewriter",
        ir_version=g.model.ir_version,
    )
    for k, v in b.inits.items():
        add_initializer(model.graph, k, v, g.protos.get(b.sources.get(k, "")))
    return StageModel(model, b.bindings, out_bindings, b.layers, b.weights)
