"""cleanup.rw: transpose / reshape folding, Clip -> Relu, constant scale/shift folded into a conv."""

import numpy as np
import pytest
from onnx import helper
from util import assert_hailo_clean, const, ints, make_model, rewrite_and_run, vi, weight

X = [1, 4, 6, 6]


def conv(x="x", y="c", cin=4, cout=6, bias=True):
    ins = [x, "w"] + (["b"] if bias else [])
    inits = [weight("w", [cout, cin, 3, 3])] + ([weight("b", [cout])] if bias else [])
    return helper.make_node("Conv", ins, [y], kernel_shape=[3, 3], pads=[1, 1, 1, 1]), inits


def model(nodes, inits, x_shape=X, outputs=("y",)):
    return make_model(nodes, [vi("x", x_shape)], [vi(o, None) for o in outputs], inits)


def test_transpose_pair_to_identity_disappears(tmp_path, target):
    c, ci = conv("t2")
    m = model(
        [
            helper.make_node("Transpose", ["x"], ["t1"], perm=[0, 2, 3, 1]),
            helper.make_node("Transpose", ["t1"], ["t2"], perm=[0, 3, 1, 2]),
            c,
            helper.make_node("Relu", ["c"], ["y"]),
        ],
        ci,
    )
    res = rewrite_and_run(m, tmp_path, target=target)
    assert res.ops() == {"Conv": 1, "Relu": 1}
    assert [s["device"] for s in res.doc["steps"]] == ["hailo"]


def test_transpose_pair_composed(tmp_path, target):
    m = model(
        [
            helper.make_node("Transpose", ["x"], ["t1"], perm=[0, 2, 3, 1]),
            helper.make_node("Transpose", ["t1"], ["y"], perm=[0, 2, 1, 3]),
        ],
        [],
    )
    res = rewrite_and_run(m, tmp_path, target=target)
    assert res.ops() == {"Transpose": 1}


def test_transpose_pair_with_shared_middle(tmp_path, target):
    # the first Transpose's output is also a graph output: it must stay and keep its values
    m = model(
        [
            helper.make_node("Transpose", ["x"], ["t1"], perm=[0, 2, 3, 1]),
            helper.make_node("Transpose", ["t1"], ["y"], perm=[0, 3, 1, 2]),
        ],
        [],
        outputs=("t1", "y"),
    )
    res = rewrite_and_run(m, tmp_path, target=target)
    assert res.ops()["Transpose"] <= 1


def test_identity_transpose_removed(tmp_path, target):
    c, ci = conv("t")
    m = model(
        [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 1, 2, 3]), c, helper.make_node("Relu", ["c"], ["y"])], ci
    )
    res = rewrite_and_run(m, tmp_path, target=target)
    assert res.ops() == {"Conv": 1, "Relu": 1}


def test_reshape_pair_folded(tmp_path, target):
    c, ci = conv()
    m = model(
        [
            c,
            helper.make_node("Reshape", ["c", "s1"], ["r1"]),
            helper.make_node("Reshape", ["r1", "s2"], ["r2"]),
            helper.make_node("Gemm", ["r2", "fw"], ["y"], transB=1),
        ],
        ci + [ints("s1", [1, 6, 36]), ints("s2", [1, -1]), weight("fw", [5, 216])],
    )
    res = rewrite_and_run(m, tmp_path, target=target)
    assert res.ops()["Reshape"] + res.ops()["Flatten"] == 1, res.ops()
    assert [s["device"] for s in res.doc["steps"]] == ["hailo"]


def test_reshape_pair_with_zero_not_folded(tmp_path, target):
    # s2 holds a 0 (copy the dim of the *intermediate* shape): folding would change its meaning
    m = model(
        [helper.make_node("Reshape", ["x", "s1"], ["r1"]), helper.make_node("Reshape", ["r1", "s2"], ["y"])],
        [ints("s1", [2, 2, 36]), ints("s2", [0, -1])],
    )
    res = rewrite_and_run(m, tmp_path, target=target)
    assert res.outputs["y"].shape == (2, 72)


def test_clip_min_zero_no_max_is_relu(tmp_path, target):
    c, ci = conv()
    m = model([c, helper.make_node("Clip", ["c", "lo"], ["y"])], ci + [const("lo", np.array(0, np.float32))])
    res = rewrite_and_run(m, tmp_path, target=target)
    assert res.ops() == {"Conv": 1, "Relu": 1}
    assert res.ops("hailo") == res.ops()


def test_clip_min_zero_empty_max_is_relu(tmp_path, target):
    c, ci = conv()
    m = model([c, helper.make_node("Clip", ["c", "lo", ""], ["y"])], ci + [const("lo", np.array(0, np.float32))])
    res = rewrite_and_run(m, tmp_path, target=target)
    assert res.ops() == {"Conv": 1, "Relu": 1}


