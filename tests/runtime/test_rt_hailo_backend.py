"""The hailo backend driven against the recording stand-in for hailo_platform (no hardware)."""

import sys

import hailo_platform_standin as hp
import numpy as np
import pytest
from onnx import helper
from plan_steps import onnx_step
from rt_helpers import conv_model, ort_run, rand, refresh, save_model, write_plan

from runtime import Plan, PlanError
from runtime.backends.hailo_backend import MISSING_MSG


@pytest.fixture
def standin(monkeypatch):
    hp.reset()
    monkeypatch.setitem(sys.modules, "hailo_platform", hp)
    yield hp
    hp.reset()


@pytest.fixture
def no_hailo(monkeypatch):
    monkeypatch.setitem(sys.modules, "hailo_platform", None)  # import raises ImportError


def dense_model(path, cin, h, w, n):
    wt = rand(n, cin * h * w, seed=9) * 0.1
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "W"], ["y"], transB=1)]
    return save_model(path, nodes, [("x", [1, cin, h, w])], [("y", [1, n])], [("W", wt)])


def build(tmp_path, with_hefs=True):
    """host conv -> hailo_a (C=1 out) -> 2 tiles of shared hailo_b -> concat -> hailo_c (dense) -> y."""
    seg = tmp_path / "segments"
    conv_model(seg / "host_0.onnx", 3, 4, 8, 8, seed=1)
    conv_model(seg / "a.onnx", 4, 1, 8, 8, seed=2)
    conv_model(seg / "b.onnx", 1, 2, 8, 4, seed=3, relu=False)
    dense_model(seg / "c.onnx", 2, 8, 8, 5)
    if with_hefs:
        for m in "abc":
            hp.write_hef(seg / f"{m}.hef", seg / f"{m}.onnx", net=m)
    hailo = lambda name, m, i, o: onnx_step(name, i, o, model=m, hef=f"segments/{m}.hef")  # noqa: E731
    steps = [
        onnx_step("host_0", ["x"], ["t0"], device="host"),
        hailo("hailo_a", "a", ["t0"], ["t1"]),
        {"name": "cut0", "kind": "slice", "inputs": ["t1"], "outputs": ["i0"], "axis": 3, "start": 0, "end": 4},
        {"name": "cut1", "kind": "slice", "inputs": ["t1"], "outputs": ["i1"], "axis": 3, "start": 4, "end": 8},
        hailo("tile0", "b", ["i0"], ["u0"]),
        hailo("tile1", "b", ["i1"], ["u1"]),
        {"name": "join", "kind": "concat", "inputs": ["u0", "u1"], "outputs": ["t2"], "axis": 3},
        hailo("hailo_c", "c", ["t2"], ["y"]),
    ]
    return write_plan(tmp_path, [("x", [1, 3, 8, 8])], [("y", [1, 5]), ("t1", [1, 1, 8, 8])], steps)


def test_outputs_match_onnxruntime(tmp_path, standin):
    out = build(tmp_path)
    ref_plan = Plan.load(out, backend="onnxruntime")
    plan = Plan.load(out, backend="hailo")
    assert plan.backend_name == "hailo"
    for seed in range(3):
        x = rand(1, 3, 8, 8, seed=seed)
        got, ref = plan.run({"x": x}, profile=True), ref_plan.run({"x": x})
        assert list(got) == ["y", "t1"]
        for k in ref:
            np.testing.assert_allclose(got[k], ref[k], rtol=1e-5, atol=1e-6)
    prof = plan.last_profile
    assert prof.backend == "hailo"
    assert all(s.backend_seconds > 0 for s in prof.steps if s.kind == "onnx")


