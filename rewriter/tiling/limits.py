"""When does a hailo segment need tiling, and what may a tiled node be."""
from __future__ import annotations

import numpy as np

from rewriter.target import TilingLimits
from rewriter.tiling.graph import SegGraph

CONVS = ("Conv", "ConvTranspose")
UNARY = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Elu", "Selu", "HardSigmoid", "HardSwish", "Clip", "Abs",
         "Neg", "Sqrt", "Exp", "Log", "Softplus", "Softsign", "Erf", "Gelu", "Identity", "Celu", "Mish"}
BINARY = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"}


def conv_channels(g: SegGraph, i: int) -> tuple[int, int]:
    node = g.nodes[i]
    return g.channels(node.input[0]), g.channels(node.output[0])


def exceeds(g: SegGraph, limits: TilingLimits, force: bool) -> str | None:
    """Why the segment must be tiled, or None when it fits as one network."""
    for name, shape in g.shapes.items():
        if shape and isinstance(shape[-1], int) and shape[-1] > limits.width and len(shape) == 4:
            return f"tensor {name} is {shape[-1]} wide (> {limits.width})"
    for i, node in enumerate(g.nodes):
        if node.op_type not in CONVS:
            continue
        cin, cout = conv_channels(g, i)
        if max(cin, cout) <= limits.channels:
            continue
        wide = max(g.width(node.input[0]), g.width(node.output[0]))
        if force or wide > limits.tile_when_channels_above_at_width:
            return f"{node.op_type} {node.name} has {cin}->{cout} channels at width {wide}"
    return None


def is_depthwise(g: SegGraph, i: int) -> bool:
    node = g.nodes[i]
    group = g.attrs[i].get("group", 1)
    cin, cout = conv_channels(g, i)
    return node.op_type == "Conv" and group > 1 and group == cin == cout


def _const_time_free(g: SegGraph, name: str) -> bool:
    """Constants that do not vary along W (per-channel or scalar) broadcast into any tile."""
    shape = g.consts[name].shape
    return len(shape) == 0 or shape[-1] == 1 or len(shape) < 1


def _channel_local_ok(g: SegGraph, i: int) -> bool:
    node, out = g.nodes[i], g.nodes[i].output[0]
    for x in node.input[1:] if node.op_type in ("PRelu", "Clip") else node.input:
        if not x:
            continue
        if g.is_const(x):
            if not _const_time_free(g, x):
                return False
        elif list(g.shape(x)) != list(g.shape(out)):
            return False   # broadcasting a variable (e.g. a global mean) is not time-local
    return True


def kind(g: SegGraph, i: int, channels: int) -> str:
    """"tile" (time-local, runs inside a tile), "partial" (conv split into input-channel partial
    products summed on the host) or "host" (runs on the host as a small ONNX step)."""
    node, at = g.nodes[i], g.attrs[i]
    op = node.op_type
    vars_ = g.var_inputs(i) + [o for o in node.output if o]
    if not vars_ or not all(g.rank4(x) for x in vars_) or len([o for o in node.output if o]) != 1:
        return "host"
    if op in CONVS:
        if not all(g.is_const(x) for x in node.input[1:] if x):
            return "host"
        if op == "ConvTranspose" and (at.get("group", 1) != 1 or "output_shape" in at
                                      or at.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")):
            return "host"
        if op == "Conv" and at.get("group", 1) != 1 and not is_depthwise(g, i):
            return "host"
        if is_depthwise(g, i):
            return "tile"
        return "partial" if g.channels(node.input[0]) > channels else "tile"
    if op in ("AveragePool", "MaxPool"):
        pads = at.get("pads") or [0, 0, 0, 0]
        if at.get("ceil_mode", 0) or (at.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")):
            return "host"
        w_pads = pads[1] or pads[3]
        if w_pads and (op == "MaxPool" or not at.get("count_include_pad", 0)):
            return "host"   # -inf / count-excluding padding is not a zero mask
        return "tile"
    if op in UNARY or op == "PRelu":
        return "tile" if _channel_local_ok(g, i) else "host"
    if op in BINARY:
        return "tile" if _channel_local_ok(g, i) else "host"
    if op == "Concat":
        axis = at.get("axis", 0)
        if axis % 4 == 1 and g.channels(node.output[0]) <= channels:
            return "tile"
        return "host"
    if op == "Slice":
        consts = [x for x in node.input[1:] if x]
        if not all(g.is_const(x) for x in consts) or len(node.input) < 4:
            return "host"
        axes = g.consts[node.input[3]].reshape(-1).tolist()
        steps = g.consts[node.input[4]].reshape(-1).tolist() if len(node.input) > 4 and node.input[4] else [1]
        return "tile" if [a % 4 for a in axes] == [3] and steps == [1] else "host"
    return "host"


def channel_local(g: SegGraph, i: int) -> bool:
    """Output channel c depends on input channel c only (blocks can follow it)."""
    op = g.nodes[i].op_type
    if op in ("Conv",):
        return is_depthwise(g, i)
    return op not in ("ConvTranspose", "Concat")


def np_dtype(elem_type: int):
    from onnx import helper
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))
