"""passes/gathered_linear_resize.py: dynamo writes a 1-D linear upsample as two GatherNDs and
a + (b - a) * w; when the constants are Resize's own reads the pass writes the Resize, which the
layout rules take to the device (TorchScript's form of the same module). The reads are checked
against onnxruntime's Resize itself, in every coordinate mode; other constants are left alone."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from util import rewrite_and_run, torch_export

from passes.gathered_linear_resize import MODES, matching_mode, resize_reads


def _ort_resize(x: np.ndarray, out: int, mode: str) -> np.ndarray:
    sizes = helper.make_tensor("sizes", TensorProto.INT64, [3], [*x.shape[:2], out])
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="linear", coordinate_transformation_mode=mode)
    graph = helper.make_graph(
        [node],
        "r",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [sizes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("length, out", [(250, 500), (7, 21), (13, 20), (9, 4), (2, 5), (1, 3)])
def test_the_reads_are_onnxruntimes_resize(mode, length, out):
    x = np.random.default_rng(length).standard_normal((1, 3, length)).astype(np.float32)
    i0, i1, w = resize_reads(mode, length, out)
    gathered = x[..., i0] + (x[..., i1] - x[..., i0]) * w.astype(np.float32)
    # onnxruntime computes the source coordinate in float32: its weights hold a few ulps of `length`
    atol = 4 * float(np.finfo(np.float32).eps) * length * float(np.abs(np.diff(x)).max(initial=1.0))
    np.testing.assert_allclose(gathered, _ort_resize(x, out, mode), rtol=1e-6, atol=atol)


def test_other_constants_are_no_resize():
    i0, i1, w = resize_reads("half_pixel", 10, 20)
    assert matching_mode(i0, i1, w, 10) == "half_pixel"
    assert matching_mode(i0[::-1], i1[::-1], w, 10) is None  # reversed in time
    assert matching_mode(i0, i1, np.clip(w + 0.1, 0, 1), 10) is None  # other weights
    assert matching_mode(i0, i1, w, 11) is None  # another input length


def _upsampler(scale, align_corners):
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv1d(16, 32, 5, padding=2), nn.Conv1d(32, 16, 3, padding=1)
            self.up = nn.Upsample(scale_factor=scale, mode="linear", align_corners=align_corners)

        def forward(self, x):
            return self.b(torch.relu(self.up(self.a(x))))

    torch.manual_seed(0)
    return Net().eval()


@pytest.mark.parametrize("scale, align_corners", [(2, False), (3, False), (2, True)])
def test_dynamo_linear_upsample_lands_on_hailo(scale, align_corners, tmp_path):
    import torch

    path = torch_export(_upsampler(scale, align_corners), torch.randn(1, 16, 201), tmp_path / "up.onnx", dynamo=True)
    assert "GatherND" in {n.op_type for n in onnx.load(str(path)).graph.node}  # the form this pass is for
    # the Resize computes its weights in float32 from the coordinate, the export stored torch's
    # float32 weights: a few ulps apart (1.1e-5 of the largest output at scale 3), not bit for bit
    res = rewrite_and_run(path, tmp_path, rtol=1e-4, atol_scale=1e-4)
    ops = res.ops()
    assert "GatherND" not in ops and ops["Resize"] == 1, ops
    assert len(res.steps_on("hailo")) == 1, res.placement()
