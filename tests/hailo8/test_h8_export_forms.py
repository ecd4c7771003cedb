"""The forms third-party exporters write, each in a small model: after the hailo8 rules and passes
the model is as few Hailo segments as the target allows, and the plan matches onnxruntime on the
original (tight tolerances). The rules themselves are also verified one by one (test_h8_verify_rules)."""

import json
import math

import numpy as np
import onnx
import pytest
from onnx import helper
from util import assert_hailo_clean, const, custom_target, ints, make_model, rewrite_and_run, vi, weight


def _conv1d(name, x, cin, cout, k, pads=(0, 0), out=None):
    return (
        helper.make_node("Conv", [x, f"{name}_w"], [out or name], kernel_shape=[k], pads=list(pads)),
        weight(f"{name}_w", (cout, cin, k)),
    )


def _hailo_steps(res):
    return [s for s in res.doc["steps"] if s["device"] == "hailo"]


def _only_hailo(res):
    """The whole model is one Hailo segment (only layout reshapes may sit on the host around it)."""
    host = [(r["node"], r["reason"]) for r in res.doc["placement"] if r["device"] == "host"]
    assert len(_hailo_steps(res)) == 1, host
    assert_hailo_clean(res)


def test_max_of_one_value_is_clip(tmp_path, target):
    """tf2onnx's Keras `maximum(LeakyReLU(x), -0.4)` after every conv (openWakeWord)."""
    nodes, inits, x = [], [const("floor", np.full((1, 1, 1, 1), -0.4, np.float32))], "x"
    for i in range(3):
        nodes += [
            helper.make_node("Conv", [x, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]),
            helper.make_node("LeakyRelu", [f"c{i}"], [f"l{i}"], alpha=0.2),
            helper.make_node("Max", [f"l{i}", "floor"], [f"y{i}" if i < 2 else "y"]),
        ]
        inits.append(weight(f"w{i}", (8, 8 if i else 1, 3, 3)))
        x = f"y{i}"
    model = make_model(nodes, [vi("x", [1, 1, 16, 16])], [vi("y", None)], inits)
    res = rewrite_and_run(model, tmp_path, target=target)
    _only_hailo(res)
    assert res.ops("hailo")["Clip"] == 3 and res.ops()["Max"] == 0


@pytest.mark.parametrize("pads", [(2, 2), (3, 0), (0, 1), (0, 0)])
def test_reflect_pads_become_slices(tmp_path, target, pads):
    """speechbrain / encodec: Conv1d with padding_mode='reflect' writes Pad(reflect) before the conv;
    an all-zero one pads nothing."""
    n1, w1 = _conv1d("a", "x", 4, 8, 3, pads=(1, 1))
    pad = helper.make_node("Pad", ["a", "p"], ["padded"], mode="reflect")
    n2, w2 = _conv1d("y", "padded", 8, 8, 1 + pads[0] + pads[1])
    model = make_model(
        [n1, pad, n2], [vi("x", [1, 4, 40])], [vi("y", None)], [w1, w2, ints("p", [0, 0, pads[0], 0, 0, pads[1]])]
    )
    res = rewrite_and_run(model, tmp_path, target=target)
    _only_hailo(res)
    assert res.ops()["Pad"] == 0
    assert res.ops("hailo")["Slice"] == sum(pads)


