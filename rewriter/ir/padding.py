"""auto_pad made explicit: once shapes are static, SAME_UPPER / SAME_LOWER / VALID on Conv and the
pools is exactly a `pads` list. Every later stage (rules that copy attributes, tiling that cuts the
width, the DFC) then sees one form; a SAME conv copied into a narrower tile would otherwise pad for
the tile's width instead of the model's."""

from __future__ import annotations

import math

import onnx_graphsurgeon as gs

OPS = ("Conv", "MaxPool", "AveragePool", "LpPool")


def _mode(node: gs.Node) -> str:
    value = node.attrs.get("auto_pad", "NOTSET")
    return value.decode() if isinstance(value, bytes) else str(value)


def explicit_pads(node: gs.Node) -> list[int] | None:
    """The `pads` equal to the node's auto_pad, or None when it has none or shapes are unknown."""
    mode = _mode(node)
    shape = node.inputs[0].shape if node.inputs else None
    if (
        mode not in ("SAME_UPPER", "SAME_LOWER", "VALID")
        or not shape
        or not all(isinstance(d, int) and d > 0 for d in shape[2:])
    ):
        return None
    spatial = list(shape[2:])
    if node.op == "Conv":
        weights = node.inputs[1].shape if len(node.inputs) > 1 else None
        kernel = node.attrs.get("kernel_shape") or (list(weights[2:]) if weights else None)
    else:
        kernel = node.attrs.get("kernel_shape")
    if not kernel or len(kernel) != len(spatial) or not all(isinstance(k, int) for k in kernel):
        return None
    if mode == "VALID":
        return [0] * (2 * len(spatial))
    strides = node.attrs.get("strides") or [1] * len(spatial)
    dilations = node.attrs.get("dilations") or [1] * len(spatial)
    begins, ends = [], []
    for size, k, s, d in zip(spatial, kernel, strides, dilations):
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, large = total // 2, total - total // 2
        begins.append(small if mode == "SAME_UPPER" else large)  # SAME_UPPER: the extra one at the end
        ends.append(large if mode == "SAME_UPPER" else small)
    return begins + ends


def make_pads_explicit(graph: gs.Graph) -> list[str]:
    """Replace auto_pad by explicit pads on every node whose input shape is static; returns the
    names of the nodes changed."""
    changed = []
    for node in graph.nodes:
        if node.op not in OPS:
            continue
        pads = explicit_pads(node)
        if pads is None:
            continue
        if node.op != "Conv" and node.attrs.get("ceil_mode") and _mode(node) != "VALID":
            node.attrs["ceil_mode"] = 0  # SAME sizes are ceil(in / stride); the pads make that exact
        del node.attrs["auto_pad"]
        node.attrs["pads"] = pads
        changed.append(node.name)
    return changed
