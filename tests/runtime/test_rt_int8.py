"""emulate-int8: QDQ-quantized hailo segments calibrated from calib files or propagated data."""

import json

import numpy as np
import pytest
from plan_steps import onnx_step
from rt_helpers import conv_model, rand, refresh, write_plan

from runtime import Plan, PlanError
from runtime.calib import load_calib_file
from runtime.parity import cosine


def build(tmp_path, calib=True):
    seg = tmp_path / "segments"
    conv_model(seg / "host_0.onnx", 3, 8, 12, 12, seed=1)
    conv_model(seg / "hailo_1.onnx", 8, 16, 12, 12, seed=2)
    conv_model(seg / "hailo_2.onnx", 16, 4, 12, 12, seed=3, relu=False)
    step = onnx_step("hailo_1", ["t0"], ["t1"], hef="segments/hailo_1.hef")
    out = write_plan(
        tmp_path,
        [("x", [1, 3, 12, 12])],
        [("y", [1, 4, 12, 12])],
        [
            onnx_step("host_0", ["x"], ["t0"], device="host"),
            dict(step, calib="calib/hailo_1.npy") if calib else step,
            onnx_step("hailo_2", ["t1"], ["y"]),
        ],
    )
    return out


def calib_inputs(n=16):
    return np.stack([rand(1, 3, 12, 12, seed=100 + i)[0] for i in range(n)])


def test_int8_with_calib_file_and_capture(tmp_path, tmp_path_factory):
    out = build(tmp_path, calib=False)
    cache = tmp_path_factory.mktemp("int8-cache")
    xs = calib_inputs()
    fplan = Plan.load(out, backend="onnxruntime")
    # The rewriter's calib file: hailo_1's inputs in host layout (N, H, W, C).
    t0 = np.concatenate([fplan.run({"x": x[None]}, keep=["t0"])["t0"] for x in xs])
    (out / "calib").mkdir()
    np.save(out / "calib/hailo_1.npy", t0.transpose(0, 2, 3, 1))
    doc = json.loads((out / "plan.json").read_text())
    doc["steps"][1]["calib"] = "calib/hailo_1.npy"
    (out / "plan.json").write_text(json.dumps(doc))
    refresh(out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    # hailo_2 has no calib file: its inputs are captured by running the float plan on `calibration`.
    qplan = Plan.load(out, backend="emulate-int8", calibration={"x": xs}, int8_cache_dir=cache)
    assert qplan.backend_name == "emulate-int8"
    assert len(list(cache.glob("*.onnx"))) == 2
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before, "emulation wrote into the plan"
    for seed in range(3):
        x = rand(1, 3, 12, 12, seed=seed)
        f, q = fplan.run({"x": x})["y"], qplan.run({"x": x})["y"]
        assert cosine(q, f) > 0.95
        assert not np.array_equal(q, f)


def test_int8_cache_reused(tmp_path, monkeypatch):
    out = build(tmp_path, calib=False)
    xs = calib_inputs(8)
    Plan.load(out, backend="emulate-int8", calibration={"x": xs})
    import runtime.backends.int8_emulation as ie

    def boom(*a, **k):
        raise AssertionError("should have used the cache")

    monkeypatch.setattr(ie, "quantize", boom)
    plan = Plan.load(out, backend="emulate-int8", calibration={"x": xs[:, None]})  # (N, 1, ...) also accepted
    assert plan.run({"x": xs[:1]})["y"].shape == (1, 4, 12, 12)
    with pytest.raises(AssertionError, match="cache"):  # other calibration data -> other key
        Plan.load(out, backend="emulate-int8", calibration={"x": xs[:4]})


def test_int8_needs_calibration(tmp_path):
    out = build(tmp_path, calib=False)
    with pytest.raises(PlanError, match="step 'hailo_1': emulate-int8 needs calibration data"):
        Plan.load(out, backend="emulate-int8")
    with pytest.raises(PlanError, match=r"calibration\['x'\] has shape \[4, 2\]"):
        Plan.load(out, backend="emulate-int8", calibration={"x": np.zeros((4, 2), np.float32)})


def test_calib_file_formats(tmp_path):
    a = rand(5, 4, 6, 3, seed=1)  # (N, H, W, C)
    b = rand(5, 7, seed=2)  # dense (N, C)
    np.savez(tmp_path / "c.npz", p=a, q=b)
    samples = load_calib_file(tmp_path / "c.npz", [("p", [1, 3, 4, 6]), ("q", [1, 7])], "s")
    assert len(samples) == 5
    np.testing.assert_array_equal(samples[2][0], a[2].transpose(2, 0, 1)[None])
    np.testing.assert_array_equal(samples[2][1], b[2][None])
    np.save(tmp_path / "c.npy", a)
    with pytest.raises(PlanError, match=r"step 's': calib for p has shape \[5, 4, 6, 3\], expected \(N, 6, 4, 3\)"):
        load_calib_file(tmp_path / "c.npy", [("p", [1, 3, 6, 4])], "s")
    with pytest.raises(PlanError, match="lacks arrays for inputs \\['r'\\]"):
        load_calib_file(tmp_path / "c.npz", [("r", [1, 7])], "s")