def test_transpose_pairs_around_channel_last_ops(tmp_path, target):
    """speechbrain's x-vector: LeakyReLU applied channel-last between Transpose(0, 2, 1)s, then
    BatchNorm1d; asteroid applies gLN's gamma/beta the same way."""
    n1, w1 = _conv1d("a", "x", 4, 8, 3)
    nodes = [
        n1,
        helper.make_node("Transpose", ["a"], ["t"], perm=[0, 2, 1]),
        helper.make_node("LeakyRelu", ["t"], ["l"], alpha=0.01),
        helper.make_node("Mul", ["l", "gamma"], ["g"]),
        helper.make_node("Transpose", ["g"], ["b"], perm=[0, 2, 1]),
        helper.make_node("BatchNormalization", ["b", "s", "o", "m", "v"], ["n"]),
    ]
    n2, w2 = _conv1d("y", "n", 8, 8, 3)
    rng = np.random.default_rng(0)
    inits = [
        w1,
        w2,
        const("gamma", rng.uniform(0.5, 1.5, 8).astype(np.float32)),
        const("s", rng.uniform(0.5, 1.5, 8).astype(np.float32)),
        const("o", np.zeros(8, np.float32)),
        const("m", rng.standard_normal(8).astype(np.float32)),
        const("v", np.ones(8, np.float32)),
    ]
    model = make_model(nodes + [n2], [vi("x", [1, 4, 30])], [vi("y", None)], inits)
    res = rewrite_and_run(model, tmp_path, target=target)
    _only_hailo(res)
    assert res.ops()["Transpose"] == 0


def test_channel_shuffle_and_split(tmp_path, target):
    """ShuffleNetV2: Concat of two branches, shuffle (Reshape to rank 5, Transpose, Reshape), chunk(2)."""
    c = 8
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "w2"], ["b"], pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["a", "b"], ["cat"], axis=1),
        helper.make_node("Reshape", ["cat", "s5"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1, 3, 4]),
        helper.make_node("Reshape", ["t", "s4"], ["shuffled"]),
        helper.make_node("Split", ["shuffled", "halves"], ["left", "right"], axis=1),
        helper.make_node("Conv", ["right", "w3"], ["right2"]),
        helper.make_node("Concat", ["left", "right2"], ["y"], axis=1),
    ]
    inits = [
        weight("w1", (c, 3, 3, 3)),
        weight("w2", (c, 3, 3, 3)),
        weight("w3", (c, c, 1, 1)),
        ints("s5", [1, 2, c, 6, 6]),
        ints("s4", [1, 2 * c, 6, 6]),
        ints("halves", [c, c]),
    ]
    model = make_model(nodes, [vi("x", [1, 3, 6, 6])], [vi("y", None)], inits)
    res = rewrite_and_run(model, tmp_path, target=target, rtol=0, atol_scale=1e-6)
    _only_hailo(res)
    assert res.ops()["Transpose"] == 0 and res.ops()["Split"] == 0


def _gelu(form: str, x: str, y: str) -> list:
    """GELU as the exporters write it."""
    nodes = {
        "div": [
            helper.make_node("Div", [x, "sqrt2"], [f"{y}_d"]),
            helper.make_node("Erf", [f"{y}_d"], [f"{y}_e"]),
            helper.make_node("Add", [f"{y}_e", "one"], [f"{y}_a"]),
            helper.make_node("Mul", [x, f"{y}_a"], [f"{y}_m"]),
            helper.make_node("Mul", [f"{y}_m", "half"], [y]),
        ],
        "half_first": [
            helper.make_node("Mul", [x, "inv_sqrt2"], [f"{y}_d"]),
            helper.make_node("Erf", [f"{y}_d"], [f"{y}_e"]),
            helper.make_node("Add", ["one", f"{y}_e"], [f"{y}_a"]),
            helper.make_node("Mul", ["half", f"{y}_a"], [f"{y}_m"]),
            helper.make_node("Mul", [x, f"{y}_m"], [y]),
        ],
        "half_x": [
            helper.make_node("Div", [x, "sqrt2"], [f"{y}_d"]),
            helper.make_node("Erf", [f"{y}_d"], [f"{y}_e"]),
            helper.make_node("Add", [f"{y}_e", "one"], [f"{y}_a"]),
            helper.make_node("Mul", [x, "half"], [f"{y}_h"]),
            helper.make_node("Mul", [f"{y}_h", f"{y}_a"], [y]),
        ],
        "gelu20": [helper.make_node("Gelu", [x], [y])],
    }
    return nodes[form]


GELU_CONSTS = [
    const("sqrt2", np.float32(math.sqrt(2))),
    const("inv_sqrt2", np.float32(1 / math.sqrt(2))),
    const("one", np.float32(1.0)),
    const("half", np.float32(0.5)),
]


