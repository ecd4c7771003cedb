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
    # the first Pad reads the rank-3 input: unsqueeze_before_pad moves it into the Hailo segment
    assert set(res.ops("host")) <= {"Unsqueeze", "Squeeze"}


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


@pytest.mark.parametrize("norm", ["weight_norm", "batch_norm"])
def test_pytorch_tcn_package(norm, tmp_path, target):
    """The `pytorch-tcn` package (PyPI), as model owners use it: causal padding exported as
    ConstantOfShape/Concat/Pad chains, weight norm or BatchNorm1d. Every conv on hailo, exact."""
    torch = pytest.importorskip("torch")
    tcn = pytest.importorskip("pytorch_tcn", reason="pytorch-tcn not installed")
    torch.manual_seed(0)
    model = tcn.TCN(
        num_inputs=9,
        num_channels=[32, 32, 64],
        kernel_size=3,
        causal=True,
        use_norm=norm,
        dropout=0.0,
        input_shape="NCL",
    ).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
    path = tmp_path / "tcn.onnx"
    torch.onnx.export(
        model,
        (torch.randn(1, 9, 100),),
        str(path),
        input_names=["x"],
        output_names=["y"],
        opset_version=17,
        dynamo=False,
        do_constant_folding=norm == "weight_norm",
    )
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"ConstantOfShape", "Pad"} <= ops
    res = rewrite_and_run(path, tmp_path, target=target)
    n_convs = sum(n.op_type == "Conv" for n in onnx.load(str(path)).graph.node)
    _check(res, n_convs)
    assert set(res.ops("host")) <= {"Unsqueeze", "Squeeze"}
