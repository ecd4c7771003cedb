"""Every malformed plan / bad call is a PlanError that says what and where."""

import numpy as np
import pytest
from rt_helpers import affine_model, rand, write_plan

from runtime import Plan, PlanError


def base(tmp_path, steps=None, **extra):
    affine_model(tmp_path / "m.onnx", [1, 3], 1.0, 0.0)
    steps = steps or [{"name": "s0", "kind": "onnx", "model": "m.onnx", "inputs": ["x"], "outputs": ["y"]}]
    return write_plan(tmp_path, [("x", [1, 3])], [("y", [1, 3])], steps, **extra)


def test_missing_plan_json(tmp_path):
    with pytest.raises(PlanError, match="plan.json not found"):
        Plan.load(tmp_path)


@pytest.mark.parametrize(
    "field,value,msg",
    [
        ("format", "something-else", "format is 'something-else', expected 'hailo-rewriter-plan'"),
        ("version", 1, "version 1 is not supported .*written by an older rewriter"),
        ("version", 4, "version 4 is not supported"),
    ],
)
def test_bad_format_version(tmp_path, field, value, msg):
    base(tmp_path, **{field: value})
    with pytest.raises(PlanError, match=msg):
        Plan.load(tmp_path)


def test_not_json(tmp_path):
    (tmp_path / "plan.json").write_text("{nope")
    with pytest.raises(PlanError, match="not valid JSON"):
        Plan.load(tmp_path)


def test_missing_model_file(tmp_path):
    base(tmp_path, [{"name": "s0", "kind": "onnx", "model": "segments/gone.onnx", "inputs": ["x"], "outputs": ["y"]}])
    with pytest.raises(PlanError, match="step 's0': model file 'segments/gone.onnx' is not listed in 'files'"):
        Plan.load(tmp_path)


def test_undefined_tensor(tmp_path):
    base(
        tmp_path,
        [
            {"name": "s0", "kind": "onnx", "model": "m.onnx", "inputs": ["x"], "outputs": ["t"]},
            {"name": "s1", "kind": "onnx", "model": "m.onnx", "inputs": ["ghost"], "outputs": ["y"]},
        ],
    )
    with pytest.raises(PlanError, match="step 's1' consumes tensor 'ghost'.*neither a plan input nor produced"):
        Plan.load(tmp_path)


def test_use_before_definition(tmp_path):
    base(
        tmp_path,
        [
            {"name": "s0", "kind": "onnx", "model": "m.onnx", "inputs": ["t"], "outputs": ["y"]},
            {"name": "s1", "kind": "onnx", "model": "m.onnx", "inputs": ["x"], "outputs": ["t"]},
        ],
    )
    with pytest.raises(PlanError, match="step 's0' consumes tensor 't'"):
        Plan.load(tmp_path)


@pytest.mark.parametrize(
    "steps,msg",
    [
        (
            [{"name": "s0", "kind": "onnx", "model": "m.onnx", "inputs": ["x"], "outputs": ["x"]}],
            "step 's0' produces tensor 'x', already produced by plan input",
        ),
        (
            [{"name": "s0", "kind": "onnx", "model": "m.onnx", "inputs": ["x"], "outputs": ["t"]}],
            "plan output 'y' is not produced by any step",
        ),
        ([{"name": "s0", "kind": "conv", "inputs": ["x"], "outputs": ["y"]}], "step 's0': unknown kind 'conv'"),
        (
            [{"name": "s0", "device": "gpu", "kind": "onnx", "model": "m.onnx", "inputs": ["x"], "outputs": ["y"]}],
            "step 's0': unknown device 'gpu'",
        ),
        ([{"name": "s0", "kind": "onnx", "inputs": ["x"], "outputs": ["y"]}], "step 's0': onnx step needs 'model'"),
        (
            [{"name": "s0", "kind": "slice", "inputs": ["x"], "outputs": ["y"], "axis": 1, "start": 2, "end": 2}],
            "step 's0': slice end \\(2\\) must be greater than start",
        ),
        (
            [{"name": "s0", "kind": "slice", "inputs": ["x"], "outputs": ["y"], "start": 0, "end": 2}],
            "step 's0': 'axis' must be an integer",
        ),
        (
            [
                {
                    "name": "s0",
                    "kind": "slice",
                    "inputs": ["x"],
                    "outputs": ["y"],
                    "axis": 1,
                    "start": 0,
                    "end": 2,
                    "pad": [-1, 0],
                }
            ],
            "step 's0': 'pad' must be",
        ),
        (
            [{"name": "s0", "kind": "concat", "inputs": ["x"], "outputs": ["y", "z"], "axis": 0}],
            "step 's0': concat step must have exactly one output",
        ),
        (
            [{"name": "s0", "device": "hailo", "kind": "sum", "inputs": ["x"], "outputs": ["y"]}],
            "step 's0': stitch step 'sum' must run on the host",
        ),
        (
            [
                {"name": "s0", "kind": "sum", "inputs": ["x"], "outputs": ["t"]},
                {"name": "s0", "kind": "sum", "inputs": ["t"], "outputs": ["y"]},
            ],
            "step name 's0' used twice",
        ),
    ],
)
def test_structural_errors(tmp_path, steps, msg):
    base(tmp_path, steps)
    with pytest.raises(PlanError, match=msg):
        Plan.load(tmp_path)


def test_arity_mismatch_with_model(tmp_path):
    base(tmp_path, [{"name": "s0", "kind": "onnx", "model": "m.onnx", "inputs": ["x", "x"], "outputs": ["y"]}])
    with pytest.raises(PlanError, match="step 's0': binds 2 inputs"):
        Plan.load(tmp_path)


def test_unknown_backend(tmp_path):
    base(tmp_path)
    with pytest.raises(PlanError, match="unknown backend 'cuda'"):
        Plan.load(tmp_path, backend="cuda")


def test_run_input_checks(tmp_path):
    plan = Plan.load(base(tmp_path))
    x = rand(1, 3)
    with pytest.raises(PlanError, match=r"input 'x' has shape \[1, 4\], the plan expects \[1, 3\]"):
        plan.run({"x": rand(1, 4)})
    with pytest.raises(PlanError, match=r"unknown input\(s\) \['z'\]; the plan's inputs are \['x'\]"):
        plan.run({"x": x, "z": x})
    with pytest.raises(PlanError, match="missing input 'x'"):
        plan.run({})
    with pytest.raises(PlanError, match="input 'x' has dtype float64, the plan expects float32"):
        plan.run({"x": x.astype(np.float64)})
    np.testing.assert_allclose(plan.run({"x": x})["y"], x)