@pytest.mark.parametrize("form", ["div", "half_first", "half_x", "gelu20"])
def test_gelu_stays_on_hailo(tmp_path, target, form):
    """GELU after every conv (wav2vec2's feature extractor): its Erf is accepted inside GELU only."""
    n1, w1 = _conv1d("a", "x", 4, 8, 3)
    n2, w2 = _conv1d("y", "g", 8, 8, 3)
    model = make_model(
        [n1, *_gelu(form, "a", "g"), n2],
        [vi("x", [1, 4, 30])],
        [vi("y", None)],
        [w1, w2, *GELU_CONSTS],
        opset=20 if form == "gelu20" else 17,
    )
    res = rewrite_and_run(model, tmp_path, target=target)
    _only_hailo(res)
    assert res.ops("hailo")["Erf"] == 1


def test_tanh_gelu_with_a_cube_stays_on_hailo(tmp_path, target):
    """GELU(approximate="tanh") as dynamo writes it, x ** 3 a Pow: the cube is x * x * x (canonical.rw)
    and the whole activation, which reads `a` three times, stays between the convs on Hailo."""
    n1, w1 = _conv1d("a", "x", 4, 8, 3)
    n2, w2 = _conv1d("y", "g", 8, 8, 3)
    gelu = [
        helper.make_node("Pow", ["a", "three"], ["cube"]),
        helper.make_node("Mul", ["cube", "k"], ["kc"]),
        helper.make_node("Add", ["a", "kc"], ["inner"]),
        helper.make_node("Mul", ["inner", "s"], ["scaled"]),
        helper.make_node("Tanh", ["scaled"], ["t"]),
        helper.make_node("Add", ["t", "one"], ["t1"]),
        helper.make_node("Mul", ["a", "half"], ["ah"]),
        helper.make_node("Mul", ["ah", "t1"], ["g"]),
    ]
    consts = [
        const("three", np.float32(3.0)),
        const("k", np.float32(0.044715)),
        const("s", np.float32(np.sqrt(2 / np.pi))),
        const("one", np.float32(1.0)),
        const("half", np.float32(0.5)),
    ]
    model = make_model([n1, *gelu, n2], [vi("x", [1, 4, 31])], [vi("y", None)], [w1, w2, *consts])
    res = rewrite_and_run(model, tmp_path, target=target)
    _only_hailo(res)
    assert res.ops()["Pow"] == 0 and res.ops("hailo")["Tanh"] == 1


def test_erf_alone_stays_on_the_host(tmp_path, target):
    n1, w1 = _conv1d("a", "x", 4, 8, 3)
    n2, w2 = _conv1d("y", "e", 8, 8, 3)
    model = make_model(
        [n1, helper.make_node("Erf", ["a"], ["e"], name="erf"), n2], [vi("x", [1, 4, 30])], [vi("y", None)], [w1, w2]
    )
    res = rewrite_and_run(model, tmp_path, target=target)
    (erf,) = [r for r in res.doc["placement"] if r["op"] == "Erf"]
    assert erf["device"] == "host" and "outside a gelu" in erf["reason"]


def _group_norm(form: str, x: str, y: str, c: int) -> tuple[list, list]:
    """GroupNorm(1, C) as TorchScript writes it, and the gLN asteroid writes out by hand."""
    if form == "instance_norm":
        return (
            [
                helper.make_node("Reshape", [x, "g1"], [f"{y}_r"]),
                helper.make_node("InstanceNormalization", [f"{y}_r", "in_s", "in_b"], [f"{y}_n"], epsilon=1e-8),
                helper.make_node("Reshape", [f"{y}_n", f"{y}_shape"], [y]),
            ],
            [ints("g1", [0, 1, -1]), const("in_s", np.ones(1, np.float32)), const("in_b", np.zeros(1, np.float32))],
        )
    return (
        [
            helper.make_node("ReduceMean", [x], [f"{y}_m"], axes=[1, 2], keepdims=1),
            helper.make_node("Sub", [x, f"{y}_m"], [f"{y}_d"]),
            helper.make_node("Pow", [f"{y}_d", "two"], [f"{y}_q"]),
            helper.make_node("ReduceMean", [f"{y}_q"], [f"{y}_v"], axes=[1, 2], keepdims=1),
            helper.make_node("Add", [f"{y}_v", "eps"], [f"{y}_ve"]),
            helper.make_node("Sqrt", [f"{y}_ve"], [f"{y}_s"]),
            helper.make_node("Div", [f"{y}_d", f"{y}_s"], [y]),
        ],
        [const("two", np.float32(2.0)), const("eps", np.float32(1e-8))],
    )


