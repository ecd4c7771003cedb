"""What a tiled node may be, and when a hailo segment needs tiling at all."""

from __future__ import annotations

import numpy as np

from rewriter.ir.opfacts import (
    BINARY_ELEMENTWISE,
    CONV_OPS,
    DEPTHWISE,
    POOL_OPS,
    SPATIAL_OPS,
    UNARY_ELEMENTWISE,
    conv_kind,
    depth_multiplier,
)
from rewriter.target import TilingLimits
from rewriter.tiling.graph import SegGraph
from rewriter.tiling.receptive import window

# Op classes from the one definition (rewriter/ir/opfacts.py). Any elementwise op is time-local;
# UNSAFE ones may turn the zeros outside [0, W) into inf/NaN, which a 0 mask does not cancel.
CONVS, POOLS, HEAVY = CONV_OPS, POOL_OPS, SPATIAL_OPS
UNARY, BINARY = UNARY_ELEMENTWISE, BINARY_ELEMENTWISE
# f(0) == 0: a tensor that is zero outside [0, W) stays so (Clip only when its range holds 0)
ZERO_KEEPING = {
    "Relu",
    "LeakyRelu",
    "Tanh",
    "Elu",
    "Selu",
    "HardSwish",
    "Abs",
    "Neg",
    "Sqrt",
    "Softsign",
    "Erf",
    "Gelu",
    "Identity",
    "Celu",
    "Mish",
    "PRelu",
}
UNSAFE = {"Log", "Sqrt", "Pow", "Reciprocal"}
ACTIVATIONS = UNARY | {"PRelu"}  # run in the producing layer's activation unit: not counted as layers


def conv_channels(g: SegGraph, i: int) -> tuple[int, int]:
    node = g.nodes[i]
    return g.channels(node.input[0]), g.channels(node.output[0])


def is_depthwise(g: SegGraph, i: int) -> bool:
    """Channel-wise (depthwise with multiplier 1): each output channel block needs only its own input
    channels, so channel blocks tile it without the others."""
    cin, cout = conv_channels(g, i)
    kind = conv_kind(g.nodes[i].op_type, g.attrs[i].get("group", 1), cin)
    return kind == DEPTHWISE and depth_multiplier(cin, cout) == 1


def rows(g: SegGraph, i: int) -> list[str]:
    """The rank-4 variable tensors node i reads or writes."""
    key = ("rows", i)
    if key not in g.memo:
        names = g.var_inputs(i) + [o for o in g.nodes[i].output if o]
        g.memo[key] = tuple(x for x in names if g.rank4(x))
    return list(g.memo[key])


def row_limits(limits: TilingLimits) -> tuple[int | None, int | None]:
    """(width cap, channels x width budget) every tensor a Hailo layer reads or writes is held to:
    the strict `--tile-width` replaces the resource model's row budget (None: no such limit)."""
    return limits.width or limits.resources.max_width, None if limits.width else limits.resources.layer_row_values


def exceeds(g: SegGraph, limits: TilingLimits) -> str | None:
    """Why the segment must be tiled, or None when it fits as one network."""
    width_cap, budget = row_limits(limits)
    for i, node in enumerate(g.nodes):
        if limits.channels is not None and node.op_type in CONVS:
            cin, cout = conv_channels(g, i)
            if max(cin, cout) > limits.channels:
                return f"{node.op_type} {node.name} has {cin}->{cout} channels (> {limits.channels})"
        for x in rows(g, i):
            c, w = g.channels(x), g.width(x)
            if width_cap is not None and w > width_cap:
                return f"tensor {x} is {w} wide (> {width_cap})"
            if budget is not None and c * w > budget:
                return f"{node.op_type} {node.name}: tensor {x} has {c} channels x {w} wide (> {budget} per row)"
    return None


def _const_time_free(g: SegGraph, name: str) -> bool:
    """Constants that do not vary along W (per-channel or scalar) broadcast into any tile."""
    shape = g.consts[name].shape
    return len(shape) == 0 or shape[-1] == 1


def _broadcast_ok(g: SegGraph, x: str, out: str) -> bool:
    """A variable operand of an elementwise op: the output's shape, or one channel broadcast over
    all of them. Anything else (a global mean broadcast over W) is not time-local."""
    s, o = list(g.shape(x)), list(g.shape(out))
    return s == o or (len(s) == 4 and s[1] == 1 and s[:1] + s[2:] == o[:1] + o[2:])


