"""Channel blocks: which channels a job computes and the weight slices that go with them."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rewriter.tiling.graph import SegGraph
from rewriter.tiling.limits import is_depthwise
from rewriter.tiling.stages import Stage


def ranges(c: int, n: int) -> list[tuple[int, int]]:
    return [(c0, min(c0 + n, c)) for c0 in range(0, c, n)]


@dataclass(frozen=True)
class Job:
    index: int
    out: tuple[int, int] | None     # channel range of blocked outputs (None: whole)
    inp: tuple[int, int] | None     # partial stages: input channel range
    ob: int = 0
    ib: int = 0


def jobs(g: SegGraph, st: Stage, n: int) -> list[Job]:
    if st.kind == "partial":
        node = g.nodes[st.nodes[0]]
        outs = ranges(g.channels(node.output[0]), n)
        ins = ranges(g.channels(node.input[0]), n)
        return [Job(k * len(ins) + j, o, i, k, j) for k, o in enumerate(outs) for j, i in enumerate(ins)]
    if st.cs is None:
        return [Job(0, None, None)]
    return [Job(k, r, None, k) for k, r in enumerate(ranges(st.cs, n))]


def channel_range(g: SegGraph, st: Stage, job: Job, name: str, n: int) -> tuple[int, int]:
    c = g.channels(name)
    if st.kind == "partial":
        node = g.nodes[st.nodes[0]]
        return job.inp if name == node.input[0] else job.out
    return job.out if (c > n and job.out is not None) else (0, c)


def _slice(a: np.ndarray, axis: int, r: tuple[int, int]) -> np.ndarray:
    idx = [slice(None)] * a.ndim
    idx[axis] = slice(*r)
    return np.ascontiguousarray(a[tuple(idx)])


def node_consts(g: SegGraph, st: Stage, job: Job, i: int, n: int) -> tuple[dict, dict]:
    """(input name -> (new name, array) or None to drop, attribute overrides) for node i in `job`."""
    node = g.nodes[i]
    op = node.op_type
    out_r = channel_range(g, st, job, node.output[0], n)
    whole_out = out_r == (0, g.channels(node.output[0]))
    tag = f"__c{out_r[0]}_{out_r[1]}"
    new: dict = {}
    attrs: dict = {}
    if op in ("Conv", "ConvTranspose"):
        w = g.consts[node.input[1]]
        b = g.consts[node.input[2]] if len(node.input) > 2 and node.input[2] else None
        out_axis = 0 if op == "Conv" else 1
        if st.kind == "partial":
            in_axis = 1 - out_axis
            tag += f"_i{job.inp[0]}_{job.inp[1]}"
            w = _slice(_slice(w, out_axis, out_r), in_axis, job.inp)
        elif is_depthwise(g, i):
            w = _slice(w, 0, out_r)
            attrs["group"] = out_r[1] - out_r[0]
        elif not whole_out:
            w = _slice(w, out_axis, out_r)
        new[node.input[1]] = (node.input[1] + tag, w)
        if b is not None:
            keep = st.kind != "partial" or job.ib == 0       # bias once, on the first input block
            new[node.input[2]] = (node.input[2] + tag, _slice(b, 0, out_r)) if keep else None
        return new, attrs
    if whole_out:
        return new, attrs
    c = g.channels(node.output[0])
    for x in node.input:
        if x and g.is_const(x):
            a = g.consts[x]
            if a.ndim >= 3 and a.shape[-3] == c and c > 1:
                new[x] = (x + tag, _slice(a, a.ndim - 3, out_r))
    return new, attrs
