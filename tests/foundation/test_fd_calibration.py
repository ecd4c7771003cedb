"""`rewrite MODEL --calib FILE`: per-Hailo-step calibration sets, propagated through the plan."""

import json

import numpy as np
from fd_util import TCN_MODEL, cli, conv_chain_model, needs_tcn, save
from imu_synth import make_imu_windows

from runtime import Plan

CONFIG = TCN_MODEL.parent / "model_config.json"


def test_tcn_fixture_calibration_and_int8_check(tmp_path, capsys):
    """The issue's acceptance case: 1,100 raw windows, --normalize with the seed's statistics; every
    Hailo step gets a (1100, H, W, C) calib file matching its input; emulate-int8 passes the gate."""
    needs_tcn()
    calib = tmp_path / "calib.npy"
    np.save(calib, make_imu_windows(1100, seed=3))
    out = tmp_path / "tcn.plan"
    rc, _, err = cli(capsys, TCN_MODEL, "-o", out, "--normalize", CONFIG, "--calib", calib, "-q")
    assert rc == 0, err
    doc = json.loads((out / "plan.json").read_text())
    hailo = [s for s in doc["steps"] if s["device"] == "hailo"]
    assert hailo
    plan = Plan.load(out, backend="onnxruntime")
    raw = np.load(calib)
    for step in hailo:
        data = np.load(out / step["calib"])
        (name,) = step["inputs"]
        n, c, h, w = [1100] + [d for d in _shape_of(out, step)][1:]
        assert data.shape == (n, h, w, c) and data.dtype == np.float32
        # sample 7 of the file is what the step sees when the plan runs window 7, in NHWC
        seen = plan.run({doc["inputs"][0]["name"]: raw[7:8]}, keep=[name])[name]
        np.testing.assert_allclose(data[7], seen[0].transpose(1, 2, 0), rtol=1e-6, atol=1e-6)
    rc, printed, err = cli(
        capsys,
        "check",
        out,
        "--against",
        TCN_MODEL,
        "--backend",
        "emulate-int8",
        "--input",
        f"{doc['inputs'][0]['name']}={_window(tmp_path, raw)}",
    )
    assert rc == 0, err
    assert "per Hailo segment" in printed and "latent_embeddings" in printed


def _shape_of(out, step):
    import onnx

    model = onnx.load(str(out / step["model"]))
    return [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]


def _window(tmp_path, raw):
    path = tmp_path / "window.npy"
    np.save(path, raw[:1])
    return path


def test_few_windows_warn_and_bad_calibration_is_a_user_error(tmp_path, capsys):
    model = conv_chain_model(channels=16, size=32)
    path = save(model, tmp_path / "m.onnx")
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    good = tmp_path / "good.npy"
    np.save(good, np.random.default_rng(0).standard_normal((12, *shape[1:])).astype(np.float32))
    rc, _, err = cli(capsys, path, "-o", tmp_path / "a.plan", "--calib", good, "-q")
    assert rc == 0 and "calibration windows < 1024" in err
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((4, 3), np.float32))
    rc, _, err = cli(capsys, path, "-o", tmp_path / "b.plan", "--calib", bad, "-q")
    assert rc == 2 and err.startswith("rewrite: error:") and "--calib" in err and "Traceback" not in err
    assert not (tmp_path / "b.plan").exists()
    rc, _, err = cli(capsys, path, "-o", tmp_path / "c.plan", "--calib", tmp_path / "missing.npy", "-q")
    assert rc == 2 and "no such calibration file" in err
