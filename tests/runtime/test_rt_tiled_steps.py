"""Tiled steps in the runtime: the gather and scatter against a per-tile reference, the hailo
backend sending all tiles of a step in one batched run (recording stand-in), and the schema's
checks of `tiles`."""

from __future__ import annotations

import json

import hailo_platform_standin as hp
import numpy as np
import pytest
from test_rt_hailo_backend import standin  # noqa: F401 - the recording hailo_platform stand-in, installed
from tiling.tiling_helpers import Chain, write_tiled_plan

from rewriter.target import TilingLimits
from runtime import Plan, PlanError
from runtime.schema import Block, Mask, StepSpec, Tiles, Window
from runtime.tiles import TiledOp, mask_batch


class Echo:
    """A model that returns its first input's channels [0, c) and width [off, off + w) per frame."""

    input_names, output_names = ["a", "m"], ["y"]
    last_backend_seconds = 0.0

    def __init__(self, c, off, w):
        self.c, self.off, self.w = c, off, w
        self.seen = None

    def run(self, xs):
        self.seen = [x.copy() for x in xs]
        return [xs[0][:, : self.c, :, self.off : self.off + self.w]]

    def buffers(self):
        return []


def _window(x, c0, c1, lo, width):
    """Reference: one window of x[b], zero outside [0, W)."""
    out = np.zeros((x.shape[0], c1 - c0, x.shape[2], width), x.dtype)
    for j in range(width):
        if 0 <= lo + j < x.shape[3]:
            out[..., j] = x[:, c0:c1, :, lo + j]
    return out


@pytest.mark.parametrize("batch,start,step,width,count", [(1, -3, 5, 9, 4), (2, 2, 4, 4, 3), (1, -6, 7, 20, 2)])
def test_gather_and_scatter_match_a_per_tile_loop(batch, start, step, width, count):
    c, h, length = 5, 2, 13
    x = np.random.default_rng(0).standard_normal((batch, c, h, length)).astype(np.float32)
    tiles = Tiles(
        count,
        (Window("x", 1, 4, start, step, width), Mask(length, start, step, width, h)),
        (Block("y", 0, 3, step, (count - 1) * step + 1),),
        batch,
    )
    declared = {
        "x": type("T", (), {"shape": x.shape, "dtype": "float32"}),
        "y": type("T", (), {"shape": (batch, 3, h, (count - 1) * step + 1), "dtype": "float32"}),
    }
    step_spec = StepSpec("s", "onnx", "hailo", ["x"], ["y"], {"model": "m.onnx"}, tiles=tiles)
    seg = Echo(3, -start if start < 0 else 0, step)
    op = TiledOp(step_spec, seg, declared)
    (y,) = op.run([x])
    windows, masks = seg.seen
    for b in range(batch):
        for t in range(count):
            np.testing.assert_array_equal(
                windows[b * count + t], _window(x[b : b + 1], 1, 4, start + t * step, width)[0]
            )
            pos = start + t * step + np.arange(width)
            np.testing.assert_array_equal(masks[b * count + t, 0, 0], ((pos >= 0) & (pos < length)).astype(np.float32))
    # the scatter put tile t's columns at [t*step, (t+1)*step), cropped
    want = np.concatenate(
        [windows[b * count + t][None, :3, :, seg.off : seg.off + step] for b in range(batch) for t in range(count)]
    ).reshape(batch, count, 3, h, step)
    want = want.transpose(0, 2, 3, 1, 4).reshape(batch, 3, h, count * step)[..., : y.shape[3]]
    np.testing.assert_array_equal(y, want)
    assert mask_batch(Mask(length, start, step, width, h), count, batch).shape == (batch * count, 1, h, width)


def test_hailo_backend_sends_all_tiles_of_a_step_in_one_run(tmp_path, standin):  # noqa: F811 - the fixture
    model = (
        Chain(80, 300, seed=3)
        .conv(72, k=3, d=4, pads=(4, 4))
        .act("PRelu")
        .conv(40, k=5, d=2, pads=(8, 0))
        .act()
        .model()
    )
    out = tmp_path / "plan"
    write_tiled_plan(model, TilingLimits(channels=32, width=64), out)
    doc = json.loads((out / "plan.json").read_text())
    (step,) = [s for s in doc["steps"] if s["device"] == "hailo"]
    hp.write_hef(out / "segments" / "hailo_0_s0.hef", out / step["model"], net="s0")
    step["hef"] = "segments/hailo_0_s0.hef"
    from rewriter.plan.writer import write_plan_json

    write_plan_json(out, doc)
    frames = step["tiles"]["count"]
    assert frames > 1 and any("mask" in b for b in step["tiles"]["inputs"]) and len(step["tiles"]["outputs"]) > 1
    x = np.random.default_rng(1).standard_normal((1, 80, 1, 300)).astype(np.float32)
    with Plan.load(out, backend="onnxruntime") as ref:
        want = ref.run({"x": x})
    with Plan.load(out, backend="hailo") as plan:
        assert [c[2] for c in hp.calls("set_batch_size")] == [frames]
        assert hp.calls("set_batch_size")[0][1] is hp.calls("configure")[0][1]
        hp.reset()
        for _ in range(2):
            got = plan.run({"x": x})
        runs = hp.calls("run")
        assert len(runs) == 2 and all(c[2] == frames and c[4] == frames for c in runs)
        assert not hp.calls("set_buffer")  # every frame's buffers were bound once, at load
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-5)


