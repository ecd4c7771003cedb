"""examples/tcn_variants.py: weight-norm TCN with exported padding chains, BatchNorm TCN."""
import sys

import onnx
import pytest

from util import REPO, assert_hailo_clean, rewrite_and_run

sys.path.insert(0, str(REPO / "examples"))
import tcn_variants  # noqa: E402


def _check(res, n_convs):
    assert_hailo_clean(res)
    assert len(res.steps_on("hailo")) == 1
    assert res.ops("host")["Conv"] == 0 and res.ops("hailo")["Conv"] == n_convs
    assert res.ops()["BatchNormalization"] == 0


def test_weightnorm_tcn_constant_pad_chains(tmp_path, target):
    path = tcn_variants.export("weightnorm", tmp_path / "wn.onnx", dynamic_pad=False)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"ConstantOfShape", "Concat", "Pad"} <= ops  # the exporter's padding chains
    res = rewrite_and_run(path, tmp_path, target=target)
    _check(res, 7)  # 4 causal convs, 2 downsample 1x1 convs, FC as 1x1 conv
    # the first Pad reads the rank-3 input directly: it stays on the host with the Unsqueezes
    assert set(res.ops("host")) <= {"Unsqueeze", "Squeeze", "Pad"}


def test_weightnorm_tcn_shape_derived_pads(tmp_path, target):
    path = tcn_variants.export("weightnorm", tmp_path / "wn.onnx", dynamic_pad=True)
    assert "Shape" in {n.op_type for n in onnx.load(str(path)).graph.node}
    res = rewrite_and_run(path, tmp_path, target=target)
    _check(res, 7)


def test_batchnorm_tcn(tmp_path, target):
    path = tcn_variants.export("batchnorm", tmp_path / "bn.onnx")
    assert "BatchNormalization" in {n.op_type for n in onnx.load(str(path)).graph.node}
    res = rewrite_and_run(path, tmp_path, target=target)
    _check(res, 9)  # 6 block convs, 2 downsample, FC as 1x1 conv
    assert set(res.ops("host")) <= {"Unsqueeze", "Squeeze"}
