"""Choose a stage's channel block size and tile width against the resource model.

Every layer of the stage model must fit: channels (of its block) x length (of its tile interval)
of every rank-4 tensor it reads or writes <= resources.layer_row_values, and every length <= the
width cap (`--tile-width`, or resources.max_width). Tensors are kept whole unless that forces tiles
narrower than sensible (min_tile_width, or the stage's halo when that is larger): then channels are
cut in blocks (powers of two), each block a separate conv of the same model. With a strict
`channels` limit the block size is that limit. Of the tile widths that fit, the widest is taken,
then narrowed to balance the tiles (same count, least overhang).
"""

from __future__ import annotations

from dataclasses import dataclass

from rewriter.target import TilingLimits
from rewriter.tiling.graph import SegGraph
from rewriter.tiling.limits import rows
from rewriter.tiling.receptive import produced
from rewriter.tiling.stages import Stage
from rewriter.tiling.temporal import Geometry, align, geometry, intervals


@dataclass
class Fit:
    """The channel block and time tiling a stage gets."""

    block: int | None  # channels per block (None: every tensor whole)
    geo: Geometry


def _lengths(g: SegGraph, st: Stage, tw: int) -> dict[str, int]:
    ivs = intervals(g, st, (0, tw))
    lengths = {x: hi - lo for x, (lo, hi) in ivs.items()}
    for i in st.nodes:  # a ConvTranspose computes more than it keeps
        node = g.nodes[i]
        if node.op_type == "ConvTranspose":
            lo, hi = produced(g, i, ivs[node.output[0]])
            lengths[node.output[0]] = hi - lo
    return lengths


def _fits(g: SegGraph, st: Stage, limits: TilingLimits, block: int | None, tw: int) -> bool:
    cap = limits.width or limits.resources.max_width
    budget = None if limits.width else limits.resources.layer_row_values
    lengths = _lengths(g, st, tw)
    for i in st.nodes:
        for x in rows(g, i):
            n = lengths[x]
            c = g.channels(x) if block is None else min(block, g.channels(x))
            if (cap is not None and n > cap) or (budget is not None and c * n > budget):
                return False
    return True


def _widest(g: SegGraph, st: Stage, limits: TilingLimits, block: int | None) -> Geometry | None:
    width = g.width(st.outputs[0])
    a = align(g, st)
    if _fits(g, st, limits, block, width) and geometry(g, st, width) is not None:
        return geometry(g, st, width)  # one tile: no time tiling at all
    lo, hi = 1, -(-width // a)  # in units of `a`
    if not _fits(g, st, limits, block, a):
        return None
    while lo < hi:  # the widest that fits (tensor lengths grow with the tile width)
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if _fits(g, st, limits, block, mid * a) else (lo, mid - 1)
    for k in range(lo, 0, -1):  # one model must serve every tile
        count = _ceil(width, k * a)
        balanced = _ceil(_ceil(width, count), a)  # same count, least overhang
        for units in dict.fromkeys((balanced, k)):
            geo = geometry(g, st, units * a)
            if geo is not None and _fits(g, st, limits, block, units * a):
                return geo
    return None


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def fit(g: SegGraph, st: Stage, limits: TilingLimits) -> Fit | None:
    widest_c = max(g.channels(x) for i in st.nodes for x in rows(g, i))
    if limits.channels is not None:
        blocks = [limits.channels]
    else:
        blocks = [None] + [1 << k for k in range(max(widest_c - 1, 1).bit_length() - 1, 2, -1)]
    best: Fit | None = None
    for block in blocks:
        geo = _widest(g, st, limits, block)
        if geo is None:
            continue
        sensible = min(geo.width, max(limits.resources.min_tile_width, geo.halo(g, st.inputs)))
        if geo.tw >= sensible:
            return Fit(block, geo)
        if best is None or geo.tw > best.geo.tw:
            best = Fit(block, geo)
    return best
