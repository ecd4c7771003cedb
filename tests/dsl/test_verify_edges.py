"""verify cannot be fooled by small values or scalar constants: wide and boundary values,
broadcasting constants, several float types, every op of an op set; failures come with a
counter-example saved as ONNX + .npz."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from dsl_util import examples, rules

from rewriter.dsl import verify_rules
from rewriter.dsl.instances import InstanceBuilder, Reject

CLIP_IS_RELU = """
rule clip_0_6_is_relu:
    match:
        y = Clip(x, lo: const, hi: const)
    where:
        value(lo) == 0.0 and value(hi) == 6.0
    rewrite:
        y = Relu(x)
"""
MUL_ONE_IS_IDENTITY = """
rule mul_one_is_identity:
    match:
        y = Mul(x, c: const)
    where:
        value(c) == 1.0
    rewrite:
        y = Identity(x)
"""


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    "text,why", [(CLIP_IS_RELU, "outputs differ"), (MUL_ONE_IS_IDENTITY, "changes the shape of 'y'")]
)
def test_issue_rules_fail_at_default_samples(text, why, seed, tmp_path):
    (r,) = verify_rules(rules(text), seed=seed, counterexamples=tmp_path)
    assert not r.passed and why in r.message, str(r)
    cx = r.counterexample
    assert cx["inputs"] and "saved:" in str(r)
    saved = onnx.load(cx["model"])
    data = np.load(cx["data"])
    feeds = {i.name: data[i.name] for i in saved.graph.input}
    out = ort.InferenceSession(saved.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    np.testing.assert_array_equal(out[0], data[f"expected/{saved.graph.output[0].name}"])  # replays
    if "Clip" in text:  # the worst input lies above 6, where Clip and Relu part ways
        assert float(cx["worst"].split("at input x")[1].split("= ")[1]) > 6


def test_clip_counterexample_names_the_element():
    (r,) = verify_rules(rules(CLIP_IS_RELU), seed=0)
    text = str(r)
    assert "worst: y[" in text and "before" in text and "after the rewrite" in text


def test_sound_examples_pass_in_every_regime():
    report = verify_rules(examples(), samples=6, seed=3)
    assert all(r.passed and r.instances == 6 for r in report), [str(r) for r in report]


def _draws(rule_text, n=40, **build):
    (rule,) = rules(rule_text)
    b = InstanceBuilder(rule, np.random.default_rng(0))
    got = []
    for regime in ("normal", "wide", "boundary") * n:
        try:
            got.append((regime, *b.build(regime, **build)))
        except Reject:
            continue
    return got


def test_regimes_reach_large_values_and_the_clauses_constants():
    got = _draws(CLIP_IS_RELU, 10)
    wide = np.concatenate([f["x"].ravel() for r, _, f in got if r == "wide"])
    assert np.abs(wide).max() > 50
    boundary = np.concatenate([f["x"].ravel() for r, _, f in got if r == "boundary"]).astype(np.float32)
    six = np.float32(6.0)
    for v in (six, np.nextafter(six, np.float32(7)), np.nextafter(six, np.float32(5)), np.float32(0), -six):
        assert v in boundary, v


def test_pinned_constants_take_broadcasting_shapes():
    shapes = set()
    for _, model, feeds in _draws(MUL_ONE_IS_IDENTITY, 10):
        c = next(i for i in model.graph.initializer if i.name == "c")
        x = feeds["x"].shape
        shapes.add("enlarges" if np.broadcast_shapes(tuple(c.dims), x) != x else "fits")
        assert np.all(onnx.numpy_helper.to_array(c) == 1.0)
    assert shapes == {"enlarges", "fits"}


def test_instances_use_several_float_types_unless_pinned():
    types = {f["x"].dtype for _, _, f in _draws(CLIP_IS_RELU, 30)}
    assert {np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16)} <= types
    pinned = CLIP_IS_RELU.replace("value(lo) == 0.0", 'dtype(x) == "float64" and value(lo) == 0.0')
    assert {f["x"].dtype for _, _, f in _draws(pinned, 5)} == {np.dtype(np.float64)}


def test_all_wrapper_does_not_hide_requirements():
    text = CLIP_IS_RELU.replace(
        "value(lo) == 0.0 and value(hi) == 6.0", "all([value(lo) == 0.0, all(value(hi) == 6.0)])"
    )
    (r,) = verify_rules(rules(text), seed=0)
    assert not r.passed and "outputs differ" in r.message, str(r)  # built, then caught


def test_every_op_of_an_op_set_is_tested():
    text = """
rule abs_as_max:
    match:
        op U in {Abs, Neg}
        y = U(x)
    rewrite:
        y = Max(x, Sub(0.0, x))
"""
    (r,) = verify_rules(rules(text), samples=2, seed=0)
    assert not r.passed and "U = Neg" in str(r), str(r)


def test_rewrite_that_changes_dtype_is_caught():
    text = """
rule relu_as_cast:
    match:
        y = Relu(x)
    rewrite:
        y = Cast(Relu(x)) {to: 11}
"""
    (r,) = verify_rules(rules(text), seed=0)
    assert not r.passed and "changes the dtype of 'y'" in r.message, str(r)
