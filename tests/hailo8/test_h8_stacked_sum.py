"""passes/stacked_sum.py: torch.stack(parts).sum(0) (pytorch-tcn's sum of skip connections) is the
parts' sum, written as Adds that join the Hailo segment with the conv after them; a ReduceSum that
sums anything else stays a ReduceSum. Plans run against onnxruntime on the original."""

from __future__ import annotations

import pytest
from util import rewrite_and_run, torch_export


def _skips(parts: int, dim: int = 0):
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = nn.ModuleList([nn.Conv1d(16, 32, 3, padding=d, dilation=d) for d in range(1, parts + 1)])
            self.out = nn.Conv1d(32, 8, 1)

        def forward(self, x):
            skips = [conv(x) for conv in self.convs]
            return self.out(torch.relu(torch.stack(skips, dim).sum(dim)))

    torch.manual_seed(0)
    return Net().eval()


@pytest.mark.parametrize("parts", [2, 3, 5])
@pytest.mark.parametrize("dynamo", [False, True])
def test_a_sum_of_stacked_skips_is_adds_on_hailo(parts, dynamo, tmp_path):
    import torch

    path = torch_export(_skips(parts), torch.randn(1, 16, 120), tmp_path / "skips.onnx", dynamo=dynamo)
    res = rewrite_and_run(path, tmp_path)
    ops = res.ops()
    assert "ReduceSum" not in ops and res.ops("hailo")["Add"] >= parts - 1, ops
    assert len(res.steps_on("hailo")) == 1 and res.ops("hailo")["Conv"] == parts + 1, res.placement()


def test_a_sum_over_another_axis_stays(tmp_path):
    """Stacked on axis 1 and summed over channels (axis 2 after stacking): not the parts' sum."""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv1d(16, 32, 3, padding=1), nn.Conv1d(16, 32, 1)

        def forward(self, x):
            return torch.stack([self.a(x), self.b(x)], 1).sum(2)

    torch.manual_seed(0)
    path = torch_export(Net().eval(), torch.randn(1, 16, 120), tmp_path / "other.onnx")
    res = rewrite_and_run(path, tmp_path)
    assert res.ops()["ReduceSum"] == 1, res.ops()
