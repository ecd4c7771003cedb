"""Uniform time tiles of a stage: tile t computes output columns [t*tw, (t+1)*tw) (the last one may
stick out past W; its extra columns are cropped). Every tensor of the stage is then computed on an
interval that is affine in the tile index, lo_T + t*step_T, of the same length in every tile, so
one model serves all tiles (strides and ConvTranspose phases are kept aligned by `align`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rewriter.tiling.graph import SegGraph
from rewriter.tiling.receptive import hull, needs, produced
from rewriter.tiling.stages import Stage


@dataclass
class Geometry:
    """A stage's time tiles: tile width and count, and every tensor's interval in tile 0."""

    width: int  # W of the stage outputs
    tw: int  # output columns per tile
    count: int  # tiles
    iv: dict[str, tuple[int, int]]  # tile 0: tensor -> interval it is computed on
    step: dict[str, int]  # tensor -> shift of its interval from one tile to the next
    made: dict[str, tuple[int, int]]  # tile 0: ConvTranspose output -> what it computes (superset)

    def length(self, name: str) -> int:
        lo, hi = self.iv[name]
        return hi - lo

    def halo(self, g: SegGraph, names) -> int:
        """Extra columns a tile reads beyond its own span, at the output rate (widest input)."""
        return max([0] + [round(self.length(x) * self.width / g.width(x)) - self.tw for x in names])


def intervals(g: SegGraph, st: Stage, out: tuple[int, int]) -> dict[str, tuple[int, int]]:
    demand: dict[str, tuple[int, int]] = {y: out for y in st.outputs}
    for i in reversed(st.nodes):
        y = g.nodes[i].output[0]
        if y not in demand:
            continue
        for x, iv in needs(g, i, demand[y]).items():
            demand[x] = hull(demand.get(x), iv)
    return demand


def _made(g: SegGraph, st: Stage, ivs: dict) -> dict[str, tuple[int, int]]:
    out = {}
    for i in st.nodes:
        node = g.nodes[i]
        if node.op_type == "ConvTranspose" and node.output[0] in ivs:
            out[node.output[0]] = produced(g, i, ivs[node.output[0]])
    return out


def align(g: SegGraph, st: Stage) -> int:
    """Tile widths are multiples of this: every ConvTranspose then starts each tile on the same phase."""
    return math.lcm(
        1, *[(g.attrs[i].get("strides") or [1])[-1] for i in st.nodes if g.nodes[i].op_type == "ConvTranspose"]
    )


def geometry(g: SegGraph, st: Stage, tw: int) -> Geometry | None:
    """The tiling at `tw` output columns per tile, or None if some interval is not affine in the
    tile index (then no single model serves every tile)."""
    width = g.width(st.outputs[0])
    count = -(-width // tw)
    first = intervals(g, st, (0, tw))
    made0 = _made(g, st, first)
    if count == 1:
        return Geometry(width, tw, 1, first, {x: 0 for x in first}, made0)
    second = intervals(g, st, (tw, 2 * tw))
    step = {x: second[x][0] - first[x][0] for x in first}
    # every tile when there are few, else the first ones and the last (the shifts are linear)
    checks = range(1, count) if count <= 32 else sorted({1, 2, 3, count // 2, count - 2, count - 1})
    for t in checks:
        ivs = second if t == 1 else intervals(g, st, (t * tw, (t + 1) * tw))
        for x, (lo, hi) in first.items():
            if ivs[x] != (lo + t * step[x], hi + t * step[x]):
                return None
        for y, (lo, hi) in _made(g, st, ivs).items():
            if made0[y] != (lo - t * step[y], hi - t * step[y]):
                return None
    return Geometry(width, tw, count, first, step, made0)
