"""DepthToSpace on hailo8: PixelShuffle as torch exports it (mode CRD) stays in the Hailo segment
(ESPCN's upsampling, which Hailo's model zoo compiles into the HEF); DCR, which no source covers,
stays on the host and says why; a segment wide enough to be tiled runs the shuffle between its
device stages and still matches."""

from __future__ import annotations

import pytest
from onnx import helper
from util import make_model, rewrite_and_run, torch_export, vi, weight


def espcn(scale: int):
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2),
        nn.Tanh(),
        nn.Conv2d(16, 8, 3, padding=1),
        nn.Tanh(),
        nn.Conv2d(8, scale * scale, 3, padding=1),
        nn.PixelShuffle(scale),
        nn.Sigmoid(),
    )


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("scale", [2, 3])
def test_espcn_upsampling_on_hailo(scale, dynamo, tmp_path, target):
    torch = pytest.importorskip("torch")
    torch.manual_seed(scale)
    path = torch_export(espcn(scale), (torch.randn(1, 1, 13, 17),), tmp_path / "espcn.onnx", dynamo=dynamo)
    res = rewrite_and_run(path, tmp_path, target=target)
    assert [s["device"] for s in res.doc["steps"]] == ["hailo"]
    assert res.ops("hailo")["DepthToSpace"] == 1
    assert res.outputs["y"].shape == (1, 1, 13 * scale, 17 * scale)


def test_dcr_mode_stays_on_the_host(tmp_path, target):
    m = make_model(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("DepthToSpace", ["c"], ["d"], blocksize=2, mode="DCR"),
            helper.make_node("Conv", ["d", "w2"], ["y"], pads=[1, 1, 1, 1]),
        ],
        [vi("x", [1, 3, 6, 7])],
        [vi("y", None)],
        [weight("w", [8, 3, 3, 3]), weight("w2", [4, 2, 3, 3])],
    )
    res = rewrite_and_run(m, tmp_path, target=target)
    assert res.ops("host")["DepthToSpace"] == 1
    assert any("mode='DCR'" in c["cause"] for c in res.doc["causes"]), res.doc["causes"]


def test_tiled_segment_with_a_shuffle(tmp_path, target):
    """64 channels at width 4,100 exceed the row budget: the segment is tiled; the shuffle (not
    time-local in the tiler's model) runs on the host between device stages, exactly."""
    m = make_model(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], pads=[0, 1, 0, 1], kernel_shape=[1, 3]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("DepthToSpace", ["r"], ["d"], blocksize=2, mode="CRD"),
            helper.make_node("Conv", ["d", "w2"], ["y"], pads=[1, 1, 1, 1]),
        ],
        [vi("x", [1, 4, 1, 4100])],
        [vi("y", None)],
        [weight("w", [64, 4, 1, 3]), weight("w2", [8, 16, 3, 3])],
    )
    res = rewrite_and_run(m, tmp_path, target=target)
    assert res.doc["segments"][0].get("tiled"), res.doc["segments"]
    assert res.outputs["y"].shape == (1, 8, 2, 8200)
