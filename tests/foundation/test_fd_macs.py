"""Multiply-accumulates per node (rewriter/ir/macs.py), which the placement summary's "% of MACs on
Hailo" and the small-segment cost rule read: recurrent layers count (a GRU on the host was reported
as 0 MACs, so a CRNN showed 99.9% on Hailo where 20% is true), in both ONNX layouts."""

from __future__ import annotations

import onnx_graphsurgeon as gs
import pytest

from rewriter.ir.macs import node_macs


def _recurrent(op, gates, hidden, inp, steps, batch, directions, layout):
    x = gs.Variable("x", shape=[batch, steps, inp] if layout else [steps, batch, inp])
    w = gs.Variable("w", shape=[directions, gates * hidden, inp])
    r = gs.Variable("r", shape=[directions, gates * hidden, hidden])
    return gs.Node(op, inputs=[x, w, r], outputs=[gs.Variable("y")], attrs={"layout": layout} if layout else {})


@pytest.mark.parametrize("op, gates", [("RNN", 1), ("GRU", 3), ("LSTM", 4)])
@pytest.mark.parametrize("layout", [0, 1])
def test_recurrent_layers_count_their_input_and_state_products(op, gates, layout):
    hidden, inp, steps, batch, directions = 16, 24, 7, 2, 2
    node = _recurrent(op, gates, hidden, inp, steps, batch, directions, layout)
    per_step = directions * gates * hidden * (inp + hidden)  # W x + R h, every gate, every direction
    assert node_macs(node) == steps * batch * per_step


def test_unknown_sequence_length_counts_nothing():
    node = _recurrent("GRU", 3, 8, 8, 5, 1, 1, 0)
    node.inputs[0].shape = ["T", 1, 8]
    assert node_macs(node) == 0


def test_a_crnn_reports_its_gru_on_the_host(tmp_path):
    """Conv1d on Hailo, a bidirectional GRU on the host: the plan's segments say so."""
    import torch
    from fd_util import quiet_cli, read_plan
    from torch import nn

    class CRNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(64, 64, 3, padding=1)
            self.gru = nn.GRU(64, 64, batch_first=True, bidirectional=True)

        def forward(self, x):
            return self.gru(self.conv(x).transpose(1, 2))[0]

    torch.manual_seed(0)
    path = tmp_path / "crnn.onnx"
    torch.onnx.export(CRNN().eval(), (torch.randn(1, 64, 40),), str(path), opset_version=17, dynamo=False)
    assert quiet_cli(str(path), "-o", str(tmp_path / "crnn.plan")) == 0
    macs = {"hailo": 0, "host": 0}
    for s in read_plan(tmp_path / "crnn.plan")["segments"]:
        macs[s["device"]] += s["macs"]
    assert macs == {"hailo": 64 * 64 * 3 * 40, "host": 40 * 2 * 3 * 64 * (64 + 64)}, macs
