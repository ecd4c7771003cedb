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
from rewriter.tiling.limits import row_limits, rows
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


def _caps(g: SegGraph, st: Stage, limits: TilingLimits, block: int | None) -> dict[str, int]:
    """Each tensor a layer of the stage reads or writes -> the longest interval it may be computed
    on: the width cap, and channels (of its block) x length <= the row budget."""
    cap, budget = row_limits(limits)
    caps: dict[str, int] = {}
    for i in st.nodes:
        for x in rows(g, i):
            c = g.channels(x) if block is None else min(block, g.channels(x))
            longest = [v for v in (cap, budget // c if budget is not None and c > 0 else None) if v is not None]
            if longest:
                caps[x] = min(longest)
    return caps


def _within(lengths: dict[str, int], caps: dict[str, int]) -> bool:
    return all(lengths[x] <= n for x, n in caps.items())


def _guess(at_a: dict[str, int], at_w: dict[str, int], caps: dict[str, int], a: int, width: int) -> int:
    """Tile width (in units of `a`) where the first tensor would reach its cap, were its length
    linear between the tile widths `a` and `width` (it is, but for edges and strides)."""
    units = width // a
    for x, n in caps.items():
        grow = at_w[x] - at_a[x]
        if at_w[x] > n and grow > 0:
            units = min(units, int((a + (n - at_a[x]) * (width - a) / grow) // a))
    return max(units, 1)


def _last_fitting(fits, lo: int, hi: int, guess: int) -> int:
    """The largest k in [lo, hi] with fits(k), given fits(lo): tile lengths grow with the tile width,
    so fits holds up to some k and fails after it. A gallop from `guess` brackets that k, a bisection
    of the bracket finds it: the answer plain bisection gives, in a few probes when the guess is near."""
    probe = min(max(guess, lo), hi)
    if fits(probe):
        lo, step = probe, 1
        while lo < hi:
            probe = min(lo + step, hi)
            if not fits(probe):
                hi = probe - 1
                break
            lo, step = probe, step * 2
    else:
        failed, step = probe, 1
        while True:
            probe = max(failed - step, lo)
            if probe == lo or fits(probe):
                lo, hi = probe, failed - 1
                break
            failed, step = probe, step * 2
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


def _widest(g: SegGraph, st: Stage, limits: TilingLimits, block: int | None) -> Geometry | None:
    width = g.width(st.outputs[0])
    a = align(g, st)
    caps = _caps(g, st, limits, block)
    at_w = _lengths(g, st, width)
    if _within(at_w, caps):
        geo = geometry(g, st, width)
        if geo is not None:
            return geo  # one tile: no time tiling at all
    at_a = _lengths(g, st, a)
    if not _within(at_a, caps):
        return None

    def fits(units: int) -> bool:
        return _within(_lengths(g, st, units * a), caps)

    # the widest that fits, in units of `a`
    lo = _last_fitting(fits, 1, -(-width // a), _guess(at_a, at_w, caps, a, width))
    for k in range(lo, 0, -1):  # one model must serve every tile
        count = _ceil(width, k * a)
        balanced = _ceil(_ceil(width, count), a)  # same count, least overhang
        for units in dict.fromkeys((balanced, k)):
            geo = geometry(g, st, units * a)
            if geo is not None and fits(units):
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
