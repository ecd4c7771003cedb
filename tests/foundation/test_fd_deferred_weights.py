"""The pipeline exports the whole graph with its large float weights as dims only (export_model's
`deferred`) and writes each weight straight into the segments that read it. The segment models
must be byte for byte the ones cut from a full export, on the field fixture, random DAGs of the
fuzzer (skips, shared values, If bodies, Round on the host) and a model whose weights take every
path: one conv weight read by two segments, weights untouched (loaded lazily) and rewritten (numpy),
small ones and integer ones (never deferred), float16 ones."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from fd_util import TCN_MODEL, make_model, save, vi, weight
from fuzz_graphs import GraphFuzzer
from onnx import TensorProto, helper, numpy_helper

from rewriter.ir.load import WORKING_OPSET, infer_shapes, model_from_graph
from rewriter.pipeline import RewriteOptions, rewrite
from rewriter.plan.steps import steps_from_partition
from rewriter.target import load_target


def _shared_weight_model() -> onnx.ModelProto:
    """A Conv2d weight left as loaded and read by two Hailo segments (a Round on the host between
    them); a Conv1d weight rewritten to Conv2d (numpy); a float16 weight as loaded; an int64 weight
    and a bias of 1,024 values or fewer."""
    rng = np.random.default_rng(4)
    half = numpy_helper.from_array(rng.standard_normal((1, 2048)).astype(np.float16), "half")
    idx = numpy_helper.from_array(np.arange(2048, dtype=np.int64) % 64, "idx")
    nodes = [
        helper.make_node("Conv", ["x", "w2", "b"], ["c1"], pads=[1, 1, 1, 1], name="conv_a"),
        helper.make_node("Round", ["c1"], ["r"], name="round"),
        helper.make_node("Conv", ["r", "w2", "b"], ["y"], pads=[1, 1, 1, 1], name="conv_b"),
        helper.make_node("Conv", ["x1", "w1", "b"], ["y1"], pads=[2, 2], name="conv1d"),
        helper.make_node("Mul", ["h", "half"], ["hy"], name="mul_half"),
        helper.make_node("Gather", ["x2", "idx"], ["g"], axis=0, name="gather"),
    ]
    inits = [weight("w2", (16, 16, 3, 3)), weight("w1", (16, 16, 5)), weight("b", (16,)), half, idx]
    inputs = [vi("x", [1, 16, 8, 32]), vi("x1", [1, 16, 64]), vi("h", [1, 2048], TensorProto.FLOAT16), vi("x2", [64])]
    outputs = [
        vi("y", [1, 16, 8, 32]),
        vi("y1", [1, 16, 64]),
        vi("hy", [1, 2048], TensorProto.FLOAT16),
        vi("g", [2048]),
    ]
    return make_model(nodes, inputs, outputs, inits)


def _models(tmp_path) -> list:
    paths = [save(_shared_weight_model(), tmp_path / "shared.onnx")]
    if TCN_MODEL.is_file():
        paths.append(TCN_MODEL)
    fuzzer = GraphFuzzer(21)
    for index in range(12):
        paths.append(save(fuzzer.generate(index).model, tmp_path / f"fuzz{index}.onnx"))
    return paths


@pytest.fixture(scope="module")
def hailo8():
    return load_target("hailo8")


def _segments(result, target, deferred: dict | None) -> tuple[list[bytes], onnx.ModelProto]:
    graph = result.graph
    whole = infer_shapes(model_from_graph(graph, WORKING_OPSET, deferred), consume=True)
    steps = steps_from_partition(
        whole, list(graph.nodes), result.partition, WORKING_OPSET, target.segment_opset, deferred
    )
    return [s.model.SerializeToString(deterministic=True) for s in steps], whole


def test_segments_are_the_ones_cut_from_a_full_export(tmp_path, hailo8):
    deferred_somewhere = 0
    for path in _models(tmp_path):
        result = rewrite(path, hailo8, RewriteOptions())
        full, _ = _segments(result, hailo8, None)
        deferred: dict = {}
        light, whole = _segments(result, hailo8, deferred)
        assert light == full, path.name
        stubs = {t.name: t for t in whole.graph.initializer if t.name in deferred}
        assert set(stubs) == set(deferred)  # every deferred weight is a stub in the whole model
        assert all(not t.HasField("raw_data") and len(t.dims) for t in stubs.values())
        deferred_somewhere += bool(deferred)
    assert deferred_somewhere >= 3


def test_what_is_deferred(tmp_path, hailo8):
    result = rewrite(save(_shared_weight_model(), tmp_path / "m.onnx"), hailo8, RewriteOptions())
    deferred: dict = {}
    segments, whole = _segments(result, hailo8, deferred)
    kept = {t.name for t in whole.graph.initializer if t.HasField("raw_data")}
    rewritten = [n for n in deferred if n not in ("half", "w2")]
    assert {"half", "w2"} <= set(deferred) and len(rewritten) == 1  # as loaded; the Conv1d's numpy weight
    assert {"idx", "b"} <= kept  # integers and small weights stay in the whole model
    readers = [onnx.ModelProto.FromString(s) for s in segments]
    holding = [m.graph.name for m in readers if any(t.name == "w2" for t in m.graph.initializer)]
    assert len(holding) == 2  # the shared weight, written into both segments that read it
