"""Temporal tiling of one stage: tile widths and, per tile, the W interval of every tensor.

Each tile owns an output interval [a, b) of the stage outputs (all the same width). Walking the
stage backwards, every tensor gets the hull of what its consumers read (receptive.needs), so
halos accumulate across layers. Intervals are not clamped: what sticks out of [0, W) is padding.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from rewriter.tiling.graph import SegGraph
from rewriter.tiling.receptive import hull, needs, produced
from rewriter.tiling.stages import Stage


@dataclass
class TimePlan:
    width: int                                  # W of the stage outputs
    tiles: list[tuple[int, int]]                # output interval of each tile
    ivs: list[dict[str, tuple[int, int]]]       # per tile: tensor -> interval it is computed on
    halo: int


def intervals(g: SegGraph, st: Stage, out: tuple[int, int]) -> dict[str, tuple[int, int]]:
    demand: dict[str, tuple[int, int]] = {y: out for y in st.outputs}
    for i in reversed(st.nodes):
        y = g.nodes[i].output[0]
        if y not in demand:
            continue
        for x, iv in needs(g, i, demand[y]).items():
            demand[x] = hull(demand.get(x), iv)
    return demand


def _longest(g: SegGraph, st: Stage, ivs: dict) -> int:
    longest = max(hi - lo for lo, hi in ivs.values())
    for i in st.nodes:   # ConvTranspose computes more than it keeps
        y = g.nodes[i].output[0]
        if g.nodes[i].op_type == "ConvTranspose" and y in ivs:
            lo, hi = produced(g, i, ivs[y])
            longest = max(longest, hi - lo)
    return longest


def _split(total: int, t: int) -> list[tuple[int, int]]:
    return [(a, min(a + t, total)) for a in range(0, total, t)]


def _fits(g, st, total, t, limit) -> bool:
    return all(_longest(g, st, intervals(g, st, iv)) <= limit for iv in _split(total, t)[:3] + _split(total, t)[-2:])


def plan(g: SegGraph, st: Stage, limit: int) -> TimePlan | None:
    """The widest balanced tiling whose tensors all fit in `limit`; None if even 1 does not."""
    total = g.width(st.outputs[0])
    if not _fits(g, st, total, 1, limit):
        return None
    lo, hi = 1, min(total, limit)
    while lo < hi:   # largest t that fits (lengths grow with t)
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if _fits(g, st, total, mid, limit) else (lo, mid - 1)
    t = lo
    # balance the tiles, keeping ConvTranspose phases equal so interior tiles stay identical
    align = math.lcm(*([1] + [g.attrs[i].get("strides", [1])[-1] for i in st.nodes
                                  if g.nodes[i].op_type == "ConvTranspose"]))
    n = -(-total // t)
    balanced = -(-(-(-total // n)) // align) * align
    if balanced <= t and _fits(g, st, total, balanced, limit):
        t = balanced
    elif t >= align and _fits(g, st, total, t // align * align, limit):
        t = t // align * align
    while True:   # the sampled check above can miss a ConvTranspose phase one longer
        tiles = _split(total, t)
        ivs = [intervals(g, st, iv) for iv in tiles]
        if all(_longest(g, st, v) <= limit for v in ivs):
            break
        if t == 1:
            return None
        t -= 1
    ref = ivs[min(1, len(ivs) - 1)]
    a, b = tiles[min(1, len(tiles) - 1)]
    halo = max([0] + [ref[x][1] - ref[x][0] - round((b - a) * g.width(x) / total) for x in st.inputs])
    return TimePlan(total, tiles, ivs, halo)
