"""Separators end to end: the project's ConvTasNet export, torchaudio's ConvTasNet, and a separator
whose residual and skip tensors are also model outputs (consumed twice: by later segments and as
plan outputs). Default (resource model) and strict (`--tile-channels/--tile-width`) forms."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import onnx
import pytest
import torch

from rewriter.cli import main as rewrite_main
from rewriter.pipeline import RewriteOptions, rewrite_to_plan
from rewriter.target import Resources, TilingLimits, load_target

from .tiling_helpers import check_tile_limits

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "convtasnet.py"
TORCHAUDIO = Path(__file__).resolve().parent / "fixtures" / "ta_convtasnet_small.onnx"


def _example():
    spec = importlib.util.spec_from_file_location("convtasnet_example", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _scaled():
    """hailo8 with the row budget scaled down like the small models (1/8)."""
    return dataclasses.replace(load_target("hailo8"), tiling=TilingLimits(resources=Resources(layer_row_values=16384)))


def _check(out: Path, model: Path, capsys) -> dict:
    capsys.readouterr()
    assert rewrite_main(["check", str(out), "--against", str(model), "--samples", "1"]) == 0
    assert "FAIL" not in capsys.readouterr().out
    return json.loads((out / "plan.json").read_text())


def _one_hef_per_call(doc: dict) -> None:
    device = [s for s in doc["steps"] if s["device"] == "hailo"]
    assert doc["counts"]["device_calls"] == len(device) == doc["counts"]["distinct_hefs"]
    assert all("tiles" in s for s in device)


def test_convtasnet_default_resources(tmp_path, capsys):
    """The resource model scaled down with the model (asteroid's 512 x 1999 layers exceed it at full
    size; the small one at 2,000 samples exceeds a budget of 1/8 the same way): every hailo
    segment is one device stage, one HEF, one batched call, whole channels."""
    model = _example().export(tmp_path / "ctn.onnx", 2000, conv1d=True, **_example().SMALL)
    target = _scaled()
    out = tmp_path / "ctn.plan"
    result, doc, _ = rewrite_to_plan(model, out, target, RewriteOptions())
    tiled = [r for r in result.tiling if r.tiled]
    assert tiled and all(st["block"] is None for r in tiled for st in r.stages if st["kind"] == "device")
    assert all(st["tiles"] > 1 for r in tiled for st in r.stages if st["kind"] == "device")
    check_tile_limits(out, target.tiling)
    _one_hef_per_call(_check(out, model, capsys))


def test_convtasnet_strict_cli(tmp_path, capsys):
    """`rewrite MODEL --tile-channels 64 --tile-width 512`: every conv <= 64 in and out, every tensor
    <= 512 wide, each stage one HEF; the summary and --json carry the counts."""
    model = _example().export(tmp_path / "ctn.onnx", 2000, conv1d=True, **_example().SMALL)
    out = tmp_path / "ctn.plan"
    assert rewrite_main([str(model), "--tile-channels", "64", "--tile-width", "512", "-o", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "Tiled segments" in printed and "(tiled)" in printed and "device calls" in printed
    doc = json.loads((out / "plan.json").read_text())
    assert f"{doc['counts']['device_calls']} device calls, {doc['counts']['distinct_hefs']} distinct HEFs" in printed
    check_tile_limits(out, TilingLimits(64, 512))
    _one_hef_per_call(_check(out, model, capsys))
    assert rewrite_main(["inspect", str(model), "--tile-channels", "64", "--tile-width", "512", "--json", "-q"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"] == doc["counts"]


def test_torchaudio_convtasnet(tmp_path, capsys):
    """torchaudio's ConvTasNet (GroupNorm as Reshape/InstanceNormalization, ConvTranspose1d decoder)."""
    out = tmp_path / "ta.plan"
    assert rewrite_main([str(TORCHAUDIO), "--tile-channels", "16", "--tile-width", "256", "-o", str(out), "-q"]) == 0
    check_tile_limits(out, TilingLimits(16, 256))
    _one_hef_per_call(_check(out, TORCHAUDIO, capsys))


class _Exposed(torch.nn.Module):
    """The example separator returning, besides the sources, a residual and a skip tensor that the
    following blocks also read: segment outputs consumed by later segments and by the plan."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, wav):
        net = self.net
        e = torch.relu(net.encoder(wav))
        x = net.bottleneck(net.norm(e))
        skips, seen = 0, []
        for block in net.tcn:
            x, skip = block(x)
            skips = skips + skip
            seen.append((x, skips))
        y = net.prelu(skips)
        sources = torch.cat([net.decoder(e * torch.sigmoid(m(y))) for m in net.masks], dim=1)
        return sources, seen[0][0], seen[1][1]


@pytest.mark.parametrize("strict", [True, False])
def test_separator_with_residual_and_skip_outputs_consumed_twice(tmp_path, capsys, strict):
    ex = _example()
    torch.manual_seed(0)
    net = _Exposed(ex.ConvTasNet(conv1d=True, **ex.SMALL).eval())
    model = tmp_path / "sep.onnx"
    with torch.no_grad():
        torch.onnx.export(
            net,
            (torch.randn(1, 1, 1500),),
            str(model),
            input_names=["mixture"],
            output_names=["sources", "residual1", "skip2"],
            opset_version=17,
            dynamo=False,
        )
    assert [o.name for o in onnx.load(str(model)).graph.output] == ["sources", "residual1", "skip2"]
    out = tmp_path / "sep.plan"
    target = load_target("hailo8").with_tiling(64, 512) if strict else _scaled()
    rewrite_to_plan(model, out, target, RewriteOptions())
    check_tile_limits(out, target.tiling)
    doc = _check(out, model, capsys)
    _one_hef_per_call(doc)
    consumers = {}
    for s in doc["steps"]:
        for x in s["inputs"]:
            consumers.setdefault(x, set()).add(s["name"])
    producer = {y: s for s in doc["steps"] for y in s["outputs"]}
    for name in ("residual1", "skip2"):
        # the rank-3 output is squeezed on the host from the rank-4 tensor a tiled step made;
        # that tensor is read twice: by the squeeze for the plan output and by the next segment
        assert any("tiles" in producer.get(x, {}) and len(consumers[x]) >= 2 for x in producer[name]["inputs"])