@pytest.mark.parametrize("form", ["instance_norm", "written_out"])
def test_global_norms_become_one_layer_norm_on_the_host(tmp_path, target, form):
    c, t = 8, 30
    n1, w1 = _conv1d("a", "x", 4, c, 3, pads=(1, 1))
    norm, inits = _group_norm(form, "a", "n", c)
    affine = [helper.make_node("Mul", ["n", "gamma"], ["ng"]), helper.make_node("Add", ["ng", "beta"], ["nb"])]
    n2, w2 = _conv1d("y", "nb", c, c, 3)
    rng = np.random.default_rng(1)
    inits += [
        w1,
        w2,
        ints("n_shape", [1, c, t]),
        const("gamma", rng.uniform(0.5, 1.5, (c, 1)).astype(np.float32)),
        const("beta", rng.standard_normal((c, 1)).astype(np.float32)),
    ]
    model = make_model([n1, *norm, *affine, n2], [vi("x", [1, 4, t])], [vi("y", None)], inits)
    res = rewrite_and_run(model, tmp_path, target=target)
    host = [r for r in res.doc["placement"] if r["device"] == "host" and r["op"] not in ("Squeeze", "Unsqueeze")]
    assert [r["op"] for r in host] == ["LayerNormalization"] and "failed in quantization" in host[0]["reason"]
    assert res.ops("hailo")["Mul"] >= 1 and res.ops("hailo")["Add"] >= 1  # the affine stays on Hailo


@pytest.mark.parametrize("case", ["affine", "no_affine", "per_time_scale", "other_axis"])
def test_last_axis_norm_written_out(tmp_path, target, case):
    """LayerNorm(C) on [N, T, C] as exporters write it below opset 17 becomes one
    LayerNormalization(axis=-1) that takes the per-channel scale and shift (the opset-17 form);
    a scale that is not one value per channel (one per time step) stays a Mul and so does the shift
    after it; a mean over another axis stays as is."""
    c, t = 6, 11
    axes = [1] if case == "other_axis" else [-1]
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
        helper.make_node("ReduceMean", ["xt"], ["m"], axes=axes, keepdims=1),
        helper.make_node("Sub", ["xt", "m"], ["d"]),
        helper.make_node("Pow", ["d", "two"], ["q"]),
        helper.make_node("ReduceMean", ["q"], ["v"], axes=axes, keepdims=1),
        helper.make_node("Add", ["v", "eps"], ["ve"]),
        helper.make_node("Sqrt", ["ve"], ["s"]),
        helper.make_node("Div", ["d", "s"], ["n" if case != "no_affine" else "y"]),
    ]
    rng = np.random.default_rng(2)
    inits = [const("two", np.float32(2.0)), const("eps", np.float32(1e-5))]
    if case != "no_affine":
        gamma = rng.uniform(0.5, 1.5, [t, 1] if case == "per_time_scale" else [c]).astype(np.float32)
        beta = rng.standard_normal(c).astype(np.float32)
        nodes += [helper.make_node("Mul", ["n", "gamma"], ["ng"]), helper.make_node("Add", ["ng", "beta"], ["y"])]
        inits += [const("gamma", gamma), const("beta", beta)]
    model = make_model(nodes, [vi("x", [1, c, t])], [vi("y", None)], inits)
    res = rewrite_and_run(model, tmp_path, target=target)
    ops = res.ops()
    if case == "other_axis":
        assert "LayerNormalization" not in ops and ops["ReduceMean"] == 2
        return
    assert ops["LayerNormalization"] == 1 and "ReduceMean" not in ops and "Sqrt" not in ops
    left = {"affine": 0, "no_affine": 0, "per_time_scale": 2}[case]  # the affine's Mul and Add not taken in
    assert ops.get("Mul", 0) + ops.get("Add", 0) == left


