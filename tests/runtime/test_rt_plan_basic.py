"""Plan.load / Plan.run on hand-built plans executed with onnxruntime."""

import numpy as np
import pytest
from rt_helpers import affine_model, conv_model, ort_run, rand, write_plan

from runtime import Plan, PlanError
from runtime.schema import last_uses, load_spec


def test_single_host_step(tmp_path):
    conv_model(tmp_path / "segments/host_0.onnx", 3, 4, 8, 8)
    write_plan(
        tmp_path,
        [("x", [1, 3, 8, 8])],
        [("y", [1, 4, 8, 8])],
        [
            {
                "name": "host_0",
                "device": "host",
                "kind": "onnx",
                "model": "segments/host_0.onnx",
                "inputs": ["x"],
                "outputs": ["y"],
            }
        ],
    )
    plan = Plan.load(tmp_path)
    x = rand(1, 3, 8, 8)
    out = plan.run({"x": x})
    assert list(out) == ["y"]
    np.testing.assert_array_equal(out["y"], ort_run(tmp_path / "segments/host_0.onnx", x)[0])
    assert plan.backend_name == "onnxruntime" and plan.backend_reason == "plan has no hailo steps"


def two_step_plan(tmp_path):
    conv_model(tmp_path / "s0.onnx", 2, 3, 6, 6, seed=1)
    conv_model(tmp_path / "s1.onnx", 3, 5, 6, 6, seed=2, relu=False, names=("p", "q"))
    write_plan(
        tmp_path,
        [("x", [1, 2, 6, 6])],
        [("y", [1, 5, 6, 6])],
        [
            {"name": "a", "kind": "onnx", "model": "s0.onnx", "inputs": ["x"], "outputs": ["t0"]},
            {"name": "b", "device": "hailo", "kind": "onnx", "model": "s1.onnx", "inputs": ["t0"], "outputs": ["y"]},
        ],
    )
    return Plan.load(tmp_path, backend="onnxruntime")


def test_two_steps_chained_and_keep(tmp_path):
    plan = two_step_plan(tmp_path)
    x = rand(1, 2, 6, 6)
    t0 = ort_run(tmp_path / "s0.onnx", x)[0]
    ref = ort_run(tmp_path / "s1.onnx", t0)[0]
    out = plan.run({"x": x})
    assert list(out) == ["y"]
    np.testing.assert_array_equal(out["y"], ref)
    kept = plan.run({"x": x}, keep=["t0", "x"])
    assert list(kept) == ["y", "t0", "x"]
    np.testing.assert_array_equal(kept["t0"], t0)
    np.testing.assert_array_equal(kept["y"], ref)
    with pytest.raises(PlanError, match="unknown tensor"):
        plan.run({"x": x}, keep=["nope"])


def test_run_batch(tmp_path):
    plan = two_step_plan(tmp_path)
    xs = [rand(1, 2, 6, 6, seed=s) for s in range(3)]
    outs = plan.run_batch([{"x": x} for x in xs])
    assert len(outs) == 3 and len({id(o["y"]) for o in outs}) == 3  # one result per input, not aliased
    for x, o in zip(xs, outs):  # oracle: the two segments run by onnxruntime directly
        (t0,) = ort_run(tmp_path / "s0.onnx", x)
        np.testing.assert_allclose(o["y"], ort_run(tmp_path / "s1.onnx", t0)[0], rtol=1e-6, atol=1e-6)


def test_shared_model_positional_bindings(tmp_path):
    # One model file, two steps bound to different tensors: the session must be shared and
    # the bindings positional (the model's own graph names a/b never appear in the plan).
    affine_model(tmp_path / "tile.onnx", [1, 2, 4], 2.0, 1.0)
    write_plan(
        tmp_path,
        [("u", [1, 2, 4]), ("v", [1, 2, 4])],
        [("ou", [1, 2, 4]), ("ov", [1, 2, 4])],
        [
            {"name": "t0", "device": "hailo", "kind": "onnx", "model": "tile.onnx", "inputs": ["u"], "outputs": ["ou"]},
            {"name": "t1", "device": "hailo", "kind": "onnx", "model": "tile.onnx", "inputs": ["v"], "outputs": ["ov"]},
        ],
    )
    plan = Plan.load(tmp_path, backend="onnxruntime")
    assert len(plan._host.sessions) == 1
    assert plan._ops[0].runner.session is plan._ops[1].runner.session
    u, v = rand(1, 2, 4, seed=1), rand(1, 2, 4, seed=2)
    out = plan.run({"v": v, "u": u})
    assert list(out) == ["ou", "ov"]
    np.testing.assert_allclose(out["ou"], u * 2 + 1, rtol=1e-6)
    np.testing.assert_allclose(out["ov"], v * 2 + 1, rtol=1e-6)


