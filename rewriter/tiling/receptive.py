"""Receptive-field interval propagation along W (axis 3).

An interval (lo, hi) is a half-open range of W positions in a tensor's own coordinates; it may
stick out of [0, W): those positions are the zero padding the untiled model would see there.
For every tileable node, `needs` maps an output interval to the input intervals it reads, and
`produced` says which output interval the node computes when it runs with W-pads removed
(ConvTranspose computes a superset, cropped afterwards).
"""

from __future__ import annotations

from dataclasses import dataclass

from rewriter.tiling.graph import SegGraph

SPATIAL = ("Conv", "ConvTranspose", "AveragePool", "MaxPool")


def hull(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return (min(a[0], b[0]), max(a[1], b[1]))


@dataclass(frozen=True)
class Window:
    """W geometry of a sliding-window op: kernel, dilation, stride, pads (left, right), out padding."""

    k: int
    d: int
    s: int
    pl: int
    pr: int
    out_pad: int = 0


def window(g: SegGraph, i: int, axis: int = -1) -> Window:
    """Geometry along W (axis -1) or H (axis -2) of a conv / pool node."""
    key = ("window", i, axis)
    if key not in g.memo:
        g.memo[key] = _window(g, i, axis)
    return g.memo[key]


def _window(g: SegGraph, i: int, axis: int) -> Window:
    node, at = g.nodes[i], g.attrs[i]
    op = node.op_type
    kernel = at.get("kernel_shape") or g.consts[node.input[1]].shape[2:]
    k = kernel[axis]
    d = (at.get("dilations") or [1] * len(kernel))[axis]
    s = (at.get("strides") or [1] * len(kernel))[axis]
    pads = at.get("pads") or [0] * (2 * len(kernel))
    rank = len(pads) // 2
    pl, pr = pads[rank + axis], pads[2 * rank + axis]
    auto = at.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER") and op != "ConvTranspose":
        n = g.shape(node.input[0])[axis]
        total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
        small, big = total // 2, total - total // 2
        pl, pr = (small, big) if auto == "SAME_UPPER" else (big, small)
    elif auto == "VALID":
        pl = pr = 0
    out_pad = (at.get("output_padding") or [0] * len(kernel))[axis] if op == "ConvTranspose" else 0
    return Window(int(k), int(d), int(s), int(pl), int(pr), int(out_pad))


def slice_start(g: SegGraph, i: int) -> int:
    """W offset of a W-only, step-1 Slice: out[j] = in[j + start]."""
    node = g.nodes[i]
    start = int(g.consts[node.input[1]].reshape(-1)[0])
    n = g.width(node.input[0])
    return min(max(start + n if start < 0 else start, 0), n)


def needs(g: SegGraph, i: int, out: tuple[int, int]) -> dict[str, tuple[int, int]]:
    """Input intervals (variable inputs only) that node i reads to produce `out` of its output."""
    node = g.nodes[i]
    op = node.op_type
    a, b = out
    ins = g.var_inputs(i)
    if op in ("Conv", "AveragePool", "MaxPool"):
        w = window(g, i)
        return {ins[0]: (a * w.s - w.pl, (b - 1) * w.s - w.pl + (w.k - 1) * w.d + 1)}
    if op == "ConvTranspose":
        w = window(g, i)
        reach = (w.k - 1) * w.d
        # inputs reaching [a, b); when the stride exceeds the kernel reach, also enough inputs
        # for the computed span to cover b (the extra ones only land beyond b, cropped)
        end = max((b - 1 + w.pl) // w.s, -(-(b - 1 + w.pl - reach) // w.s)) + 1
        return {ins[0]: ((a + w.pl - reach) // w.s, end)}
    if op == "Slice":
        st = slice_start(g, i)
        return {ins[0]: (a + st, b + st)}
    return {x: out for x in ins}  # elementwise, activations, channel Concat


def produced(g: SegGraph, i: int, out: tuple[int, int]) -> tuple[int, int]:
    """What node i computes (pads removed in W) when fed exactly `needs(out)`."""
    if g.nodes[i].op_type != "ConvTranspose":
        return out
    w = window(g, i)
    lo, hi = needs(g, i, out)[g.var_inputs(i)[0]]
    start = lo * w.s - w.pl
    return (start, start + (hi - lo - 1) * w.s + (w.k - 1) * w.d + 1)
