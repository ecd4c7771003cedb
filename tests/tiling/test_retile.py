"""retile_segment (`rewrite compile --retry-shrink`): the real re-tiler on written plans. The new
plan loads and matches; the new device steps get calibration data (re-propagated for a step that
was untiled, sliced from the step's own for a tiled one); compile_plan with the DFC stand-in
re-tiles what its allocator refuses and compiles the pieces."""

from __future__ import annotations

import json

import numpy as np
import onnx
from toolchain.hailo_sdk_standin import StandinSDK

from rewriter.pipeline import RewriteOptions, rewrite_to_plan
from rewriter.plan.calibration import capture
from rewriter.target import TilingLimits, load_target
from rewriter.tiling import retile_segment
from rewriter.toolchain.dfc_driver import compile_plan
from runtime import Plan
from runtime.backends.ort_backend import read_signature
from runtime.calib import load_calib_file

from .tiling_helpers import Chain, assert_plan_matches, check_tile_limits

WINDOWS = 6


def _plan(tmp_path, model, limits=None, name="plan"):
    src, out = tmp_path / f"{name}.onnx", tmp_path / name
    onnx.save(model, str(src))
    target = load_target("hailo8")
    if limits is not None:
        target = target.with_tiling(limits.channels, limits.width)
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    calib = {None: np.random.default_rng(1).standard_normal((WINDOWS, *shape[1:])).astype(np.float32)}
    rewrite_to_plan(src, out, target, RewriteOptions(), calib=calib)
    return out, calib[None]


def _calib_of(out, name):
    with Plan.load(out, backend="onnxruntime") as plan:
        step = next(s for s in plan.steps if s.name == name)
        sig = read_signature(step.model_path, plan.spec.read_file)[0]
        return step, load_calib_file(step.calib_path, sig, name, plan.spec.read_file)


def _recaptured(out, windows, name):
    """What the new step's model sees when the whole new plan runs on the calibration windows."""
    with Plan.load(out, backend="onnxruntime") as plan:
        step = next(s for s in plan.steps if s.name == name)
        feeds = [{plan.inputs[0].name: w[None]} for w in windows]
        return capture(plan, feeds, [step])[name]


def test_untiled_step_is_tiled_with_propagated_calibration(tmp_path):
    model = Chain(24, 200).conv(24, k=3, pads=(1, 1)).act().conv(8, k=5, d=2, pads=(4, 4)).model()
    out, windows = _plan(tmp_path, model)
    (old,) = [s for s in json.loads((out / "plan.json").read_text())["steps"] if s["device"] == "hailo"]
    assert "tiles" not in old
    new = retile_segment(out, old["name"], factor=0.5)
    doc = json.loads((out / "plan.json").read_text())
    assert old["name"] not in {s["name"] for s in doc["steps"]} and new
    steps = {s["name"]: s for s in doc["steps"]}
    assert all(steps[n]["tiles"]["count"] > 1 for n in new)
    assert_plan_matches(model, out)
    for name in new:
        step, samples = _calib_of(out, name)
        want = _recaptured(out, windows, name)
        assert len(samples) == WINDOWS * step.tiles.frames
        for k, arr in enumerate(want):
            got = np.stack([s[k][0] for s in samples]).transpose(0, 2, 3, 1)
            np.testing.assert_allclose(got, arr, rtol=1e-6, atol=1e-6)