def test_api_usage_recorded(tmp_path, standin):
    plan = Plan.load(build(tmp_path), backend="hailo", hailo_timeout_ms=1234)
    vdevs = hp.calls("VDevice")
    assert len(vdevs) == 1, "one VDevice for all HEFs"
    assert vdevs[0][2] == hp.HailoSchedulingAlgorithm.ROUND_ROBIN
    models = hp.calls("create_infer_model")
    assert sorted(c[2].rsplit("/", 1)[1] for c in models) == ["a.hef", "b.hef", "c.hef"]  # b once for 2 tiles
    assert all(c[1] is vdevs[0][1] for c in models)
    assert len(hp.calls("configure")) == 3
    assert len(hp.calls("create_bindings")) == 4  # one per hailo step
    # FLOAT32 on every input and output stream of every model, before configure.
    fmt = {(c[1].hef_path.name, c[2]): c[3] for c in hp.calls("set_format_type")}
    assert fmt == {(f"{m}.hef", f"{m}/{d}_layer1"): hp.FormatType.FLOAT32 for m in "abc" for d in ("input", "output")}
    for i, c in enumerate(hp.CALLS):
        if c[0] == "configure":
            assert all(s[0] != "set_format_type" or s[1] is not c[1] for s in hp.CALLS[i:])
    hp.reset()
    plan.run({"x": rand(1, 3, 8, 8)})
    runs = hp.calls("run")
    assert len(runs) == 4 and all(c[2] == 1 and c[3] == 1234 for c in runs)
    bufs = hp.calls("set_buffer")
    assert bufs and all(c[5] == np.float32 and c[6] for c in bufs)  # float32, C-contiguous
    shapes = {(c[2], c[3]): c[4] for c in bufs}
    assert {k[1]: v for k, v in shapes.items() if k[0] == "input"} == {
        "a/input_layer1": (8, 8, 4),
        "b/input_layer1": (8, 4, 1),
        "c/input_layer1": (8, 8, 2),
    }
    assert not hp.calls("activate")
    assert not hp.calls("create_infer_model") and not hp.calls("configure")  # nothing re-opened per run
    plan.close()
    assert len(hp.calls("shutdown")) == 3 and len(hp.calls("release")) == 1


def test_output_buffers_set_once_and_results_detached(tmp_path, standin):
    plan = Plan.load(build(tmp_path), backend="hailo")
    outs = [c for c in hp.calls("set_buffer") if c[2] == "output"]
    assert [c[4] for c in outs] == [(8, 8, 1), (8, 4, 2), (8, 4, 2), (5,)]
    hp.reset()
    x1, x2 = rand(1, 3, 8, 8, seed=1), rand(1, 3, 8, 8, seed=2)
    o1 = plan.run({"x": x1})
    snap = {k: v.copy() for k, v in o1.items()}
    plan.run({"x": x2})
    assert not [c for c in hp.calls("set_buffer") if c[2] == "output"]
    for k in o1:  # t1 comes from a C == 1 output (a view of the binding buffer): must have been copied
        np.testing.assert_array_equal(o1[k], snap[k])


def test_auto_picks_hailo_when_available(tmp_path, standin):
    plan = Plan.load(build(tmp_path))
    assert plan.backend_name == "hailo"
    assert "hailo_platform 4.20.0-standin" in plan.backend_reason and "all 4 hailo step HEFs" in plan.backend_reason


def test_auto_falls_back_when_hailo_platform_missing(tmp_path, no_hailo):
    plan = Plan.load(build(tmp_path, with_hefs=False))
    assert plan.backend_name == "onnxruntime"
    assert "hailo_platform not importable" in plan.backend_reason
    assert plan.run({"x": rand(1, 3, 8, 8)})["y"].shape == (1, 5)


def test_auto_falls_back_when_hef_missing(tmp_path, standin):
    out = build(tmp_path)
    (out / "segments/b.hef").unlink()
    plan = Plan.load(out)
    assert plan.backend_name == "onnxruntime"
    assert plan.backend_reason == (
        "HEF missing or not recorded in plan.json for step(s) tile0, tile1; hailo steps run on onnxruntime"
    )
    assert not hp.calls("VDevice")


def test_explicit_hailo_errors(tmp_path, no_hailo, monkeypatch):
    out = build(tmp_path)
    with pytest.raises(PlanError) as e:
        Plan.load(out, backend="hailo")
    assert str(e.value) == MISSING_MSG
    monkeypatch.setitem(sys.modules, "hailo_platform", hp)
    (out / "segments/c.hef").unlink()
    with pytest.raises(PlanError, match="step 'hailo_c': backend 'hailo' needs its HEF"):
        Plan.load(out, backend="hailo")


def test_hef_io_count_mismatch(tmp_path, standin):
    out = build(tmp_path)
    hp.write_hef(out / "segments/a.hef", out / "segments/c.onnx")  # wrong HEF for step a: sizes differ
    refresh(out)
    with pytest.raises(PlanError, match="step 'hailo_a': ONNX .* differ in size"):
        Plan.load(out, backend="hailo")