def test_concat_of_eight_converted_chunks(tmp_path, target):
    """ECAPA-TDNN's Res2Net block: Split in 8, a conv chain over the chunks, Concat of all 8."""
    first, w0 = _conv1d("h", "x", 4, 16, 1)
    n_split = helper.make_node("Split", ["h", "parts"], [f"x{i}" for i in range(8)], axis=1)
    nodes, inits, prev = [first, n_split], [w0, ints("parts", [2] * 8)], None
    outs = ["x0"]
    for i in range(1, 8):
        src = f"x{i}" if prev is None else f"s{i}"
        if prev is not None:
            nodes.append(helper.make_node("Add", [f"x{i}", prev], [src]))
        conv, w = _conv1d(f"c{i}", src, 2, 2, 3, pads=(1, 1))
        nodes.append(conv)
        inits.append(w)
        prev = f"c{i}"
        outs.append(prev)
    nodes.append(helper.make_node("Concat", outs, ["y"], axis=1))
    model = make_model(nodes, [vi("x", [1, 4, 20])], [vi("y", None)], inits)
    res = rewrite_and_run(model, tmp_path, target=target)
    _only_hailo(res)
    assert res.ops("hailo")["Concat"] == 1 and res.ops("hailo")["Slice"] == 8


def test_inspect_groups_host_nodes_by_cause(tmp_path, capsys):
    """Two Sin (Snake) islands split three conv chains: Sin costs 2 round trips; the summary and
    --json say so, and name the host segments that split the Hailo ones."""
    from rewriter.cli import main

    nodes, inits, x = [], [], "x"
    for i in range(3):
        conv, w = _conv1d(f"c{i}", x, 8 if i else 4, 8, 3, pads=(1, 1))
        nodes.append(conv)
        inits.append(w)
        x = f"c{i}"
        if i < 2:
            nodes.append(helper.make_node("Sin", [x], [f"s{i}"]))
            x = f"s{i}"
    model = make_model(nodes, [vi("x", [1, 4, 64])], [vi(x, None)], inits)
    path = tmp_path / "snake.onnx"
    onnx.save(model, str(path))
    target = custom_target(tmp_path)
    capsys.readouterr()
    assert main(["inspect", str(path), "--target", str(target), "-q"]) == 0
    text = capsys.readouterr().out
    assert "by cause" in text and "op Sin not in target hailo8: no Hailo source says the DFC maps Sin" in text
    assert main(["inspect", str(path), "--target", str(target), "-q", "--json"]) == 0
    causes = {c["cause"]: c for c in json.loads(capsys.readouterr().out)["causes"]}
    sin = causes["op Sin not in target hailo8: no Hailo source says the DFC maps Sin"]
    assert sin["round_trips"] == 2 and sin["nodes"] == 2 and len(sin["segments"]) == 2


def test_unknown_composite_in_target_is_one_line(tmp_path, capsys):
    from rewriter.cli import main

    n1, w1 = _conv1d("a", "x", 4, 8, 3)
    n2, w2 = _conv1d("y", "e", 8, 8, 3)
    model = make_model(
        [n1, helper.make_node("Erf", ["a"], ["e"]), n2], [vi("x", [1, 4, 30])], [vi("y", None)], [w1, w2]
    )
    path = tmp_path / "erf.onnx"
    onnx.save(model, str(path))
    target = custom_target(tmp_path, {'within = "gelu"': 'within = "swish"'})
    capsys.readouterr()
    assert main(["inspect", str(path), "--target", str(target), "-q"]) == 2
    err = capsys.readouterr().err
    assert "ops.Erf.within = 'swish' names no known composite (known: gelu)" in err and err.count("\n") == 1
