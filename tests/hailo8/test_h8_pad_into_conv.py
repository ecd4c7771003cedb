"""zero_pad_into_conv (rules/hailo8/pad.rw): a zero constant Pad in front of a Conv becomes the
Conv's own padding. TorchScript writes a causal WaveNet/TCN layer as F.pad(x, (k - 1, 0)) then a
Conv1d; left apart, each Pad was a host step between the device stages of a time-tiled segment.
Pads that are not zero padding of H and W stay Pads. Plans run against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from util import make_model, rewrite_and_run, torch_export, vi, weight


def _ops(res) -> list[str]:
    return [n.op_type for seg in res.segments.values() for n in seg.graph.node]


class CausalStack:
    """x -> 1x1 conv -> [x + tanh(conv_k2_dilated(F.pad(x, (d, 0))))] * 4: the padded value is
    also read by the residual sum."""

    @staticmethod
    def module(channels=64, layers=4):
        import torch
        import torch.nn.functional as F
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.inp = nn.Conv1d(1, channels, 1)
                self.convs = nn.ModuleList([nn.Conv1d(channels, channels, 2, dilation=2**k) for k in range(layers)])

            def forward(self, x):
                x = self.inp(x)
                for k, conv in enumerate(self.convs):
                    x = x + torch.tanh(conv(F.pad(x, (2**k, 0))))
                return x

        torch.manual_seed(0)
        return Net().eval()


def test_causal_pads_fold_into_the_tiled_convs(tmp_path):
    """16,000 samples x 64 channels: tiled in time. Every Pad is gone into its Conv, so the only
    host steps are the layout edges and each device stage's tiles are one call."""
    import torch

    path = torch_export(CausalStack.module(), torch.randn(1, 1, 16000), tmp_path / "causal.onnx")
    res = rewrite_and_run(path, tmp_path)
    assert "Pad" not in _ops(res)
    counts = res.doc["counts"]
    assert counts["host_steps"] == 2, counts
    assert counts["device_calls"] == counts["distinct_hefs"], counts
    assert counts["device_calls"] == 1, counts  # a stage per Pad before (5 calls here, 21 on a WaveNet)


def _pad_conv(mode="constant", value=None, pads=(0, 0, 0, 2, 0, 0, 0, 1), conv_pads=(0, 1, 0, 1), then="Conv"):
    inputs = ["x", "p"] + (["cv"] if value is not None else [])
    inits = [helper.make_tensor("p", TensorProto.INT64, [8], list(pads))]
    if value is not None:
        inits.append(helper.make_tensor("cv", TensorProto.FLOAT, [], [value]))
    nodes = [helper.make_node("Pad", inputs, ["a"], mode=mode)]
    if then == "Conv":
        nodes.append(helper.make_node("Conv", ["a", "w"], ["y"], kernel_shape=[1, 3], pads=list(conv_pads)))
        inits.append(weight("w", [32, 16, 1, 3]))
    else:
        nodes.append(helper.make_node("MaxPool", ["a"], ["y"], kernel_shape=[1, 3], pads=list(conv_pads)))
    return make_model(nodes, [vi("x", [1, 16, 1, 300])], [vi("y", None)], inits)


@pytest.mark.parametrize("value", [None, 0.0])
def test_zero_pad_joins_the_conv_exactly(value, tmp_path):
    res = rewrite_and_run(_pad_conv(value=value), tmp_path, rtol=1e-6)
    assert "Pad" not in _ops(res)
    (conv,) = [n for seg in res.segments.values() for n in seg.graph.node if n.op_type == "Conv"]
    pads = [list(helper.get_attribute_value(a)) for a in conv.attribute if a.name == "pads"]
    assert pads == [[0, 3, 0, 2]]


@pytest.mark.parametrize(
    "kind",
    [
        dict(value=0.5),  # pads with a value a Conv's own padding does not have
        dict(mode="edge"),
        dict(pads=(1, 0, 0, 2, 0, 0, 0, 1)),  # pads the batch axis too
        dict(pads=(0, 0, 0, -1, 0, 0, 0, 1)),  # crops
        dict(then="MaxPool"),  # pads with zeros where MaxPool pads with -inf
    ],
)
def test_other_pads_stay_pads(kind, tmp_path):
    res = rewrite_and_run(_pad_conv(**kind), tmp_path, rtol=1e-6)
    assert "Pad" in _ops(res) or "Slice" in _ops(res), _ops(res)  # edge pads become Slices/Concats
    np.testing.assert_allclose(res.outputs["y"], res.ref["y"], rtol=1e-5, atol=1e-5)
