"""verify_rules: randomized differential testing against onnxruntime."""

from dsl_util import examples, rules

from rewriter.dsl import verify_rules


def test_examples_verify():
    report = verify_rules(examples(), samples=4, seed=1)
    assert [r.rule for r in report] == ["relu_of_relu", "leaky_zero_is_relu", "fuse_conv_bn"]
    for r in report:
        assert r.passed, str(r)
        assert r.instances == 4
        assert r.max_scaled_err < 1e-5  # wide values make absolute errors large, not relative ones


def test_unsound_rule_fails():
    bad = rules("""
rule sigmoid_is_relu:
    match:
        y = Sigmoid(x)
    rewrite:
        y = Relu(x)
""")
    (r,) = verify_rules(bad, samples=3)
    assert not r.passed and "outputs differ" in r.message and r.max_abs_err > 0.01


def test_subtly_unsound_rule_fails():
    # forgets the conv attributes: fine on default convs, wrong with strides/pads/dilations
    text = open(__file__.replace("test_verify.py", "data/examples.rw")).read()
    text = text.split("rule fuse_conv_bn:")[1].replace(
        "bn_fold_bias(b, s, beta, m, v, eps)) {...attrs}", "bn_fold_bias(b, s, beta, m, v, eps))"
    )
    (r,) = verify_rules(rules("rule fuse_conv_bn_no_attrs:" + text), samples=8, seed=3)
    assert not r.passed, str(r)


def test_conv_rank3_to_rank4_rule_verifies():
    text = """
rule conv1d_as_conv2d:
    match:
        y = Conv(x, w: const, b: const?) {kernel_shape: k, pads: p, strides: s, dilations: d, group: g}
    where:
        rank(x) == 3
    rewrite:
        x4 = Unsqueeze(x, [2])
        y4 = Conv(x4, Unsqueeze(w, [2]), b) {kernel_shape: [1, k[0]], pads: [0, p[0], 0, p[1]], strides: [1, s[0]], dilations: [1, d[0]], group: g}
        y = Squeeze(y4, [2])
"""
    (r,) = verify_rules(rules(text), samples=5, seed=2)
    assert r.passed and r.instances == 5, str(r)


def test_unbuildable_rule_is_reported():
    text = """
rule impossible:
    match:
        y = Relu(x)
    where:
        rank(x) == 9
    rewrite:
        y = Relu(x)
"""
    (r,) = verify_rules(rules(text), samples=2, max_attempts=20)
    assert not r.passed and r.message.startswith("not verified (could not build an instance:")
    assert "rank(x) == 9" in r.message
    (r,) = verify_rules(rules(text), samples=2, max_attempts=20, allow_unbuilt=True)
    assert r.passed and r.instances == 0
