"""Nodes a tiled segment runs in host steps are reported as host nodes, with the tiler's reason
(rewriter/tiling/host_causes.py): the placement JSON gives them the host step they run in, and the
causes table counts a device call for each host step between device stages. A Wave-U-Net level:
a stride-2 decimation Slice and a linear Resize between Conv1ds, 16,000 samples (tiled)."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import torch
import torch.nn.functional as F
from torch import nn

from rewriter.cli import main


class UNetLevel(nn.Module):
    def __init__(self, c=24):
        super().__init__()
        self.a, self.b = nn.Conv1d(1, c, 15, padding=7), nn.Conv1d(c, c, 15, padding=7)
        self.up, self.c = nn.Upsample(scale_factor=2, mode="linear"), nn.Conv1d(2 * c, 1, 5, padding=2)

    def forward(self, x):
        a = F.leaky_relu(self.a(x), 0.2)
        b = F.leaky_relu(self.b(a[:, :, ::2]), 0.2)
        return torch.tanh(self.c(torch.cat([self.up(b), a], 1)))


def test_tiling_host_steps_are_host_nodes_with_their_reasons(tmp_path):
    torch.manual_seed(0)
    model = tmp_path / "unet.onnx"
    torch.onnx.export(UNetLevel().eval(), (torch.randn(1, 1, 16000),), str(model), opset_version=17, dynamo=False)
    out = io.StringIO()
    with redirect_stdout(out):
        assert main([str(model), "-o", str(tmp_path / "unet.plan"), "--json"]) == 0
    report = json.loads(out.getvalue())
    doc = json.loads((tmp_path / "unet.plan" / "plan.json").read_text())
    steps = {s["name"]: s for s in doc["steps"]}

    moved = {r["op"]: r for r in report["placement"] if r["op"] in ("Slice", "Resize")}
    assert set(moved) == {"Slice", "Resize"}
    for op, why in (("Slice", "strided slice"), ("Resize", "does not split Resize")):
        row = moved[op]
        assert row["device"] == "host" and why in row["reason"] and "between time tiles" in row["reason"], row
        assert steps[row["step"]]["device"] == "host"  # the host step it runs in

    causes = {c["cause"].split(":")[0]: c for c in report["causes"]}
    for op in ("Slice", "Resize"):
        assert causes[op]["nodes"] == 1 and causes[op]["round_trips"] == 1, causes[op]
        assert causes[op]["segments"] == [moved[op]["step"]]
    assert report["counts"]["device_calls"] == 3  # the two host steps split the device work in three
