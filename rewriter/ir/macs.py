"""Multiply-accumulate counts per node, from static shapes (for the summary and the cost rule):
convolutions, dense and recurrent layers; other ops count as none."""

from __future__ import annotations

import math

import onnx_graphsurgeon as gs


def _numel(tensor) -> int:
    shape = getattr(tensor, "shape", None)
    if not shape or any(not isinstance(d, int) for d in shape):
        return 0
    return math.prod(shape)


def node_macs(node: gs.Node) -> int:
    op = node.op
    if op in ("Conv", "ConvTranspose") and len(node.inputs) > 1:
        weight = node.inputs[1].shape
        if not weight:
            return 0
        per_out = math.prod(weight[1:])  # Cin/g * k... for Conv
        if op == "Conv":
            return _numel(node.outputs[0]) * per_out
        return _numel(node.inputs[0]) * per_out  # ConvTranspose: every input pixel scatters Cout/g*k
    if op in ("Gemm", "MatMul") and len(node.inputs) > 1:
        a = node.inputs[0].shape
        if not a:
            return 0
        k = a[-2] if op == "Gemm" and node.attrs.get("transA", 0) else a[-1]
        return _numel(node.outputs[0]) * (k if isinstance(k, int) else 0)
    if op in ("RNN", "GRU", "LSTM") and len(node.inputs) > 2:
        return _recurrent_macs(node)
    return 0


def _recurrent_macs(node: gs.Node) -> int:
    """Per time step and batch row every direction multiplies the input by W [D, G*H, I] and the
    state by R [D, G*H, H] (G gates: 1 RNN, 3 GRU, 4 LSTM): numel(W) + numel(R) MACs."""
    x = node.inputs[0].shape
    if not x or len(x) != 3 or any(not isinstance(d, int) for d in x[:2]):
        return 0
    steps, batch = (x[1], x[0]) if node.attrs.get("layout", 0) else (x[0], x[1])
    return steps * batch * (_numel(node.inputs[1]) + _numel(node.inputs[2]))