def test_last_use_and_freeing(tmp_path):
    affine_model(tmp_path / "m.onnx", [1, 3], 1.0, 1.0)
    step = lambda n, i, o: {"name": n, "kind": "onnx", "model": "m.onnx", "inputs": [i], "outputs": [o]}
    write_plan(
        tmp_path,
        [("x", [1, 3]), ("unused", [1, 3])],
        [("d", [1, 3])],
        [
            step("s0", "x", "a"),
            step("s1", "a", "b"),
            step("s2", "a", "dead"),
            step("s3", "b", "c"),
            {"name": "s4", "kind": "sum", "inputs": ["c", "b"], "outputs": ["d"]},
        ],
    )
    spec = load_spec(tmp_path)
    free = last_uses(spec)
    assert [sorted(f) for f in free] == [["x"], [], ["a", "dead"], [], ["b", "c"]]
    plan = Plan.load(tmp_path)
    # Spy on the environment size: nothing but live tensors is held while running.
    seen = []
    for op in plan._ops:
        orig = op.runner.run
        op.runner.run = lambda xs, orig=orig: (seen.append(len(xs)), orig(xs))[1]
    plan._compile()
    x = rand(1, 3)
    o1 = plan.run({"x": x, "unused": x})
    o2 = plan.run({"x": x, "unused": x})
    np.testing.assert_allclose(o1["d"], (x + 3) + (x + 2), rtol=1e-6)
    np.testing.assert_array_equal(o1["d"], o2["d"])
    assert seen == [1, 1, 1, 1, 2] * 2


def test_env_holds_only_live_tensors(tmp_path, monkeypatch):
    affine_model(tmp_path / "m.onnx", [1, 3], 1.0, 0.0)
    write_plan(
        tmp_path,
        [("x", [1, 3])],
        [("c", [1, 3])],
        [
            {"name": f"s{i}", "kind": "onnx", "model": "m.onnx", "inputs": [a], "outputs": [b]}
            for i, (a, b) in enumerate([("x", "a"), ("a", "b"), ("b", "c")])
        ],
    )
    plan = Plan.load(tmp_path)
    live = []
    orig_check = plan._check_inputs

    def check(inputs):
        env = orig_check(inputs)
        live.append(env)  # the same dict object the run loop mutates
        return env

    monkeypatch.setattr(plan, "_check_inputs", check)
    sizes = []
    for op in plan._ops:
        orig = op.runner.run
        op.runner.run = lambda xs, orig=orig: (sizes.append(sorted(live[-1])), orig(xs))[1]
    plan._compile()
    plan.run({"x": rand(1, 3)})
    assert sizes == [["x"], ["a"], ["b"]]
    assert sorted(live[-1]) == ["c"]


def test_intra_op_threads_option(tmp_path):
    plan = two_step_plan(tmp_path)
    p2 = Plan.load(tmp_path, backend="onnxruntime", intra_op_num_threads=1)
    assert p2._host.options.intra_op_num_threads == 1
    x = rand(1, 2, 6, 6)
    np.testing.assert_allclose(p2.run({"x": x})["y"], plan.run({"x": x})["y"], rtol=1e-5, atol=1e-6)


def test_profile(tmp_path):
    plan = two_step_plan(tmp_path)
    assert plan.last_profile is None
    plan.run({"x": rand(1, 2, 6, 6)}, profile=True)
    prof = plan.last_profile
    assert [(s.name, s.device, s.kind) for s in prof.steps] == [("a", "host", "onnx"), ("b", "hailo", "onnx")]
    assert all(s.seconds >= s.backend_seconds > 0 for s in prof.steps)
    assert prof.stitch_seconds == 0
    assert prof.total_seconds >= sum(s.seconds for s in prof.steps)
    assert prof.overhead_seconds == pytest.approx(prof.total_seconds - sum(s.seconds for s in prof.steps))
    assert prof.overhead_seconds > 0