def test_no_copy_when_layout_already_matches(tmp_path, standin):
    # host conv -> t [1,1,8,8] (C == 1): NCHW and NHWC hold the same bytes, so the buffer bound
    # to the HEF input must be the host tensor's memory, not a copy. Same for a [1,C,1,1] input.
    seg = tmp_path / "segments"
    conv_model(seg / "host.onnx", 3, 1, 8, 8, seed=1)
    conv_model(seg / "b.onnx", 1, 2, 8, 8, seed=2)
    save_model(
        seg / "pool.onnx",
        [helper.make_node("GlobalAveragePool", ["x"], ["p"])],
        [("x", [1, 2, 8, 8])],
        [("p", [1, 2, 1, 1])],
    )
    dense_model(seg / "head.onnx", 2, 1, 1, 3)
    for m in ("b", "head"):
        hp.write_hef(seg / f"{m}.hef", seg / f"{m}.onnx", net=m)
    write_plan(
        tmp_path,
        [("x", [1, 3, 8, 8])],
        [("y", [1, 3])],
        [
            {"name": "host", "kind": "onnx", "model": "segments/host.onnx", "inputs": ["x"], "outputs": ["t"]},
            {
                "name": "b",
                "device": "hailo",
                "kind": "onnx",
                "model": "segments/b.onnx",
                "hef": "segments/b.hef",
                "inputs": ["t"],
                "outputs": ["u"],
            },
            {"name": "pool", "kind": "onnx", "model": "segments/pool.onnx", "inputs": ["u"], "outputs": ["p"]},
            {
                "name": "head",
                "device": "hailo",
                "kind": "onnx",
                "model": "segments/head.onnx",
                "hef": "segments/head.hef",
                "inputs": ["p"],
                "outputs": ["y"],
            },
        ],
    )
    plan = Plan.load(tmp_path, backend="hailo")
    hp.reset()
    x = rand(1, 3, 8, 8)
    out = plan.run({"x": x}, keep=["t", "p"])
    bound = {c[3]: c[7] for c in hp.calls("set_buffer") if c[2] == "input"}
    assert bound["b/input_layer1"].shape == (8, 8, 1) and np.shares_memory(bound["b/input_layer1"], out["t"])
    assert bound["head/input_layer1"].shape == (1, 1, 2) and np.shares_memory(bound["head/input_layer1"], out["p"])
    ref = Plan.load(tmp_path, backend="onnxruntime").run({"x": x})
    np.testing.assert_allclose(out["y"], ref["y"], rtol=1e-5, atol=1e-6)


def test_channels_last_window_goes_to_the_device_without_a_copy(tmp_path, standin):
    """A [1, T, C] sensor window feeding a (1, k)-conv segment: the rewriter marks the host
    Transpose+Unsqueeze as a `view` (reshape [1, 1, T, C], transpose to NCHW), the runtime runs it
    as a numpy view, and the hailo backend turns it back into the (1, T, C) NHWC buffer without a
    copy: the buffer bound to the HEF is the caller's own array."""
    seg = tmp_path / "segments"
    t, c = 100, 9
    save_model(
        seg / "host_0.onnx",
        [
            helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
            helper.make_node("Constant", [], ["ax"], value=helper.make_tensor("ax", 7, [1], [2])),
            helper.make_node("Unsqueeze", ["xt", "ax"], ["x4"]),
        ],
        [("x", [1, t, c])],
        [("x4", [1, c, 1, t])],
    )
    save_model(
        seg / "conv.onnx",
        [helper.make_node("Conv", ["x4", "W"], ["y"], kernel_shape=[1, 3], pads=[0, 1, 0, 1])],
        [("x4", [1, c, 1, t])],
        [("y", [1, 4, 1, t])],
        [("W", rand(4, c, 1, 3, seed=4))],
    )
    hp.write_hef(seg / "conv.hef", seg / "conv.onnx", net="conv")
    write_plan(
        tmp_path,
        [("x", [1, t, c])],
        [("y", [1, 4, 1, t])],
        [
            {
                "name": "host_0",
                "device": "host",
                "kind": "onnx",
                "model": "segments/host_0.onnx",
                "inputs": ["x"],
                "outputs": ["x4"],
                "view": {"reshape": [1, 1, t, c], "transpose": [0, 3, 1, 2]},
            },
            {
                "name": "conv",
                "device": "hailo",
                "kind": "onnx",
                "model": "segments/conv.onnx",
                "hef": "segments/conv.hef",
                "inputs": ["x4"],
                "outputs": ["y"],
            },
        ],
    )
    plan = Plan.load(tmp_path, backend="hailo")
    hp.reset()
    x = rand(1, t, c)
    out = plan.run({"x": x})
    (bound,) = [call[7] for call in hp.calls("set_buffer") if call[2] == "input"]
    assert bound.shape == (1, t, c) and np.shares_memory(bound, x)
    ref = Plan.load(tmp_path, backend="onnxruntime").run({"x": x})
    np.testing.assert_allclose(out["y"], ref["y"], rtol=1e-5, atol=1e-6)
    # the view step agrees with the ONNX segment it stands for
    host = ort_run(seg / "host_0.onnx", x)[0]
    np.testing.assert_array_equal(Plan.load(tmp_path, backend="onnxruntime").run({"x": x}, keep=["x4"])["x4"], host)