def test_tiled_step_is_cut_in_sub_tiles_with_sliced_calibration(tmp_path):
    model = (
        Chain(8, 300, seed=3).conv(16, k=3, d=4, pads=(4, 4)).act("PRelu").conv(16, k=5, d=2, pads=(8, 0)).act().model()
    )
    limits = TilingLimits(channels=64, width=80)
    out, windows = _plan(tmp_path, model, limits)
    (old,) = [s for s in json.loads((out / "plan.json").read_text())["steps"] if s["device"] == "hailo"]
    (name,) = retile_segment(out, old["name"], factor=0.5)
    doc = json.loads((out / "plan.json").read_text())
    (new,) = [s for s in doc["steps"] if s["device"] == "hailo"]
    assert new["name"] == name and new["tiles"]["outputs"][0]["width"] * 2 == old["tiles"]["outputs"][0]["width"]
    assert any("mask" in b for b in new["tiles"]["inputs"])  # masks survive as windows of masks
    assert_plan_matches(model, out)
    check_tile_limits(out, TilingLimits(channels=64, width=old["tiles"]["inputs"][0]["width"]))
    # the sliced calibration is what the new model sees: same frames as a fresh capture
    step, samples = _calib_of(out, name)
    want = _recaptured(out, windows, name)
    frames = step.tiles.frames
    for k, arr in enumerate(want):
        got = np.stack([s[k][0] for s in samples]).transpose(0, 2, 3, 1)
        per_window = got.shape[0] // WINDOWS
        assert per_window >= frames  # trailing sub-tiles past the end are calibration-only frames
        kept = np.concatenate([got[w * per_window : w * per_window + frames] for w in range(WINDOWS)])
        np.testing.assert_allclose(kept, arr, rtol=1e-6, atol=1e-6)


def test_compile_retry_shrink_retiles_and_compiles_the_pieces(tmp_path):
    """The DFC stand-in's allocator refuses inputs wider than 64: the real re-tiler cuts the step,
    the pieces (with calibration) compile, and the plan still loads and matches."""
    model = Chain(32, 200, seed=2).conv(32, k=3, pads=(1, 1)).act().conv(16, k=3, pads=(1, 1)).model()
    out, _ = _plan(tmp_path, model)
    sdk = StandinSDK(allocator_max_width=64)
    summary = compile_plan(out, sdk=sdk, progress=None, retry_shrink=True, max_shrink=3)
    assert summary.ok, summary.table()
    first = summary.results[0]
    assert first.status == "retiled" and first.error_type == "BackendAllocatorException"
    doc = json.loads((out / "plan.json").read_text())
    hailo = [s for s in doc["steps"] if s["device"] == "hailo"]
    assert hailo and all(s.get("compile_status") == "compiled" and s.get("calib") for s in hailo)
    optimized = [c for c in sdk.calls if c["method"] == "optimize" and c["net"] != first.segment]
    assert optimized and all(c["calib_shapes"] for c in optimized)
    assert_plan_matches(model, out)


def test_emit_script_gives_the_cli_a_batch_1_copy_of_a_tiled_model(tmp_path):
    from rewriter.toolchain.emit_script import emit_compile_script

    model = Chain(8, 300, seed=3).conv(16, k=3, pads=(1, 1)).act().conv(8, k=3, pads=(1, 1)).model()
    out, _ = _plan(tmp_path, model, TilingLimits(channels=64, width=80))
    (step,) = [s for s in json.loads((out / "plan.json").read_text())["steps"] if s["device"] == "hailo"]
    emitted = emit_compile_script(out)
    copy = out / "compile" / f"{step['name']}.onnx"
    assert f'"$PLAN"/compile/{step["name"]}.onnx' in emitted.script.read_text()
    dims = [d.dim_value for d in onnx.load(str(copy)).graph.input[0].type.tensor_type.shape.dim]
    assert dims[0] == 1 and dims[3] == step["tiles"]["inputs"][0]["width"]


def test_a_step_without_tileable_layers_is_refused_and_left_alone(tmp_path):
    import pytest
    from onnx import TensorProto, helper

    from rewriter.tiling.retile import RetileError

    # a global average pool + 1x1 conv head: nothing time-local to tile
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 512, 1, 200])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1000, 1, 1])
    w = onnx.numpy_helper.from_array(np.ones((1000, 512, 1, 1), np.float32), "w")
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["g"], name="gap"),
        helper.make_node("Conv", ["g", "w"], ["y"], name="fc", kernel_shape=[1, 1]),
    ]
    model = helper.make_model(
        helper.make_graph(nodes, "head", [x], [y], [w]), opset_imports=[helper.make_opsetid("", 17)]
    )
    out, _ = _plan(tmp_path, model)
    before = (out / "plan.json").read_bytes()
    (step,) = [s for s in json.loads(before)["steps"] if s["device"] == "hailo"]
    with pytest.raises(RetileError, match="nothing in it can run in tiles"):
        retile_segment(out, step["name"])
    assert (out / "plan.json").read_bytes() == before