def test_clip_nonzero_min_kept(tmp_path, target):
    c, ci = conv()
    m = model([c, helper.make_node("Clip", ["c", "lo"], ["y"])], ci + [const("lo", np.array(0.1, np.float32))])
    res = rewrite_and_run(m, tmp_path, target=target)
    assert res.ops() == {"Conv": 1, "Clip": 1}


def test_relu6_kept_as_clip_on_hailo(tmp_path, target):
    c, ci = conv()
    m = model(
        [c, helper.make_node("Clip", ["c", "lo", "hi"], ["y"])],
        ci + [const("lo", np.array(0, np.float32)), const("hi", np.array(6, np.float32))],
    )
    res = rewrite_and_run(m, tmp_path, target=target)
    assert res.ops("hailo") == {"Conv": 1, "Clip": 1}


PER_CHANNEL = {"C11": [6, 1, 1], "1C11": [1, 6, 1, 1], "scalar": [], "one": [1]}


@pytest.mark.parametrize("op", ["Mul", "Div", "Add", "Sub"])
@pytest.mark.parametrize("shape", list(PER_CHANNEL))
@pytest.mark.parametrize("bias", [True, False])
def test_conv_const_folded(op, shape, bias, tmp_path, target):
    rng = np.random.default_rng(3)
    k = rng.uniform(0.5, 1.5, PER_CHANNEL[shape]).astype(np.float32)
    c, ci = conv(bias=bias)
    m = model(
        [c, helper.make_node(op, ["c", "k"], ["e"]), helper.make_node("Relu", ["e"], ["y"])], ci + [const("k", k)]
    )
    res = rewrite_and_run(m, tmp_path, target=target)
    assert res.ops() == {"Conv": 1, "Relu": 1}, res.ops()


def test_conv_mul_const_on_left_folded(tmp_path, target):
    k = np.linspace(0.5, 1.5, 6, dtype=np.float32).reshape(6, 1, 1)
    c, ci = conv()
    m = model([c, helper.make_node("Mul", ["k", "c"], ["y"])], ci + [const("k", k)])
    res = rewrite_and_run(m, tmp_path, target=target)
    assert res.ops() == {"Conv": 1}


def test_const_minus_conv_not_folded_as_conv_minus_const(tmp_path, target):
    k = np.linspace(0.5, 1.5, 6, dtype=np.float32).reshape(6, 1, 1)
    c, ci = conv()
    m = model([c, helper.make_node("Sub", ["k", "c"], ["y"])], ci + [const("k", k)])
    rewrite_and_run(m, tmp_path, target=target)  # parity is the point


@pytest.mark.parametrize("op", ["Mul", "Div", "Add", "Sub"])
def test_w_shaped_const_not_folded(op, tmp_path, target):
    # a [C] constant with C == W broadcasts over W, not over channels: folding it would be wrong
    k = np.linspace(0.5, 1.5, 6, dtype=np.float32)
    c, ci = conv()
    m = model([c, helper.make_node(op, ["c", "k"], ["y"])], ci + [const("k", k)])
    res = rewrite_and_run(m, tmp_path, target=target)
    assert res.ops()[op] == 1


def test_rank5_scalar_const_not_folded(tmp_path, target):
    # a size-1 constant of higher rank than the conv output changes the output rank
    k = np.full([1, 1, 1, 1, 1], 2.0, np.float32)
    c, ci = conv()
    m = model([c, helper.make_node("Mul", ["c", "k"], ["y"])], ci + [const("k", k)])
    res = rewrite_and_run(m, tmp_path, target=target)
    assert res.outputs["y"].shape == (1, 1, 6, 6, 6)


def test_conv_output_used_twice_not_folded(tmp_path, target):
    k = np.linspace(0.5, 1.5, 6, dtype=np.float32).reshape(6, 1, 1)
    c, ci = conv()
    m = model(
        [c, helper.make_node("Mul", ["c", "k"], ["y"]), helper.make_node("Relu", ["c"], ["z"])],
        ci + [const("k", k)],
        outputs=("y", "z"),
    )
    res = rewrite_and_run(m, tmp_path, target=target)
    assert res.ops() == {"Conv": 1, "Mul": 1, "Relu": 1}


@pytest.mark.parametrize("n_inputs", [2, 3, 4])
def test_sum_becomes_adds(n_inputs, tmp_path, target):
    """Sum (old exporters' residual add) of 2 or 3 inputs becomes Adds on hailo; a wider Sum is
    left alone (host), and results match either way."""
    names = [f"x{i}" for i in range(n_inputs)]
    model = make_model(
        [helper.make_node("Sum", names, ["s"]), helper.make_node("Relu", ["s"], ["y"])],
        [vi(n, [1, 3, 4, 4]) for n in names],
        [vi("y", None)],
    )
    res = rewrite_and_run(model, tmp_path, target=target)
    assert_hailo_clean(res)
    if n_inputs <= 3:
        assert res.ops() == {"Add": n_inputs - 1, "Relu": 1} and res.ops("hailo") == res.ops()
    else:
        assert res.ops("host") == {"Sum": 1} and res.ops("hailo") == {"Relu": 1}
