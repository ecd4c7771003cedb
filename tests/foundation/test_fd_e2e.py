"""End to end through the CLI: rewrite -> runtime.Plan parity against onnxruntime -> rewrite check."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from fd_util import (
    ONNX_DATA,
    assert_parity,
    cli,
    make_model,
    needs_tcn,
    ort_run,
    plan_run,
    random_feeds,
    read_plan,
    save,
    target_toml,
    vi,
    weight,
)
from onnx import helper


def _convert_and_check(capsys, model_path, out, *extra):
    rc, stdout, err = cli(capsys, model_path, "--target", "hailo8", "-o", out, *extra)
    assert rc == 0, err
    assert "Placement for target hailo8" in stdout
    rc, stdout, err = cli(capsys, "check", out, "--against", model_path)
    assert rc == 0, stdout + err
    assert "FAIL" not in stdout
    return read_plan(out)


def _parity(out, model_path, seed=0, shapes=None):
    model = onnx.load(str(model_path))
    feeds = random_feeds(model, seed=seed, shapes=shapes)
    assert_parity(plan_run(out, feeds), ort_run(model_path, feeds))


def test_tcn_encoder_end_to_end(tmp_path, capsys):
    model_path = needs_tcn()
    doc = _convert_and_check(capsys, model_path, tmp_path / "tcn.plan")
    assert [i["name"] for i in doc["inputs"]] == [i.name for i in onnx.load(str(model_path)).graph.input]
    for seed in (0, 1):
        _parity(tmp_path / "tcn.plan", model_path, seed=seed)


def test_light_squeezenet_end_to_end(tmp_path, capsys):
    src = ONNX_DATA / "light" / "light_squeezenet.onnx"
    doc = _convert_and_check(capsys, src, tmp_path / "sq.plan", "--input-shape", "data_0=1,3,224,224")
    hailo = [s for s in doc["steps"] if s["device"] == "hailo"]
    assert hailo and sum(s["macs"] for s in hailo) == sum(s["macs"] for s in doc["steps"])
    _parity(tmp_path / "sq.plan", src)


@pytest.mark.parametrize("name,hailo_segments", [("light_resnet50", 1), ("light_inception_v1", 3)])
def test_light_cnn_end_to_end(tmp_path, capsys, name, hailo_segments):
    """onnx's light ResNet-50 (residual Sums) and Inception v1 (LRN on the host): exact parity and
    every MAC on hailo; ResNet-50 in a single Hailo segment."""
    src = ONNX_DATA / "light" / f"{name}.onnx"
    doc = _convert_and_check(capsys, src, tmp_path / "m.plan", "-q")
    hailo = [s for s in doc["steps"] if s["device"] == "hailo"]
    assert len(hailo) == hailo_segments
    assert sum(s["macs"] for s in hailo) == sum(s["macs"] for s in doc["steps"])


# ---- torch-exported 4-D conv models --------------------------------------------------------


def _export(module, shape, path):
    import torch

    torch.manual_seed(0)
    module.eval()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    torch.onnx.export(
        module, torch.randn(*shape), str(path), input_names=["x"], output_names=["y"], opset_version=17, dynamo=False
    )
    return path


def _torch_models():
    import torch.nn as nn

    return {
        "conv_relu_pool_gemm": (
            nn.Sequential(
                nn.Conv2d(3, 16, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(16, 16, 3, padding=1),
                nn.ReLU(),
                nn.Flatten(),
                nn.Linear(16 * 16 * 16, 10),
            ),
            (1, 3, 32, 32),
        ),
        "padded_strided_dilated": (
            nn.Sequential(
                nn.Conv2d(4, 16, 3, stride=2, padding=2, dilation=2),
                nn.ReLU(),
                nn.Conv2d(16, 16, (3, 5), stride=(1, 2), padding=(1, 2)),
                nn.ReLU(),
            ),
            (1, 4, 40, 40),
        ),
        "depthwise": (
            nn.Sequential(
                nn.Conv2d(8, 16, 1),
                nn.ReLU(),
                nn.Conv2d(16, 16, 3, padding=1, groups=16),
                nn.ReLU(),
                nn.Conv2d(16, 16, 1),
            ),
            (1, 8, 32, 32),
        ),
        "avgpool_batchnorm": (
            nn.Sequential(
                nn.Conv2d(3, 16, 3, padding=1),
                nn.BatchNorm2d(16),
                nn.ReLU6(),
                nn.AvgPool2d(2),
                nn.Conv2d(16, 16, 3, padding=1),
                nn.Sigmoid(),
            ),
            (1, 3, 32, 32),
        ),
    }


@pytest.mark.parametrize("name", ["conv_relu_pool_gemm", "padded_strided_dilated", "depthwise", "avgpool_batchnorm"])
def test_torch_conv_model_end_to_end(tmp_path, capsys, name):
    pytest.importorskip("torch")
    module, shape = _torch_models()[name]
    if name == "avgpool_batchnorm":  # give BN non-trivial running stats
        import torch

        bn = module[1]
        bn.running_mean.copy_(torch.linspace(-0.5, 0.5, 16))
        bn.running_var.copy_(torch.linspace(0.5, 2.0, 16))
    path = _export(module, shape, tmp_path / f"{name}.onnx")
    doc = _convert_and_check(capsys, path, tmp_path / f"{name}.plan")
    assert any(s["device"] == "hailo" for s in doc["steps"])
    convs = [r for r in doc["placement"] if r["op"] == "Conv"]
    assert convs and all(r["device"] == "hailo" for r in convs), convs
    for seed in (0, 1):
        _parity(tmp_path / f"{name}.plan", path, seed=seed)


@pytest.mark.parametrize(
    "case",
    [
        "test_Conv2d_depthwise_padded",
        "test_Conv2d_dilated",
        "test_Conv2d_strided",
        "test_MaxPool2d_stride_padding_dilation",
        "test_BatchNorm2d_eval",
        "test_AvgPool2d_stride",
    ],
)
def test_onnx_pytorch_converted_case_matches_its_reference(tmp_path, capsys, case):
    folder = ONNX_DATA / "pytorch-converted" / case
    if not (folder / "model.onnx").is_file():
        pytest.skip(f"{case} not shipped by this onnx")
    out = tmp_path / "case.plan"
    rc, _, err = cli(capsys, folder / "model.onnx", "-o", out, "-q")
    assert rc == 0, err
    model = onnx.load(str(folder / "model.onnx"))
    tensors = [
        onnx.numpy_helper.to_array(onnx.load_tensor(str(p)))
        for p in sorted((folder / "test_data_set_0").glob("input_*.pb"))
    ]
    inits = {t.name for t in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in inits]
    feeds = dict(zip(names, tensors))
    got = plan_run(out, feeds)
    # the shipped reference outputs (some of these opset-6 models no longer load in onnxruntime)
    expected = [
        onnx.numpy_helper.to_array(onnx.load_tensor(str(p)))
        for p in sorted((folder / "test_data_set_0").glob("output_*.pb"))
    ]
    want = dict(zip([o.name for o in model.graph.output], expected))
    assert_parity(got, want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5 * (np.abs(want[name]).max() or 1))


def test_rank3_reason_without_conv1d_rules(tmp_path, capsys):
    """Without Conv1d rules, rank-3 convs go to the host and the summary says rank-3."""
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1], name="conv1d"),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    model = make_model(
        nodes, [vi("x", [1, 16, 256])], [vi("y", [1, 32, 256])], [weight("W", (32, 16, 3)), weight("B", (32,))]
    )
    path = save(model, tmp_path / "c1d.onnx")
    target = target_toml(tmp_path, "norules")  # rules = []
    out = tmp_path / "c1d.plan"
    rc, stdout, err = cli(capsys, path, "--target", target, "-o", out)
    assert rc == 0, err
    placement = {r["node"]: r for r in read_plan(out)["placement"]}
    assert placement["conv1d"]["device"] == "host"
    assert "rank-3" in placement["conv1d"]["reason"]
    assert "rank-3" in stdout
    _parity(out, path)


def test_tcn_rank3_nodes_report_reason(tmp_path, capsys):
    model_path = needs_tcn()
    target = target_toml(tmp_path, "norules")
    out = tmp_path / "tcn.plan"
    assert cli(capsys, model_path, "--target", target, "-o", out, "-q")[0] == 0
    convs = [r for r in read_plan(out)["placement"] if r["op"] == "Conv"]
    assert convs and all(r["device"] == "host" and "rank-3" in r["reason"] for r in convs)


def test_dynamic_batch_model_check_and_run(tmp_path, capsys):
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])]
    model = make_model(nodes, [vi("x", ["N", 8, 32, 32])], [vi("y", ["N", 8, 32, 32])], [weight("W", (8, 8, 3, 3))])
    path = save(model, tmp_path / "dyn.onnx")
    out = tmp_path / "dyn.plan"
    assert cli(capsys, path, "-o", out, "-q")[0] == 0
    np.save(tmp_path / "x.npy", np.ones((1, 8, 32, 32), np.float32))
    rc, _, err = cli(capsys, "run", out, "--input", f"x={tmp_path / 'x.npy'}")
    assert rc == 0, err
    rc, stdout, err = cli(capsys, "check", out, "--against", path)
    assert rc == 0, stdout + err
