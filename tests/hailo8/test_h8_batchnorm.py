"""batchnorm.rw (fuse BN into Conv / ConvTranspose / Gemm) and bn_fallback.rw (BN -> Mul + Add)."""

import pytest
from onnx import helper
from util import assert_hailo_clean, bn_inits, make_model, rewrite_and_run, vi, weight


def bn(x, y, prefix, c, seed=0):
    inits = bn_inits(prefix, c, seed)
    return helper.make_node("BatchNormalization", [x] + [t.name for t in inits], [y], epsilon=1e-3), inits


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("group", [1, 4])
def test_conv2d_bn_fused(bias, group, tmp_path, target):
    ins = ["x", "w"] + (["b"] if bias else [])
    inits = [weight("w", [8, 8 // group, 3, 3])] + ([weight("b", [8])] if bias else [])
    b, bi = bn("c", "y", "bn", 8)
    model = make_model(
        [helper.make_node("Conv", ins, ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=group), b],
        [vi("x", [1, 8, 6, 7])],
        [vi("y", None)],
        inits + bi,
    )
    res = rewrite_and_run(model, tmp_path, target=target)
    assert_hailo_clean(res)
    assert res.ops() == {"Conv": 1}, res.ops()  # one conv, BN folded, no Mul/Add left


@pytest.mark.parametrize("bias", [True, False])
def test_convtranspose2d_bn_fused(bias, tmp_path, target):
    ins = ["x", "w"] + (["b"] if bias else [])
    inits = [weight("w", [4, 6, 3, 3])] + ([weight("b", [6])] if bias else [])
    b, bi = bn("c", "y", "bn", 6)
    model = make_model(
        [
            helper.make_node(
                "ConvTranspose",
                ins,
                ["c"],
                kernel_shape=[3, 3],
                strides=[2, 2],
                pads=[1, 1, 1, 1],
                output_padding=[1, 1],
            ),
            b,
        ],
        [vi("x", [1, 4, 5, 5])],
        [vi("y", None)],
        inits + bi,
    )
    res = rewrite_and_run(model, tmp_path, target=target)
    assert_hailo_clean(res)
    assert res.ops() == {"ConvTranspose": 1}, res.ops()


def test_grouped_convtranspose2d_bn_fused_then_split(tmp_path, target):
    # weights [Cin, Cout/g, k, k] with g = 2: the BN scale must follow each group's columns
    inits = [weight("w", [4, 3, 3, 3]), weight("b", [6])]
    b, bi = bn("c", "y", "bn", 6)
    model = make_model(
        [helper.make_node("ConvTranspose", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], strides=[2, 2], group=2), b],
        [vi("x", [1, 4, 5, 5])],
        [vi("y", None)],
        inits + bi,
    )
    res = rewrite_and_run(model, tmp_path, target=target)
    assert_hailo_clean(res)
    assert "BatchNormalization" not in res.ops() and "Mul" not in res.ops()


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_bn1d_fused(trans_b, bias, tmp_path, target):
    w = weight("w", [5, 8] if trans_b else [8, 5])
    ins = ["x", "w"] + (["b"] if bias else [])
    inits = [w] + ([weight("b", [5])] if bias else [])
    b, bi = bn("g", "y", "bn", 5)
    model = make_model(
        [helper.make_node("Gemm", ins, ["g"], transB=trans_b), b], [vi("x", [2, 8])], [vi("y", None)], inits + bi
    )
    res = rewrite_and_run(model, tmp_path, target=target)
    assert res.ops() == {"Gemm": 1}, res.ops()
    assert res.ops("hailo") == {"Gemm": 1}


def test_shared_conv_weights_two_bns(tmp_path, target):
    # both convs read the same initializer; folding BN #1 must not touch what conv #2 reads
    b1, i1 = bn("c1", "y1", "bn1", 6, seed=1)
    b2, i2 = bn("c2", "y2", "bn2", 6, seed=2)
    model = make_model(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c1"], kernel_shape=[3, 3]),
            b1,
            helper.make_node("Conv", ["x2", "w", "b"], ["c2"], kernel_shape=[3, 3]),
            b2,
        ],
        [vi("x", [1, 4, 6, 6]), vi("x2", [1, 4, 6, 6])],
        [vi("y1", None), vi("y2", None)],
        [weight("w", [6, 4, 3, 3]), weight("b", [6])] + i1 + i2,
    )
    res = rewrite_and_run(model, tmp_path, target=target)
    assert_hailo_clean(res)
    assert res.ops() == {"Conv": 2}


def test_shared_input_and_weights_two_bns(tmp_path, target):
    # same input, same weights: dedupe must not merge the two convs after their BNs are folded
    b1, i1 = bn("c1", "y1", "bn1", 6, seed=1)
    b2, i2 = bn("c2", "y2", "bn2", 6, seed=2)
    model = make_model(
        [
            helper.make_node("Conv", ["x", "w"], ["c1"], kernel_shape=[3, 3]),
            b1,
            helper.make_node("Conv", ["x", "w"], ["c2"], kernel_shape=[3, 3]),
            b2,
        ],
        [vi("x", [1, 4, 6, 6])],
        [vi("y1", None), vi("y2", None)],
        [weight("w", [6, 4, 3, 3])] + i1 + i2,
    )
    res = rewrite_and_run(model, tmp_path, target=target)
    assert_hailo_clean(res)
    assert "BatchNormalization" not in res.ops()


def _conv_output_used_twice():
    """Conv -> BatchNormalization, and the conv output also feeds a Relu: BN cannot be fused."""
    b, bi = bn("c", "y", "bn", 6)
    return make_model(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3]),
            b,
            helper.make_node("Relu", ["c"], ["z"]),
        ],
        [vi("x", [1, 4, 6, 6])],
        [vi("y", None), vi("z", None)],
        [weight("w", [6, 4, 3, 3]), weight("b", [6])] + bi,
    )


