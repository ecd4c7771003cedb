"""Synthetic 9-axis IMU windows for DFC calibration when no recorded data is at hand.

Channels [ax, ay, az, gx, gy, gz, mx, my, mz] in raw units: m/s^2, rad/s, uT. Magnitudes follow the
TCN encoder's normalization statistics (fixtures/tcn_encoder/model_config.json): gravity ~9.8 on az,
gyro std ~1 rad/s over the mix, magnetometer mean ~(22, -9, 43) uT with large per-device
(hard-iron) offsets. Four patterns are mixed in equal shares: stationary, walking (~2 Hz steps),
running (~3 Hz, larger), turning (gz ramp, rotating magnetometer heading).
This is calibration filler, not a motion model: prefer real recordings when you have them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CHANNELS = ("ax", "ay", "az", "gx", "gy", "gz", "mx", "my", "mz")
PATTERNS = ("stationary", "walking", "running", "turning")
GRAVITY = 9.81
# Normalization statistics of the seed TCN encoder (model_config.json), used by normalize="model".
MODEL_MEAN = (0.12, -0.08, 9.78, 0.002, -0.001, 0.003, 22.4, -8.7, 43.2)
MODEL_STD = (3.92, 3.87, 2.45, 1.24, 1.31, 0.98, 28.5, 31.2, 24.8)

# Earth field split into horizontal / vertical parts (|B| ~ 50 uT), plus hard-iron offsets whose
# mean and spread bring the mixture near the model's magnetometer statistics.
_EARTH_H, _EARTH_V = 25.0, 43.2
_IRON_MEAN = np.array([22.4, -8.7, 0.0])
_IRON_STD = np.array([20.0, 22.0, 22.0])


def _gravity(rng, max_tilt_deg):
    roll, pitch = np.deg2rad(rng.uniform(-max_tilt_deg, max_tilt_deg, 2))
    return GRAVITY * np.array([np.sin(pitch), -np.sin(roll) * np.cos(pitch), np.cos(roll) * np.cos(pitch)])


def _magnetometer(heading, iron, rng, noise=0.5):
    """Body-frame field for a heading (rad) over time: the horizontal part turns with the device."""
    n = heading.shape[0]
    mag = np.stack([_EARTH_H * np.cos(heading), -_EARTH_H * np.sin(heading), np.full(n, _EARTH_V)], axis=1)
    return mag + iron + rng.normal(0, noise, (n, 3))


def synth_window(pattern: str, length: int = 100, rate_hz: float = 100, rng=None) -> np.ndarray:
    """One (length, 9) float64 window of `pattern`."""
    rng = rng if rng is not None else np.random.default_rng()
    t = np.arange(length) / rate_hz
    iron = rng.normal(_IRON_MEAN, _IRON_STD)
    heading0 = rng.uniform(0, 2 * np.pi)
    phase = rng.uniform(0, 2 * np.pi)
    acc = np.zeros((length, 3))
    gyr = np.zeros((length, 3))
    heading = np.full(length, heading0)

    if pattern == "stationary":
        acc += _gravity(rng, 10) + rng.normal(0, 0.03, (length, 3))
        gyr += rng.normal(0, 0.005, 3) + rng.normal(0, 0.01, (length, 3))  # bias + noise
    elif pattern in ("walking", "running"):
        run = pattern == "running"
        f = rng.uniform(2.6, 3.2) if run else rng.uniform(1.6, 2.2)  # step frequency, Hz
        scale = rng.uniform(0.8, 1.2) * (2.8 if run else 1.0)
        step = 2 * np.pi * f * t + phase
        stride = step / 2  # sway repeats every two steps
        acc += _gravity(rng, 15)
        acc[:, 2] += scale * (2.5 * np.sin(step) + 0.8 * np.sin(2 * step))  # vertical bounce
        acc[:, 0] += scale * 1.2 * np.sin(step + 0.5)  # forward surge
        acc[:, 1] += scale * 0.8 * np.sin(stride)  # lateral sway
        gyr[:, 0] += scale * 0.4 * np.sin(stride + 0.3)
        gyr[:, 1] += scale * 0.6 * np.sin(step + 1.0)
        gyr[:, 2] += scale * 0.3 * np.sin(stride + 2.0)
        acc += rng.normal(0, 0.6 if run else 0.2, (length, 3))
        gyr += rng.normal(0, 0.1 if run else 0.04, (length, 3))
        heading = heading0 + 0.05 * scale * np.sin(stride)  # small yaw wobble
    elif pattern == "turning":
        rate = rng.choice([-1, 1]) * rng.uniform(1.0, 2.5)  # final yaw rate, rad/s
        gz = rate * np.clip(t / (0.6 * t[-1] + 1e-9), 0, 1)  # ramp up, then hold
        acc += _gravity(rng, 10)
        acc[:, 1] += 0.3 * gz  # centripetal, ~0.3 m radius
        acc += rng.normal(0, 0.1, (length, 3))
        gyr[:, 2] = gz
        gyr += rng.normal(0, 0.03, (length, 3))
        heading = heading0 + np.cumsum(gz) / rate_hz
    else:
        raise ValueError(f"unknown pattern {pattern!r}; choose from {PATTERNS}")

    return np.concatenate([acc, gyr, _magnetometer(heading, iron, rng)], axis=1)


def _norm_stats(normalize):
    """(mean, std) from "model", (mean, std), a model_config-style dict, or a path to its JSON."""
    if isinstance(normalize, str) and normalize == "model":
        return np.array(MODEL_MEAN), np.array(MODEL_STD)
    if isinstance(normalize, (str, Path)):
        normalize = json.loads(Path(normalize).read_text())
    if isinstance(normalize, dict):
        stats = normalize.get("normalization", normalize)
        return np.asarray(stats["mean"], float), np.asarray(stats["std"], float)
    mean, std = normalize
    return np.asarray(mean, float), np.asarray(std, float)


def make_imu_windows(
    n: int,
    length: int = 100,
    rate_hz: float = 100,
    seed: int = 0,
    normalize=None,
    *,
    patterns=PATTERNS,
    return_labels: bool = False,
):
    """(n, length, 9) float32 windows, patterns mixed in equal shares in a seeded random order.
    normalize=None keeps raw units; "model" / (mean, std) / model_config dict or path z-scores them."""
    rng = np.random.default_rng(seed)
    labels = np.resize(np.arange(len(patterns)), n)  # equal shares ...
    rng.shuffle(labels)  # ... in random order
    out = (
        np.stack([synth_window(patterns[k], length, rate_hz, rng) for k in labels])
        if n
        else np.zeros((0, length, len(CHANNELS)))
    )
    if normalize is not None:
        mean, std = _norm_stats(normalize)
        out = (out - mean) / std
    out = out.astype(np.float32)
    return (out, [patterns[k] for k in labels]) if return_labels else out


def to_nhwc(windows: np.ndarray) -> np.ndarray:
    """(N, T, C) -> (N, 1, T, C): the NHWC layout of a [1, C, 1, T] segment input (time on W)."""
    return np.ascontiguousarray(windows[:, None, :, :])


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(description="Write synthetic IMU calibration windows to an .npy file.")
    p.add_argument("-n", type=int, default=1100, help="number of windows (>= 1024 keeps the DFC at full optimization)")
    p.add_argument("-o", "--output", default="calib.npy")
    p.add_argument("--length", type=int, default=100)
    p.add_argument("--rate", type=float, default=100.0, help="sample rate, Hz")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--normalize", metavar="MODEL_CONFIG_JSON|model", help="z-score with these stats (default: raw units)"
    )
    p.add_argument(
        "--layout",
        choices=("ntc", "nhwc"),
        default="ntc",
        help="ntc: (N, T, 9) like the model input; nhwc: (N, 1, T, 9) for a [1, 9, 1, T] segment",
    )
    a = p.parse_args(argv)
    x = make_imu_windows(a.n, a.length, a.rate, a.seed, a.normalize)
    if a.layout == "nhwc":
        x = to_nhwc(x)
    np.save(a.output, x)
    print(f"wrote {a.output}: {x.shape} {x.dtype}")
    return 0
