"""torch's dynamo exporter writes a 1-D linear upsample (`nn.Upsample(mode="linear")`, F.interpolate
on [N, C, T]) as gathers instead of a Resize:

    t = Transpose(x) {perm: [2, 0, 1]}            time first
    a = Transpose(GatherND(t, i0)) {perm: [1, 2, 0]}   x[..., i0]
    b = Transpose(GatherND(t, i1)) {perm: [1, 2, 0]}   x[..., i1]
    y = a + (b - a) * w

with constant indices and weights; GatherND is no Hailo op, so each upsample was a host round
trip. When i0, i1 and w are exactly what Resize's linear interpolation reads for one coordinate
transformation mode (onnxruntime's, for T -> T' samples), y is that Resize (with `sizes`): the
layout rules then take it to the device like TorchScript's export of the same module. The values
agree to float rounding (a*(1-w) + b*w against a + (b-a)*w). A native pass because the constants
must be checked against the interpolation, which `rules verify` cannot draw.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from passes.replace_nodes import ReplaceNodes
from rewriter.ir.edit import FreshNames

PASS_NAME = "gathered-linear-resize"
MODES = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric")


def resize_reads(mode: str, length: int, out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i0, i1, w) of linear Resize from `length` to `out` samples: out[j] = x[i0]*(1-w) + x[i1]*w."""
    j = np.arange(out, dtype=np.float64)
    scale = out / length
    if mode == "align_corners":
        src = j * (length - 1) / (out - 1) if out > 1 else np.zeros(out)
    elif mode == "asymmetric":
        src = j / scale
    elif mode == "pytorch_half_pixel" and out == 1:
        src = np.zeros(out)
    else:
        src = (j + 0.5) / scale - 0.5
    src = np.clip(src, 0, length - 1)
    i0 = np.floor(src).astype(np.int64)
    return i0, np.minimum(i0 + 1, length - 1), src - i0


def matching_mode(i0: np.ndarray, i1: np.ndarray, w: np.ndarray, length: int) -> str | None:
    """The mode whose reads are these indices and weights, or None. The weights agree to what a
    float32 source coordinate holds (a few ulps of `length`: torch and onnxruntime both compute it
    in float32), and only where the two indices differ: where they are equal, b - a is 0 and the
    weight reads nothing (torch leaves 0.25 at the last sample, Resize 0)."""
    tolerance = 4 * float(np.finfo(np.float32).eps) * max(length, 1)
    for mode in MODES:
        e0, e1, ew = resize_reads(mode, length, len(i0))
        differ = e0 != e1
        if not (np.array_equal(i0, e0) and np.array_equal(i1, e1)):
            continue
        if np.allclose(w[differ], ew[differ], rtol=0, atol=tolerance):
            return mode
    return None


def _producer(t: gs.Tensor, op: str) -> gs.Node | None:
    if isinstance(t, gs.Variable) and len(t.inputs) == 1 and t.inputs[0].op == op:
        return t.inputs[0]
    return None


def _gathered(t: gs.Tensor) -> tuple[gs.Tensor, np.ndarray] | None:
    """(x, indices) when t = Transpose(GatherND(Transpose(x, [2, 0, 1]), constant [T', 1]), [1, 2, 0])."""
    back = _producer(t, "Transpose")
    if back is None or list(back.attrs.get("perm", [])) != [1, 2, 0]:
        return None
    gather = _producer(back.inputs[0], "GatherND")
    if gather is None or gather.attrs.get("batch_dims", 0) != 0 or not isinstance(gather.inputs[1], gs.Constant):
        return None
    first = _producer(gather.inputs[0], "Transpose")
    if first is None or list(first.attrs.get("perm", [])) != [2, 0, 1]:
        return None
    idx = np.asarray(gather.inputs[1].values)
    if idx.ndim != 2 or idx.shape[1] != 1:
        return None
    return first.inputs[0], idx[:, 0].astype(np.int64)


def match(add: gs.Node) -> tuple[gs.Tensor, str, int] | None:
    """(x, mode, output length) when `add` computes a linear Resize of x along its last axis."""
    for a, m in (add.inputs, add.inputs[::-1]):
        mul = _producer(m, "Mul")
        if mul is None:
            continue
        for d, w in (mul.inputs, mul.inputs[::-1]):
            sub = _producer(d, "Sub")
            if sub is None or not isinstance(w, gs.Constant) or sub.inputs[1] is not a:
                continue
            low, high = _gathered(a), _gathered(sub.inputs[0])
            if low is None or high is None or low[0] is not high[0]:
                continue
            x = low[0]
            if x.shape is None or len(x.shape) != 3 or not all(isinstance(v, (int, np.integer)) for v in x.shape):
                continue
            weights = np.asarray(w.values, np.float64)
            if weights.size != len(low[1]) or weights.shape[:-1] != (1,) * (weights.ndim - 1):
                continue
            mode = matching_mode(low[1], high[1], weights.ravel(), int(x.shape[2]))
            if mode is not None:
                return x, mode, len(low[1])
    return None


class GatheredLinearResize(ReplaceNodes):
    name = PASS_NAME
    op = "Add"
    idempotent = True  # what it writes never makes another match

    def match(self, node: gs.Node):
        return match(node) if len(node.inputs) == 2 else None

    def build(self, add: gs.Node, found, fresh: FreshNames) -> list[gs.Node]:
        x, mode, length = found
        n, c, _ = (int(v) for v in x.shape)
        sizes = gs.Constant(fresh(f"{add.name}_sizes"), np.asarray([n, c, length], np.int64))
        resize = gs.Node(
            "Resize",
            fresh(f"{add.name}_resize"),
            attrs={"mode": "linear", "coordinate_transformation_mode": mode},
            inputs=[x, gs.Variable.empty(), gs.Variable.empty(), sizes],
            outputs=[add.outputs[0]],
        )
        return [resize]
