"""remove_cast_to_own_type (rules/common/passthrough.rw): a Cast to the type its input already has
goes, whatever that type is (float32, float16 kept by --keep-float16, int64 indices, bool masks),
also where it writes a graph output; a Cast that changes the type stays. Plans run against
onnxruntime on the original; `rules verify` draws no-op Casts (instances.py) and fails unsound
variants of the rule."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from util import make_model, rewrite_and_run, vi, weight

from rewriter.cli import main


def _casts(res) -> list[int]:
    return [a.i for seg in res.segments.values() for n in seg.graph.node if n.op_type == "Cast" for a in n.attribute]


def test_float32_no_op_casts_go_and_the_convs_join_on_hailo(tmp_path):
    """A Cast between two convs and one that writes the graph output: both go, one Hailo segment
    (sizes above the target's small-segment threshold, so the placement is the rule's doing)."""
    m = make_model(
        [
            helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
            helper.make_node("Cast", ["a"], ["a32"], to=TensorProto.FLOAT),
            helper.make_node("Relu", ["a32"], ["r"]),
            helper.make_node("Conv", ["r", "w2"], ["b"], pads=[0, 1, 0, 1], kernel_shape=[1, 3]),
            helper.make_node("Cast", ["b"], ["y"], to=TensorProto.FLOAT),
        ],
        [vi("x", [1, 16, 24, 33])],
        [vi("y", None)],
        [weight("w1", [32, 16, 3, 3]), weight("w2", [5, 32, 1, 3], seed=1)],
    )
    res = rewrite_and_run(m, tmp_path)
    assert _casts(res) == []
    assert [s["device"] for s in res.doc["steps"]] == ["hailo"]
    assert res.outputs["y"].shape == (1, 5, 24, 33)


def test_int64_and_bool_no_op_casts_go_and_type_changes_stay(tmp_path):
    """Cast(int64 -> int64) and Cast(bool -> bool) go; Cast(float -> int32) and Cast(bool -> float)
    compute something and stay. The outputs match onnxruntime exactly."""
    m = make_model(
        [
            helper.make_node("Cast", ["i"], ["i64"], to=TensorProto.INT64),
            helper.make_node("Add", ["i64", "i64"], ["twice"]),
            helper.make_node("Greater", ["x", "zero"], ["mask"]),
            helper.make_node("Cast", ["mask"], ["mask_b"], to=TensorProto.BOOL),
            helper.make_node("Cast", ["mask_b"], ["maskf"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["x", "maskf"], ["kept"]),
            helper.make_node("Cast", ["kept"], ["as_int"], to=TensorProto.INT32),
        ],
        [vi("x", [1, 4, 1, 9]), vi("i", [3, 5], TensorProto.INT64)],
        [vi("twice", None, TensorProto.INT64), vi("as_int", None, TensorProto.INT32)],
        [helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])],
    )
    feeds = {
        "x": (np.random.default_rng(0).standard_normal((1, 4, 1, 9)) * 4).astype(np.float32),
        "i": np.arange(15, dtype=np.int64).reshape(3, 5) - 7,
    }
    res = rewrite_and_run(m, tmp_path, feeds=feeds, rtol=0, atol_scale=0)
    assert sorted(_casts(res)) == sorted([TensorProto.FLOAT, TensorProto.INT32])
    np.testing.assert_array_equal(res.outputs["twice"], 2 * feeds["i"])


def test_keep_float16_drops_only_the_float16_to_float16_cast(tmp_path):
    """With --keep-float16 the model stays in float16: a Cast to float16 of a float16 value goes,
    the Cast that widens to float32 for the output stays."""
    m = make_model(
        [
            helper.make_node("Relu", ["x"], ["r"]),
            helper.make_node("Cast", ["r"], ["r16"], to=TensorProto.FLOAT16),
            helper.make_node("Neg", ["r16"], ["n"]),
            helper.make_node("Cast", ["n"], ["y"], to=TensorProto.FLOAT),
        ],
        [vi("x", [1, 4, 1, 7], TensorProto.FLOAT16)],
        [vi("y", None)],
    )
    res = rewrite_and_run(m, tmp_path, extra_args=["--keep-float16"], rtol=0, atol_scale=0)
    assert _casts(res) == [TensorProto.FLOAT]


@pytest.mark.parametrize(
    "where",
    [
        'dtype(x) == "float32"',  # also removes Casts to other types
        'dtype(y) != "bool"',
        'dtype(x) == "float64" and dtype(y) == "float32"',
    ],
)
def test_verify_fails_unsound_cast_removals(tmp_path, capsys, where):
    rule = tmp_path / "cast.rw"
    body = ["rule unsound_cast:", "    match:", "        y = Cast(x)", "    where:", f"        {where}"]
    rule.write_text("\n".join([*body, "    rewrite:", "        y = x", ""]))
    code = main(["rules", "verify", str(rule), "--samples", "20", "--json", "--counterexamples", str(tmp_path / "ce")])
    report = json.loads(capsys.readouterr().out)
    assert code == 1, report


def test_verify_passes_the_rule_on_no_op_casts_it_draws(capsys):
    """instances.py draws Casts to the input's own type: the rule fires and verifies (float32,
    float16 and float64 instances), rather than never matching."""
    from pathlib import Path

    import rewriter

    rules = Path(rewriter.__file__).resolve().parents[1] / "rules" / "common" / "passthrough.rw"
    code = main(["rules", "verify", str(rules), "--samples", "30", "--seed", "3", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    rows = {r["rule"]: r for r in (report["rules"] if isinstance(report, dict) else report)}
    assert rows["remove_cast_to_own_type"]["instances"] >= 20, rows["remove_cast_to_own_type"]


def test_instances_draw_no_op_casts_of_every_float_type():
    """The Cast generator draws `to` = the input's own type often (and other types too), so verify
    exercises the rule on float16 and float64 no-op Casts, not float32 alone."""
    from onnx import helper as h

    from rewriter.dsl.instances import InstanceBuilder, Reject
    from rewriter.dsl.rules import parse_rules

    (rule,) = parse_rules("rule r:\n    match:\n        y = Cast(x) {to: t}\n    rewrite:\n        y = x\n")
    builder = InstanceBuilder(rule, np.random.default_rng(0))
    own, other = set(), set()
    for _ in range(150):
        try:
            model, _ = builder.build()
        except Reject:
            continue
        (cast,) = [n for n in model.graph.node if n.op_type == "Cast"]
        to = h.get_attribute_value(cast.attribute[0])
        graph = onnx.shape_inference.infer_shapes(model).graph
        elem = {v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.value_info]}
        elem.update({t.name: t.data_type for t in graph.initializer})
        (own if elem[cast.input[0]] == to else other).add(to)
    assert {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE} <= own, own
    assert {TensorProto.INT64, TensorProto.BOOL} & other, other
