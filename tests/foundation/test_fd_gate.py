"""The parity gate of `rewrite check`: relative to the output's scale, with an absolute noise floor
(onnxruntime's own difference on the original, or --atol), and the criterion that decided."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from fd_util import cli, make_model, save, vi, weight
from onnx import helper

from rewriter.cli.gate import NOISE_MARGIN, Gate

FLOAT = Gate(min_cosine=0.99999, max_rel_error=1e-4)


def _row(cosine, max_abs, max_rel):
    return {"cosine": cosine, "max_abs": max_abs, "max_rel": max_rel}


def test_relative_error_decides_above_the_floor():
    assert FLOAT.judge(_row(1.0, 5e-5, 5e-5), noise=0.0) == (True, "relative")
    assert FLOAT.judge(_row(1.0, 5e-4, 5e-4), noise=0.0) == (False, "relative")


def test_noise_floor_passes_a_near_zero_output():
    """PP-OCRv4 det's sigmoid map: max 7.5e-4, error 1.8e-7 (2.4e-4 of its scale, cosine 0.99984),
    exactly what onnxruntime's two optimization levels differ by: within the floor."""
    row = _row(0.9998412, 1.79e-7, 2.4e-4)
    assert FLOAT.judge(row, noise=1.79e-7) == (True, "floor")
    assert FLOAT.judge(row, noise=0.5e-7) == (False, "cosine")  # above twice the noise: judged on cosine
    assert FLOAT.floor(1e-7) == pytest.approx(NOISE_MARGIN * 1e-7)


def test_user_floor_and_quantized_gate():
    assert Gate(0.99999, 1e-4, atol=1e-3).judge(_row(0.5, 9e-4, 0.9), noise=0.0) == (True, "floor")
    quantized = Gate(0.95, None)
    assert quantized.judge(_row(0.97, 0.1, 0.1), noise=0.0) == (True, "cosine")
    assert quantized.judge(_row(0.90, 0.1, 0.1), noise=0.0) == (False, "cosine")


def _model(scale=1.0):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])]
    w = weight("w", (8, 3, 3, 3))
    w = onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(w) * np.float32(scale), "w")
    return make_model(nodes, [vi("x", [1, 3, 32, 32])], [vi("y", [1, 8, 32, 32])], [w])


def test_check_says_which_criterion_decided(tmp_path, capsys):
    path = save(_model(), tmp_path / "m.onnx")
    out = tmp_path / "m.plan"
    assert cli(capsys, path, "-o", out, "-q")[0] == 0
    other = save(_model(scale=1.001), tmp_path / "other.onnx")  # 0.1% off: fails the relative gate
    rc, stdout, _ = cli(capsys, "check", out, "--against", other)
    assert rc == 1 and "FAIL (relative)" in stdout and "noise floor" in stdout
    rc, stdout, _ = cli(capsys, "check", out, "--against", other, "--atol", "1", "--json")
    report = json.loads(stdout)
    assert rc == 0 and report["atol"] == 1.0
    assert report["outputs"][0]["decided_by"] == "floor" and report["outputs"][0]["floor"] == 1.0
    rc, _, err = cli(capsys, "check", out, "--against", other, "--atol", "-1")
    assert rc == 2 and "--atol must not be negative" in err


def _noisy(scale=1.0, noise=0.01):
    """Conv, then y = c + noise * RandomNormalLike(c) (SNAC's noise blocks): every run draws anew."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("RandomNormalLike", ["c"], ["n"]),
        helper.make_node("Mul", ["n", "k"], ["m"]),
        helper.make_node("Add", ["c", "m"], ["y"]),
    ]
    w = weight("w", (8, 3, 3, 3))
    w = onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(w) * np.float32(scale), "w")
    k = onnx.numpy_helper.from_array(np.array(noise, np.float32), "k")
    return make_model(nodes, [vi("x", [1, 3, 16, 16])], [vi("y", [1, 8, 16, 16])], [w, k])


def test_a_random_originals_draws_are_its_noise(tmp_path, capsys):
    """The original differs from itself on every run: that difference is noise (a floor of 0, as
    before, failed every such plan), and a plan off by more than it still fails."""
    path = save(_noisy(), tmp_path / "m.onnx")
    out = tmp_path / "m.plan"
    assert cli(capsys, path, "-o", out, "-q")[0] == 0
    rc, stdout, _ = cli(capsys, "check", out, "--against", path, "--json")
    (row,) = json.loads(stdout)["outputs"]
    assert rc == 0 and row["decided_by"] == "floor" and row["reference_noise"] > 0.01, row
    rc, stdout, _ = cli(capsys, "check", out, "--against", path)
    assert "draws random numbers (RandomNormalLike)" in stdout
    other = save(_noisy(scale=1.5), tmp_path / "other.onnx")  # far beyond 0.01 of noise
    rc, stdout, _ = cli(capsys, "check", out, "--against", other)
    assert rc == 1 and "FAIL" in stdout
