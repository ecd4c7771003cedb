"""Half-precision exports on hailo8, whose segments hold float32: the model computes in float32
(exactly widened weights) behind its own float16 inputs and outputs, its convs land on Hailo, and
`rewrite check` judges the plan against the float16 original with that original's own rounding as
its noise. `--keep-float16` keeps the types (then those ops stay on the host, and say so)."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from util import assert_hailo_clean, make_model, ort_run, rewrite_and_run, torch_export, vi

from rewriter.cli import main
from rewriter.ir.widen import NARROW_FLOATS, widened


class TCN:
    """Conv1d (dilation, padding), BatchNorm, ReLU, a residual that reads its input twice, odd length."""

    @staticmethod
    def module():
        import torch
        from torch import nn

        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv1d(6, 16, 3, padding=2, dilation=2)
                self.bn = nn.BatchNorm1d(16)
                self.conv2 = nn.Conv1d(16, 6, 5, padding=2)
                self.head = nn.Conv1d(6, 3, 1)

            def forward(self, x):
                h = torch.relu(self.bn(self.conv1(x)))
                r = self.conv2(h) + x
                return torch.sigmoid(self.head(r * r))

        torch.manual_seed(0)
        block = Block()
        with torch.no_grad():  # BatchNorm statistics that are not the identity
            block.bn.running_mean.uniform_(-0.5, 0.5)
            block.bn.running_var.uniform_(0.5, 2.0)
        return block.eval().half()


def export(tmp_path):
    import torch

    return torch_export(TCN.module(), (torch.randn(1, 6, 101).half(),), tmp_path / "tcn16.onnx")


def check(capsys, plan, model, *extra) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["check", str(plan), "--against", str(model), "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


def float32_of(model_path) -> onnx.ModelProto:
    """The original computed in float32 behind its float16 interface (the reference of exactness)."""
    return widened(onnx.load(str(model_path)), NARROW_FLOATS, TensorProto.FLOAT, keep_interface=True)


def test_float16_tcn_lands_on_hailo_and_checks(tmp_path, target, capsys):
    pytest.importorskip("torch")
    path = export(tmp_path)
    res = rewrite_and_run(path, tmp_path, target=target, compare=False)
    assert_hailo_clean(res)
    assert len(res.steps_on("hailo")) == 1 and res.ops("hailo")["Conv"] == 3
    assert res.ops("host")["Conv"] == 0
    assert not [c for c in res.doc["causes"] if "float16" in c["cause"]], res.doc["causes"]
    assert res.doc["widening"] == {"widened": ["float16"], "to": "float32"}
    assert [i["dtype"] for i in res.doc["inputs"]] == ["float16"] == [o["dtype"] for o in res.doc["outputs"]]
    for seg in res.hailo:  # the DFC gets float32
        assert {v.type.tensor_type.elem_type for v in (*seg.graph.input, *seg.graph.output)} == {TensorProto.FLOAT}
    # exact against the float32 function: the same float16 result, up to the rounding of the last step
    got, want = res.outputs["y"], ort_run(float32_of(path), res.feeds)["y"]
    assert got.dtype == np.float16
    ulp = float(np.spacing(np.float16(np.abs(want).max())))
    np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), rtol=0, atol=ulp)
    code, report = check(capsys, res.out, path)
    assert code == 0, report
    (row,) = report["outputs"]
    assert row["passed"] and row["floor"] >= float(np.spacing(np.float16(np.abs(want).max())))


def test_keep_float16_keeps_the_types_on_the_host(tmp_path, target, capsys):
    pytest.importorskip("torch")
    path = export(tmp_path)
    res = rewrite_and_run(path, tmp_path, target=target, extra_args=["--keep-float16"], compare=False)
    assert not res.steps_on("hailo")
    assert any(c["cause"].startswith("Conv: dtype float16") for c in res.doc["causes"]), res.doc["causes"]
    assert "widening" not in res.doc
    code, report = check(capsys, res.out, path)  # folding BatchNorm in float16 rounds differently
    assert code == 0, report


def test_a_plan_off_by_more_than_float16_rounding_fails(tmp_path, target, capsys):
    """The float16 floor is no blank cheque: a rule that moves a weight by 1% fails the check."""
    pytest.importorskip("torch")
    path = export(tmp_path)
    res = rewrite_and_run(path, tmp_path, target=target, compare=False)
    seg_step = res.steps_on("hailo")[0]
    seg_path = res.out / seg_step["model"]
    seg = onnx.load(str(seg_path))
    w = next(t for t in seg.graph.initializer if len(t.dims) == 4)
    w.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(w) * np.float32(1.01), w.name))
    onnx.save(seg, str(seg_path))
    from runtime.schema import refresh_files

    doc = json.loads((res.out / "plan.json").read_text())
    refresh_files(doc, res.out)  # the plan's hashes, so that it loads
    (res.out / "plan.json").write_text(json.dumps(doc))
    code, report = check(capsys, res.out, path)
    assert code == 1 and not report["passed"], report


def test_a_float16_island_in_a_float32_model(tmp_path, target, capsys):
    """Cast to float16, a conv in float16, Cast back: widened, both Casts are no-ops and go, and
    the conv joins its neighbours on Hailo. The float32 output's noise is the island's rounding."""
    rng = np.random.default_rng(0)
    w = lambda name, shape, dt: numpy_helper.from_array((rng.standard_normal(shape) * 0.5).astype(dt), name)  # noqa: E731
    m = make_model(
        [
            helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
            helper.make_node("Cast", ["a"], ["a16"], to=TensorProto.FLOAT16),
            helper.make_node("Conv", ["a16", "w2"], ["b16"], pads=[0, 1, 0, 1], kernel_shape=[1, 3]),
            helper.make_node("Cast", ["b16"], ["b"], to=TensorProto.FLOAT),
            helper.make_node("Relu", ["b"], ["y"]),
        ],
        [vi("x", [1, 4, 5, 9])],
        [vi("y", None)],
        [w("w1", [8, 4, 3, 3], np.float32), w("w2", [8, 8, 1, 3], np.float16)],
    )
    res = rewrite_and_run(m, tmp_path, target=target, compare=False)
    assert res.ops() == {"Conv": 2, "Relu": 1}  # no Cast left anywhere
    assert [s["device"] for s in res.doc["steps"]] == ["hailo"]
    want = ort_run(widened(m, NARROW_FLOATS, TensorProto.FLOAT, keep_interface=True), res.feeds)["y"]
    np.testing.assert_allclose(res.outputs["y"], want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))
    onnx.save(m, str(tmp_path / "island.onnx"))
    code, report = check(capsys, res.out, tmp_path / "island.onnx")
    assert code == 0, report


def test_calibration_and_normalization_take_float16_inputs(tmp_path, target):
    """--calib windows (float32 in the file) and --normalize run through the float16 input."""
    pytest.importorskip("torch")
    path = export(tmp_path)
    calib = tmp_path / "calib.npy"
    np.save(calib, np.random.default_rng(0).standard_normal([4, 6, 101]).astype(np.float32))
    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps({"mean": [0.1] * 6, "std": [2.0] * 6}))
    out = tmp_path / "cal.plan"
    with redirect_stdout(io.StringIO()):
        code = main([str(path), "--target", str(target), "-o", str(out), "-q", "--calib", str(calib)])
    assert code == 0
    doc = json.loads((out / "plan.json").read_text())
    (hailo,) = [s for s in doc["steps"] if s["device"] == "hailo"]
    frames = np.load(out / hailo["calib"])
    assert frames.dtype == np.float32 and frames.shape[0] == 4
    out2 = tmp_path / "norm.plan"
    with redirect_stdout(io.StringIO()):
        code = main([str(path), "--target", str(target), "-o", str(out2), "-q", "--normalize", str(stats)])
    assert code == 0
    from runtime import Plan

    x = np.random.default_rng(1).standard_normal([1, 6, 101]).astype(np.float16)
    with Plan.load(out2, backend="onnxruntime") as plan:
        got = plan.run({"x": x})["y"]
    z = ((x.astype(np.float32) - np.float32(0.1)) / np.float32(2.0)).astype(np.float16)
    want = ort_run(onnx.load(str(path)), {"x": z})["y"]
    np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), rtol=0, atol=4e-3)


def test_a_float16_outputs_floor_is_at_least_one_ulp(tmp_path, capsys):
    """Where the float16 original is exact (x * 2), its noise is 0; the floor is still one float16
    ulp at the output's scale, the finest difference two float16 results can show (torchaudio's
    ConvTasNet in float16: the plan 1 ulp off a noise-free original failed before)."""
    m = make_model(
        [helper.make_node("Mul", ["x", "two"], ["y"])],
        [vi("x", [1, 4, 1, 8], TensorProto.FLOAT16)],
        [vi("y", None, TensorProto.FLOAT16)],
        [numpy_helper.from_array(np.array(2.0, np.float16), "two")],
    )
    path = tmp_path / "twice.onnx"
    onnx.save(m, str(path))
    out = tmp_path / "twice.plan"
    with redirect_stdout(io.StringIO()):
        assert main([str(path), "-o", str(out), "-q"]) == 0
    code, report = check(capsys, out, path)
    (row,) = report["outputs"]
    want = ort_run(m, {"x": np.random.default_rng(0).standard_normal([1, 4, 1, 8]).astype(np.float16)})["y"]
    assert code == 0 and row["reference_noise"] == 0
    scale_ulp = float(np.spacing(np.float16(2.0)))  # |y| reaches 2..4 for standard-normal x
    assert scale_ulp <= row["floor"] <= 4 * scale_ulp, (row, float(np.abs(want).max()))
