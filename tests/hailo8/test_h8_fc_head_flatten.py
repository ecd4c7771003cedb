"""An FC head on a pooled 1-D feature map (Conv1d stack -> AdaptiveAvgPool1d(k) -> flatten(1) ->
Linear): the Flatten (TorchScript) or Reshape to [N, -1] (dynamo) reads the rank-4 tensor, so the
convs, the pool and the first Linear are one Hailo segment (layout.rw flatten_after_squeeze,
reshape_after_squeeze). dynamo writes the pool's Unsqueeze and Squeeze with axis -2, which
canonical.rw makes 2 for the layout rules (squeeze_axes_non_negative, unsqueeze_axes_non_negative)."""

from __future__ import annotations

import pytest
from util import rewrite_and_run, torch_export


def _module():
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = nn.Conv1d(6, 64, 5, padding=2), nn.Conv1d(64, 64, 5, padding=2)
            self.pool, self.fc1, self.fc2 = nn.AdaptiveAvgPool1d(8), nn.Linear(512, 256), nn.Linear(256, 5)

        def forward(self, x):
            h = self.pool(F.relu(self.c2(F.relu(self.c1(x)))))
            return self.fc2(F.relu(self.fc1(h.flatten(1))))

    torch.manual_seed(0)
    return Net().eval()


@pytest.mark.parametrize("dynamo", [False, True])
def test_convs_pool_and_first_linear_are_one_hailo_segment(dynamo, tmp_path):
    import torch

    path = torch_export(_module(), torch.randn(1, 6, 128), tmp_path / "head.onnx", dynamo=dynamo)
    res = rewrite_and_run(path, tmp_path)
    assert len(res.steps_on("hailo")) == 1, res.placement()
    hailo = res.ops("hailo")
    assert (hailo["Conv"], hailo["AveragePool"], hailo["Gemm"]) == (2, 1, 1), hailo
    assert hailo["Flatten" if not dynamo else "Reshape"] == 1, hailo
