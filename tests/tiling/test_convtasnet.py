"""ConvTasNet at 16,000 samples: 64-channel blocks, width 512, exact stitched parity."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from rewriter.cli import main as rewrite_main
from rewriter.target import TilingLimits
from rewriter.pipeline import RewriteOptions, rewrite_to_plan
from rewriter.target import load_target

from .tiling_helpers import check_tile_limits

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "convtasnet.py"


def _example():
    spec = importlib.util.spec_from_file_location("convtasnet_example", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("samples,conv1d,sizes", [(16000, True, {}), (4000, False, dict(n=96, b=96, h=160, x=3))])
def test_convtasnet_tiled_plan(tmp_path, samples, conv1d, sizes, capsys):
    """The full model at 16,000 samples is exported with Conv1d, as model owners have it: the hailo8
    rules make it rank 4, then tiling; the smaller one is exported rank 4 directly."""
    model = _example().export(tmp_path / "ctn.onnx", samples, conv1d=conv1d, **sizes)
    out = tmp_path / "ctn.plan"
    result, doc, _ = rewrite_to_plan(model, out, load_target("hailo8").with_tiling(64, 512),
                                     RewriteOptions(force_tiling=True))
    reports = result.tiling
    assert any(r.tiled for r in reports)
    limits = TilingLimits(channels=64, width=512, tile_when_channels_above_at_width=0)
    assert check_tile_limits(out, limits) > 0
    steps = json.loads((out / "plan.json").read_text())["steps"]
    assert {s["kind"] for s in steps} >= {"slice", "concat", "sum"}
    assert rewrite_main(["check", str(out), "--against", str(model), "--samples", "1"]) == 0
    text = capsys.readouterr().out
    assert " ok" in text and "FAIL" not in text


def test_cli_tiles_and_summarizes(tmp_path, capsys):
    """`rewrite MODEL --tile-channels 64 --tile-width 512` tiles in the pipeline itself: the plan has
    tile steps within the limits, the summary has one row per segment plus the tiling table, and
    `rewrite check` passes."""
    import onnx

    # Conv1d export: the hailo8 rules convert it to (1, k) convs before tiling
    model = _example().export(tmp_path / "ctn.onnx", 2000, conv1d=True, n=96, b=96, h=160, x=3)
    out = tmp_path / "ctn.plan"
    assert rewrite_main([str(model), "--tile-channels", "64", "--tile-width", "512", "-o", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "Tiled segments:" in printed and "(tiled)" in printed
    doc = json.loads((out / "plan.json").read_text())
    tiles = [s for s in doc["steps"] if s.get("tile")]
    assert tiles and all(s["device"] == "hailo" for s in tiles)
    assert any(seg.get("tiled") for seg in doc["segments"])
    for rel in {s["model"] for s in doc["steps"] if s["device"] == "hailo"}:
        seg = onnx.shape_inference.infer_shapes(onnx.load(str(out / rel)))
        for v in list(seg.graph.input) + list(seg.graph.output) + list(seg.graph.value_info):
            dims = [d.dim_value for d in v.type.tensor_type.shape.dim]
            assert len(dims) == 4 and dims[3] <= 512, (rel, v.name, dims)
    check_tile_limits(out, TilingLimits(64, 512, 512))
    capsys.readouterr()
    assert rewrite_main(["check", str(out), "--against", str(model), "--samples", "1"]) == 0
