"""rewriter/views.py: host steps that only re-lay out their input are marked as numpy views."""

import numpy as np
import onnx
from fd_util import cli, make_model, read_plan, save, vi, weight
from onnx import helper

from runtime import Plan


def _conv1d_model(act_on_host=False):
    """[1, T, C] channels-last input -> Transpose -> Conv1d -> (Floor) -> mean head."""
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
        helper.make_node("Conv", ["xt", "w"], ["c"], kernel_shape=[3], pads=[1, 1]),
        helper.make_node("Floor" if act_on_host else "Relu", ["c"], ["y"]),
    ]
    # 64 x 200 x 32 x 3 = 1.2M MACs: above hailo8's roundtrip_macs, so the conv stays on hailo
    return make_model(nodes, [vi("x", [1, 200, 32])], [vi("y", [1, 64, 200])], [weight("w", [64, 32, 3])])


def _plan(tmp_path, model, capsys):
    path = save(model, tmp_path / "m.onnx")
    out = tmp_path / "m.plan"
    rc, _, err = cli(capsys, path, "-o", out, "-q")
    assert rc == 0, err
    return out, read_plan(out)


def test_channels_last_input_layout_is_a_view(tmp_path, capsys):
    out, doc = _plan(tmp_path, _conv1d_model(), capsys)
    first = doc["steps"][0]
    assert first["device"] == "host" and first["view"] == {"reshape": [1, 1, 200, 32], "transpose": [0, 3, 1, 2]}
    last = doc["steps"][-1]
    assert last["device"] == "host" and last["view"] == {"reshape": [1, 64, 200]}
    x = np.random.default_rng(0).standard_normal((1, 200, 32)).astype(np.float32)
    plan = Plan.load(out, backend="onnxruntime")
    got = plan.run({"x": x}, keep=[first["outputs"][0]])
    segment = onnx.load(str(out / first["model"]))
    import onnxruntime as ort

    (want,) = ort.InferenceSession(segment.SerializeToString()).run(None, {segment.graph.input[0].name: x})
    np.testing.assert_array_equal(got[first["outputs"][0]], want)
    ref = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"x": x})[0]
    np.testing.assert_allclose(got["y"], ref, rtol=1e-5, atol=1e-6)


def test_host_step_with_compute_is_not_a_view(tmp_path, capsys):
    _, doc = _plan(tmp_path, _conv1d_model(act_on_host=True), capsys)
    floor_steps = [
        s
        for s in doc["steps"]
        if s["device"] == "host" and "Floor" in [r["op"] for r in doc["placement"] if r["step"] == s["name"]]
    ]
    assert floor_steps and all("view" not in s for s in floor_steps)