def test_conv_output_used_elsewhere_falls_back_to_mul_add(tmp_path, target):
    model = _conv_output_used_twice()
    res = rewrite_and_run(model, tmp_path, target=target)
    assert_hailo_clean(res)
    assert res.ops() == {"Conv": 1, "Mul": 1, "Add": 1, "Relu": 1}
    assert res.ops("hailo") == res.ops()


def test_bn_fallback_1d_after_shared_conv(tmp_path, target):
    # rank-3 variant: the fallback Mul/Add constants must be [C, 1, 1] after layout
    b, bi = bn("c", "y", "bn", 6)
    model = make_model(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3]),
            b,
            helper.make_node("Relu", ["c"], ["z"]),
            helper.make_node("Add", ["y", "z"], ["o"]),
        ],
        [vi("x", [1, 4, 12])],
        [vi("o", None)],
        [weight("w", [6, 4, 3])] + bi,
    )
    res = rewrite_and_run(model, tmp_path, target=target)
    assert_hailo_clean(res)
    assert len(res.steps_on("hailo")) == 1
    assert set(res.ops("host")) <= {"Unsqueeze", "Squeeze"}


def test_target_can_choose_a_depthwise_conv_fallback(tmp_path):
    """A target listing bn_fallback_depthwise.rw instead of bn_fallback.rw: the unfusable BN becomes
    one depthwise 1x1 Conv (group = C), exactly."""
    from util import custom_target

    target = custom_target(tmp_path, {'bn_fallback.rw"': 'bn_fallback_depthwise.rw"'})
    model = _conv_output_used_twice()
    res = rewrite_and_run(model, tmp_path, target=target)
    assert_hailo_clean(res)
    assert res.ops() == {"Conv": 2, "Relu": 1} and res.ops("hailo") == res.ops()
    groups = [
        next((a.i for a in n.attribute if a.name == "group"), 1)
        for seg in res.hailo
        for n in seg.graph.node
        if n.op_type == "Conv"
    ]
    assert sorted(groups) == [1, 6]