def _elementwise_ok(g: SegGraph, i: int) -> bool:
    node, out = g.nodes[i], g.nodes[i].output[0]
    operands = node.input[:1] if node.op_type in ("PRelu", "Clip") else node.input
    for x in node.input[1:] if node.op_type in ("PRelu", "Clip") else []:
        if x and not (g.is_const(x) and _const_time_free(g, x)):
            return False
    for x in operands:
        if not x:
            continue
        if g.is_const(x):
            if not _const_time_free(g, x):
                return False
        elif not _broadcast_ok(g, x, out):
            return False
    return True


def _auto_pad(at: dict) -> str:
    v = at.get("auto_pad", b"NOTSET")
    return v.decode() if isinstance(v, bytes) else v


def kind(g: SegGraph, i: int) -> str:
    """ "tile" (time-local: runs inside a tiled stage) or "host" (a small host ONNX step)."""
    return "host" if why_host(g, i) else "tile"


def why_host(g: SegGraph, i: int) -> str | None:
    """Why node i cannot run inside a tiled stage (the summary's cause), None when it can."""
    node, at = g.nodes[i], g.attrs[i]
    op = node.op_type
    outs = [o for o in node.output if o]
    if len(outs) != 1 or not all(g.rank4(x) for x in g.var_inputs(i) + outs) or not g.var_inputs(i):
        return "not one [N, C, H, W] output of [N, C, H, W] values"
    if op in CONVS:
        if not all(g.is_const(x) for x in node.input[1:] if x):
            return "weights computed in the model"
        if op == "ConvTranspose" and (at.get("group", 1) != 1 or "output_shape" in at or _auto_pad(at) != "NOTSET"):
            return "grouped, output_shape or auto_pad ConvTranspose"
        if op == "Conv" and at.get("group", 1) != 1 and not is_depthwise(g, i):
            return "a grouped conv that is not depthwise"
        return None
    if op in POOLS:
        pads = at.get("pads") or [0, 0, 0, 0]
        if at.get("ceil_mode", 0) or _auto_pad(at) != "NOTSET":
            return "ceil_mode or auto_pad pooling"
        if (pads[1] or pads[3]) and (op == "MaxPool" or not at.get("count_include_pad", 0)):
            return "pads time with -inf or excludes the padding from its count"  # not zero padding
        return None
    if op in UNSAFE or (op == "Div" and not g.is_const(node.input[1])):
        # may turn finite values outside [0, W) into inf/NaN, which a 0 mask keeps
        return "may make inf or NaN of the zeros outside a tile"
    if op in UNARY or op in BINARY:
        return None if _elementwise_ok(g, i) else "an operand broadcast over time: not time-local"
    if op == "Concat":
        return None if at.get("axis", 0) % 4 == 1 else "joins along an axis other than channels"
    if op == "Slice":
        consts = [x for x in node.input[1:] if x]
        if not all(g.is_const(x) for x in consts) or len(node.input) < 4:
            return "bounds computed in the model"
        axes = g.consts[node.input[3]].reshape(-1).tolist()
        steps = g.consts[node.input[4]].reshape(-1).tolist() if len(node.input) > 4 and node.input[4] else [1]
        return None if [a % 4 for a in axes] == [3] and steps == [1] else "a strided slice or one off the time axis"
    return f"the tiler does not split {op} in time"


def spatial(g: SegGraph, i: int) -> bool:
    """Reads W neighbours (or W padding): its input must be exactly zero outside [0, W)."""
    op = g.nodes[i].op_type
    if op == "ConvTranspose":
        return True
    if op not in HEAVY:
        return False
    w = window(g, i)
    return w.k > 1 or w.pl > 0 or w.pr > 0


def keeps_zero(g: SegGraph, i: int, zero: set[str]) -> bool:
    """Node i's output is zero wherever its variable inputs in `zero` are (outside [0, W))."""
    node = g.nodes[i]
    op = node.op_type
    ins = g.var_inputs(i)
    if op in ZERO_KEEPING:
        return ins[0] in zero
    if op == "Clip":
        bounds = [g.consts.get(x) if x else None for x in (list(node.input) + ["", ""])[1:3]]
        return ins[0] in zero and all(b is None or float(b) * (-1) ** k <= 0 for k, b in enumerate(bounds))
    if op == "Mul":
        return any(x in zero for x in ins)
    if op == "Div":  # by a constant (kind() sends division by a variable to the host)
        return node.input[0] in zero
    if op in ("Add", "Sub", "Max", "Min"):
        consts = [x for x in node.input if x and g.is_const(x)]
        return all(x in zero for x in ins) and not any(np.any(g.consts[c]) for c in consts)
    if op == "Concat":
        return all(x in zero for x in ins)
    return False


def np_dtype(elem_type: int):
    from onnx import helper

    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))