def _tiled_doc(tmp_path):
    model = Chain(8, 300, seed=3).conv(16, k=3, d=4, pads=(4, 4)).act().conv(8, k=3, pads=(1, 1)).model()
    out = tmp_path / "plan"
    write_tiled_plan(model, TilingLimits(channels=8, width=64), out)
    return out, json.loads((out / "plan.json").read_text())


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda t: t["outputs"][0].update(channels=[0, 4]), "do not cover"),
        (lambda t: t["outputs"].append(dict(t["outputs"][-1])), "do not cover"),
        (lambda t: t.update(count=1), "do not fit"),
        (lambda t: t["inputs"][0].update(tensor="nope"), "not one of the step's inputs"),
        (lambda t: t["inputs"][0].update(channels=[0, 99]), "reads channels"),
        (lambda t: t["inputs"][0].update(step=-1), "'step' must be an integer >= 0"),
        (lambda t: t["outputs"][0].update(length=5), "says length"),
        (lambda t: t.pop("inputs"), "count, inputs and outputs"),
    ],
)
def test_schema_refuses_bad_tiles(tmp_path, edit, message):
    from runtime.schema import parse_spec

    out, doc = _tiled_doc(tmp_path)
    edit(next(s for s in doc["steps"] if "tiles" in s)["tiles"])
    with pytest.raises(PlanError, match=message):
        parse_spec(doc, out / "plan.json")


def test_tiles_need_format_version_3(tmp_path):
    from runtime.schema import parse_spec

    out, doc = _tiled_doc(tmp_path)
    doc["version"] = 2
    with pytest.raises(PlanError, match="version 3"):
        parse_spec(doc, out / "plan.json")


def test_results_of_a_tiled_step_do_not_alias_the_reused_buffers(tmp_path):
    out, _ = _tiled_doc(tmp_path)
    with Plan.load(out, backend="onnxruntime") as plan:
        name = plan.outputs[0].name
        rng = np.random.default_rng(0)
        first = plan.run({"x": rng.standard_normal((1, 8, 1, 300)).astype(np.float32)})[name]
        kept = first.copy()
        plan.run({"x": rng.standard_normal((1, 8, 1, 300)).astype(np.float32)})
        np.testing.assert_array_equal(first, kept)


def test_a_step_whose_model_is_null_is_refused_on_load(tmp_path):
    """Found by the fuzzer: `"model": null` on an onnx step reached pathlib (a TypeError)."""
    from runtime.schema import parse_spec

    out, doc = _tiled_doc(tmp_path)
    next(s for s in doc["steps"] if "tiles" in s)["model"] = None
    with pytest.raises(PlanError, match="onnx step needs 'model'"):
        parse_spec(doc, out / "plan.json")


def test_a_tiled_output_declared_with_another_dtype_is_a_plan_error(tmp_path):
    """Found by the fuzzer: the scatter into the declared buffer raised numpy's TypeError; a tiled
    step's outputs are checked like every other step's."""
    out, doc = _tiled_doc(tmp_path)
    step = next(s for s in doc["steps"] if "tiles" in s)
    name = step["outputs"][0]
    doc["tensors"][name]["dtype"] = "int8"
    for t in doc["outputs"]:  # a plan output here: declare it int8 there too, so only the run can tell
        if t["name"] == name:
            t["dtype"] = "int8"
    (out / "plan.json").write_text(json.dumps(doc))
    with Plan.load(out, backend="onnxruntime") as plan, pytest.raises(PlanError, match="declares int8"):
        plan.run({"x": np.zeros((1, 8, 1, 300), np.float32)})


def test_a_tiled_output_declared_with_another_height_is_refused(tmp_path):
    """Found by the fuzzer (seed 5): a declaration edited after writing (files re-hashed) made the
    scatter raise numpy's ValueError at run time. Plan.load now checks a tiled step's model against
    its tile binding as the writer's validation does, and the run checks every tile batch's shape
    (for models whose shapes are dynamic)."""
    out, doc = _tiled_doc(tmp_path)
    step = next(s for s in doc["steps"] if "tiles" in s)
    name = step["outputs"][0]
    shape = doc["tensors"][name]["shape"]
    doc["tensors"][name]["shape"] = shape[:2] + [shape[2] + 1] + shape[3:]
    for t in doc["outputs"]:
        if t["name"] == name:
            t["shape"] = doc["tensors"][name]["shape"]
    (out / "plan.json").write_text(json.dumps(doc))
    with pytest.raises(PlanError, match="tile binding gives"):
        Plan.load(out, backend="onnxruntime")


def test_a_tile_batch_of_the_wrong_shape_is_a_plan_error():
    """The run-time check alone (a backend whose segments do not say their shapes)."""
    from runtime.tiles import TiledOp

    op = TiledOp.__new__(TiledOp)
    op.batch, op.count, op.step_name = 1, 2, "s"
    op.last_stitch_seconds = 0.0
    op._inputs, op._batches = [], []
    dst = np.zeros((1, 4, 1, 10), np.float32)
    op._scatter = [("y", dst, 5)]
    op._results = [dst]

    class Segment:
        last_backend_seconds = 0.0

        def run(self, batch):
            return [np.zeros((2, 4, 2, 5), np.float32)]  # H 2, the binding says 1

    op.segment = Segment()
    with pytest.raises(PlanError, match=r"tiles of \[2, 4, 1, 5\]"):
        op.run([])
    Segment.run = lambda self, batch: [np.ones((2, 4, 1, 5), np.float32)]
    assert op.run([])[0].sum() == 40  # the right shape scatters
