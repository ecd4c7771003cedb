"""Helpers for `rewrite run` / `rewrite check`: input files, profile table, parity rows."""

import numpy as np
import pytest
from rt_helpers import affine_model, rand, write_plan

from runtime import Plan
from runtime.cli_support import format_profile, load_inputs, parity
from runtime.parity import ParityRow, cosine, max_abs, max_rel


@pytest.fixture
def plan(tmp_path):
    affine_model(tmp_path / "m.onnx", [1, 3], 2.0, 0.0)
    write_plan(
        tmp_path,
        [("x", [1, 3]), ("z", [1, 3])],
        [("y", [1, 3]), ("w", [1, 3])],
        [
            {"name": "s0", "device": "hailo", "kind": "onnx", "model": "m.onnx", "inputs": ["x"], "outputs": ["y"]},
            {"name": "s1", "kind": "sum", "inputs": ["y", "z"], "outputs": ["w"]},
        ],
    )
    return Plan.load(tmp_path)


def test_load_inputs(tmp_path, plan):
    x, z = rand(1, 3, seed=1), rand(1, 3, seed=2).astype(np.float64)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "z.npy", z)
    got = load_inputs([f"x={tmp_path}/x.npy", f"z={tmp_path}/z.npy"], plan)
    np.testing.assert_array_equal(got["x"], x)
    assert got["z"].dtype == np.float32  # same-kind cast
    np.save(tmp_path / "bad.npy", rand(1, 4))
    np.save(tmp_path / "int.npy", np.zeros((1, 3), np.complex64))
    cases = [
        ([f"{tmp_path}/x.npy"], "bad input .*expected NAME=path.npy"),
        (["=x.npy"], "bad input"),
        ([f"q={tmp_path}/x.npy"], "unknown input 'q'"),
        ([f"x={tmp_path}/nope.npy"], "input 'x': file .*nope.npy not found"),
        ([f"x={tmp_path}/bad.npy", f"z={tmp_path}/z.npy"], r"input 'x': .*shape \[1, 4\], the plan expects \[1, 3\]"),
        ([f"x={tmp_path}/int.npy"], "dtype complex64"),
        ([f"x={tmp_path}/x.npy"], "missing input.*z"),
        ([f"x={tmp_path}/x.npy", f"x={tmp_path}/x.npy"], "given twice"),
    ]
    for pairs, msg in cases:
        with pytest.raises(ValueError, match=msg):
            load_inputs(pairs, plan)


def test_single_input_bare_path(tmp_path):
    affine_model(tmp_path / "m.onnx", [1, 3], 1.0, 0.0)
    write_plan(
        tmp_path,
        [("x", [1, 3])],
        [("y", [1, 3])],
        [{"name": "s0", "kind": "onnx", "model": "m.onnx", "inputs": ["x"], "outputs": ["y"]}],
    )
    np.save(tmp_path / "x.npy", rand(1, 3))
    assert list(load_inputs([str(tmp_path / "x.npy")], Plan.load(tmp_path))) == ["x"]


def test_format_profile(plan):
    plan.run({"x": rand(1, 3), "z": rand(1, 3)}, profile=True)
    text = format_profile(plan.last_profile)
    lines = text.splitlines()
    assert lines[0].split() == ["step", "device", "kind", "ms", "share"]
    assert lines[2].split()[:3] == ["s0", "hailo", "onnx"] and lines[3].split()[:3] == ["s1", "host", "sum"]
    assert any(l.startswith("runtime overhead:") for l in lines)
    assert text.count("backend:") == 1 and "onnxruntime" in text
    shares = [float(l.split()[-1].rstrip("%")) for l in lines[2:] if l.endswith("%") and not l.startswith("total")]
    assert sum(shares) == pytest.approx(100.0, abs=0.5)  # step rows + overhead partition the run
    assert str(plan.last_profile) == text


def test_parity():
    a = {"y": np.array([1.0, 2.0, 3.0]), "w": np.zeros(3)}
    b = {"y": np.array([1.0, 2.0, 3.5]), "w": np.zeros(3)}
    rows = parity(a, b)
    assert [r.output for r in rows] == ["y", "w"]
    y = rows[0]
    assert isinstance(y, ParityRow)
    assert y.max_abs == pytest.approx(0.5) and y.max_rel == pytest.approx(0.5 / 3.5)
    assert 0.99 < y.cosine < 1.0
    assert rows[1] == ("w", 1.0, 0.0, 0.0)
    assert cosine([1, 0], [0, 1]) == pytest.approx(0.0) and cosine([1, 2], [-1, -2]) == pytest.approx(-1.0)
    assert max_abs([1, 2], [1, 2]) == 0 and max_rel([1.0], [0.0]) == float("inf")
    with pytest.raises(ValueError, match="missing from the reference"):
        parity({"q": np.zeros(1)}, b)
    with pytest.raises(ValueError, match="shape"):
        parity({"y": np.zeros(2)}, b)
