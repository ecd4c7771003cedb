"""Synthetic IMU calibration windows."""

import subprocess
import sys
from pathlib import Path

import numpy as np
from imu_synth import MODEL_MEAN, MODEL_STD, PATTERNS, make_imu_windows, synth_window

ROOT = Path(__file__).resolve().parents[2]


def test_shape_dtype_and_determinism():
    x = make_imu_windows(10)
    assert x.shape == (10, 100, 9) and x.dtype == np.float32
    assert np.array_equal(x, make_imu_windows(10))
    assert not np.array_equal(x, make_imu_windows(10, seed=1))
    assert make_imu_windows(3, length=50).shape == (3, 50, 9)


def test_equal_pattern_shares_and_raw_magnitudes():
    x, labels = make_imu_windows(400, return_labels=True)
    assert {p: labels.count(p) for p in PATTERNS} == {p: 100 for p in PATTERNS}
    flat = x.reshape(-1, 9)
    assert abs(flat[:, 2].mean() - 9.8) < 0.5  # gravity on az
    assert np.all(np.abs(flat.mean(0)[3:6]) < 0.2)  # gyro centred, rad/s
    assert np.allclose(flat.mean(0)[6:], MODEL_MEAN[6:], atol=8)  # magnetometer, uT


def test_normalize_with_model_stats():
    raw = make_imu_windows(8)
    z = make_imu_windows(8, normalize="model")
    assert np.allclose(z, (raw - np.array(MODEL_MEAN)) / np.array(MODEL_STD), atol=1e-4)
    cfg = ROOT.parent / "shared/fixtures/tcn_encoder/model_config.json"
    if cfg.exists():
        assert np.allclose(make_imu_windows(8, normalize=str(cfg)), z, atol=1e-4)


def _windows(pattern, n=40):
    rng = np.random.default_rng(7)
    return np.stack([synth_window(pattern, 100, 100, rng) for _ in range(n)])


def _dominant_hz(signal, rate=100):
    spec = np.abs(np.fft.rfft(signal - signal.mean()))
    return np.fft.rfftfreq(signal.size, 1 / rate)[spec.argmax()]


def test_patterns_are_distinguishable():
    w = {p: _windows(p) for p in PATTERNS}
    gyro_energy = {p: (x[:, :, 3:6] ** 2).sum(-1).mean() for p, x in w.items()}
    accel_var = {p: x[:, :, :3].var(axis=1).sum(-1).mean() for p, x in w.items()}
    assert gyro_energy["stationary"] < gyro_energy["walking"] < gyro_energy["running"]
    assert accel_var["stationary"] < accel_var["turning"] < accel_var["walking"] < accel_var["running"]
    assert gyro_energy["stationary"] < 1e-3 and accel_var["stationary"] < 0.01
    # turning: yaw rate dominates and the magnetometer heading sweeps
    gz_share = {p: (x[:, :, 5] ** 2).sum() / (x[:, :, 3:6] ** 2).sum() for p, x in w.items()}
    assert gz_share["turning"] > 0.9 > max(gz_share[p] for p in ("walking", "running"))

    # the horizontal magnetometer field swings as the heading turns (hard-iron offsets cancel in std)
    swing = {p: np.hypot(x[:, :, 6].std(1), x[:, :, 7].std(1)).mean() for p, x in w.items()}
    assert swing["turning"] > 3 * max(swing[p] for p in ("stationary", "walking", "running"))
    # step cadence: ~2 Hz walking, ~3 Hz running on the vertical axis
    walk = np.median([_dominant_hz(x[:, 2]) for x in w["walking"]])
    run = np.median([_dominant_hz(x[:, 2]) for x in w["running"]])
    assert 1.5 <= walk <= 2.3 and 2.5 <= run <= 3.3


def test_example_script_writes_npy(tmp_path):
    out = tmp_path / "calib.npy"
    subprocess.run(
        [sys.executable, str(ROOT / "examples/imu_calibration.py"), "-n", "12", "-o", str(out), "--layout", "nhwc"],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    x = np.load(out)
    assert x.shape == (12, 1, 100, 9) and x.dtype == np.float32
