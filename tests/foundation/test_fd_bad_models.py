"""Broken and degenerate input models: a clear one-line error (exit 2) naming what is wrong, or a
valid plan that matches onnxruntime; never a traceback, never a plan the runtime refuses."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from fd_util import (
    assert_parity,
    assert_tight,
    cli,
    conv_chain_model,
    make_model,
    ort_run,
    plan_run,
    random_feeds,
    read_plan,
    save,
    vi,
    weight,
)
from onnx import TensorProto, helper, numpy_helper


def assert_one_line(rc, err, *fragments, code=2):
    assert rc == code, err
    assert err.startswith("rewrite: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def relu(i, o, name=""):
    return helper.make_node("Relu", [i], [o], name=name)


BROKEN = {
    "cycle": (
        lambda: make_model(
            [relu("b", "a", "r1"), relu("a", "b", "r2")], [vi("x", [1, 3])], [vi("a", [1, 3])], check=False
        ),
        ["cycle", "'r1' (Relu)", "'r2' (Relu)"],
    ),
    "missing_producer": (
        lambda: make_model([relu("nothere", "y", "r")], [vi("x", [1, 3])], [vi("y", [1, 3])], check=False),
        ["'r' (Relu) reads tensor 'nothere'"],
    ),
    "missing_initializer": (
        lambda: make_model(
            [helper.make_node("Conv", ["x", "W"], ["y"], name="c")],
            [vi("x", [1, 2, 8, 8])],
            [vi("y", [1, 2, 6, 6])],
            check=False,
        ),
        ["'c' (Conv) reads tensor 'W'"],
    ),
    "two_producers": (
        lambda: make_model(
            [relu("x", "y", "r"), helper.make_node("Sigmoid", ["x"], ["y"], name="s")],
            [vi("x", [1, 3])],
            [vi("y", [1, 3])],
            check=False,
        ),
        ["tensor 'y' is defined twice", "'r' (Relu)", "'s' (Sigmoid)"],
    ),
    "output_listed_twice": (
        lambda: make_model([relu("x", "y")], [vi("x", [1, 3])], [vi("y", [1, 3]), vi("y", [1, 3])], check=False),
        ["graph output 'y' is listed twice"],
    ),
    "unknown_op": (
        lambda: make_model(
            [helper.make_node("FooBar", ["x"], ["y"], name="f")], [vi("x", [1, 3])], [vi("y", [1, 3])], check=False
        ),
        ["'f' (FooBar)", "not an ONNX operator"],
    ),
    "op_newer_than_opset": (
        lambda: make_model(
            [helper.make_node("Gelu", ["x"], ["y"], name="g")], [vi("x", [1, 3])], [vi("y", [1, 3])], check=False
        ),
        ["'Gelu'", "does not exist in opset 17"],
    ),
    "domain_not_imported": (
        lambda: make_model(
            [helper.make_node("Foo", ["x"], ["y"], name="f", domain="my.ops")],
            [vi("x", [1, 3])],
            [vi("y", [1, 3])],
            check=False,
        ),
        ["domain 'my.ops'", "does not import"],
    ),
    "undefined_output": (
        lambda: make_model([relu("x", "y")], [vi("x", [1, 3])], [vi("y", [1, 3]), vi("z", [1, 3])], check=False),
        ["graph output 'z' is not produced"],
    ),
    "body_reads_undefined": (
        lambda: if_model(branch_input="nowhere", check=False),
        ["in the body", "reads tensor 'nowhere'"],
    ),
    "cycle_through_a_body": (  # the If's branches read v, which conv2 computes from the If's output
        lambda: if_model(branch_input="v", check=False),
        ["cycle", "'if' (If)", "'conv2' (Conv)"],
    ),
    "op_in_a_body_newer_than_opset": (
        lambda: _with_body_op(if_model(check=False), "Gelu"),
        ["'Gelu'", "does not exist in opset 17"],
    ),
}


def _with_body_op(model: onnx.ModelProto, op: str) -> onnx.ModelProto:
    """The model with the first node of its If's then-branch made an `op`."""
    branch = next(a for n in model.graph.node if n.op_type == "If" for a in n.attribute if a.name == "then_branch")
    branch.g.node[0].op_type = op
    return model


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_model_is_one_line_and_writes_nothing(tmp_path, capsys, case):
    build, fragments = BROKEN[case]
    path = save(build(), tmp_path / "m.onnx")
    rc, _, err = cli(capsys, path, "-o", tmp_path / "out", "-q")
    assert_one_line(rc, err, *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def conv1d(width, channels=3):
    w = numpy_helper.from_array(np.ones((4, channels, 3), np.float32), "w")
    return make_model(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1], name="c")],
        [vi("x", [1, channels, width])],
        [vi("y", [1, 4, width])],
        [w],
        check=False,
    )


@pytest.mark.parametrize("width, channels", [(2**40, 3), (200_000_000, 3), (200_000_000, 1), (2**20 + 1, 1)])
def test_huge_declared_width_is_refused_before_any_work(tmp_path, capsys, width, channels):
    """2*10^8 samples of one channel is within a plan's element bound, but would take hours and
    400,000 tile steps: one dimension is bounded too."""
    path = save(conv1d(width, channels), tmp_path / "m.onnx")
    for args in ([path, "-o", tmp_path / "out", "-q"], ["inspect", path, "-q"]):
        rc, _, err = cli(capsys, *args)
        assert_one_line(rc, err, "tensor 'x'", f"{width}", "largest this rewriter accepts")


def test_the_largest_accepted_dimension_passes_the_load_check():
    from rewriter.ir.validate import MAX_DIM, check_sizes

    check_sizes(conv1d(MAX_DIM, 1))


def test_huge_width_through_input_shape_and_overflow(tmp_path, capsys):
    model = conv1d(16)
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "W"
    model.graph.output[0].type.tensor_type.shape.dim[2].dim_param = "W"
    path = save(model, tmp_path / "m.onnx")
    rc, _, err = cli(capsys, path, "--input-shape", f"x=1,3,{2**40}", "-o", tmp_path / "o", "-q")
    assert_one_line(rc, err, "--input-shape x", "larger than the rewriter accepts")
    rc, _, err = cli(capsys, path, "--input-shape", "x=1,3," + "9" * 30, "-o", tmp_path / "o", "-q")
    assert_one_line(rc, err, "--input-shape x")
    rc, _, err = cli(capsys, path, "--input-shape", "x=1,3,16", "--input-shape", "x=1,3,32", "-o", tmp_path / "o", "-q")
    assert_one_line(rc, err, "--input-shape x given twice", "[1, 3, 16]", "[1, 3, 32]")
    assert not (tmp_path / "o").exists()
    rc, _, _ = cli(capsys, path, "--input-shape", "x=1,3,16", "-o", tmp_path / "o", "-q")
    assert rc == 0


def test_element_bound_is_checked_after_shape_inference(tmp_path, capsys):
    """A small input that an Expand blows up to 2^40 elements: refused before folding allocates it."""
    shape = numpy_helper.from_array(np.array([1, 1024, 1024, 1024, 1024], np.int64), "shape")
    model = make_model(
        [helper.make_node("Expand", ["x", "shape"], ["y"], name="e")],
        [vi("x", [1, 1, 1, 1, 1])],
        [vi("y", [1, 1024, 1024, 1024, 1024])],
        [shape],
    )
    rc, _, err = cli(capsys, save(model, tmp_path / "m.onnx"), "-o", tmp_path / "o", "-q")
    assert_one_line(rc, err, "tensor 'y'", "elements")


# ---- degenerate models -----------------------------------------------------------------------------------
def test_model_with_only_a_constant_is_a_clear_error(tmp_path, capsys):
    const = helper.make_node("Constant", [], ["y"], value=numpy_helper.from_array(np.ones((1, 3), np.float32)))
    path = save(make_model([const], [], [vi("y", [1, 3])]), tmp_path / "m.onnx")
    rc, _, err = cli(capsys, path, "-o", tmp_path / "o", "-q")
    assert_one_line(rc, err, "no inputs")


def test_input_straight_to_output_is_a_clear_error(tmp_path, capsys):
    path = save(make_model([], [vi("x", [1, 3])], [vi("x", [1, 3])]), tmp_path / "m.onnx")
    rc, _, err = cli(capsys, path, "-o", tmp_path / "o", "-q")
    assert_one_line(rc, err, "computes nothing")
    assert not (tmp_path / "o").exists()


def write_and_check(tmp_path, capsys, model):
    path = save(model, tmp_path / "m.onnx")
    out = tmp_path / "o"
    rc, _, err = cli(capsys, path, "-o", out, "-q")
    assert rc == 0, err
    rc, text, err = cli(capsys, "check", out, "--against", path)
    assert rc == 0, text + err
    feeds = random_feeds(model)
    assert_parity(plan_run(out, feeds), ort_run(model, feeds))
    return out, feeds


def test_an_output_that_is_also_an_input(tmp_path, capsys):
    model = make_model([relu("x", "y")], [vi("x", [1, 3])], [vi("x", [1, 3]), vi("y", [1, 3])])
    out, feeds = write_and_check(tmp_path, capsys, model)
    assert [o["name"] for o in read_plan(out)["outputs"]] == ["x", "y"]
    np.testing.assert_array_equal(plan_run(out, feeds)["x"], feeds["x"])


def test_constant_output_beside_computed_ones(tmp_path, capsys):
    c = numpy_helper.from_array(np.arange(3, dtype=np.float32).reshape(1, 3), "c")
    model = make_model(
        [relu("x", "y"), helper.make_node("Add", ["y", "c"], ["z"])],
        [vi("x", [1, 3])],
        [vi("z", [1, 3]), vi("c", [1, 3])],
        [c],
    )
    out, feeds = write_and_check(tmp_path, capsys, model)
    np.testing.assert_array_equal(plan_run(out, feeds)["c"], [[0, 1, 2]])


def test_every_output_constant_but_the_model_has_an_input(tmp_path, capsys):
    const = helper.make_node("Constant", [], ["y"], value=numpy_helper.from_array(np.full((1, 3), 7, np.float32)))
    model = make_model([const], [vi("x", [1, 3])], [vi("y", [1, 3])])
    out, feeds = write_and_check(tmp_path, capsys, model)
    np.testing.assert_array_equal(plan_run(out, feeds)["y"], np.full((1, 3), 7, np.float32))


def test_graph_that_is_not_topologically_sorted_is_fine(tmp_path, capsys):
    model = conv_chain_model()
    nodes = list(model.graph.node)
    model.graph.ClearField("node")
    model.graph.node.extend(reversed(nodes))
    write_and_check(tmp_path, capsys, model)


# ---- If / Loop bodies reading main-graph tensors -------------------------------------------------------
C, L = 16, 32


def if_model(branch_input="t", check=True):
    """conv1 -> t; If(mean(x) > 0) { Relu(t) } else { Sigmoid(t) } -> u; conv2(u) + t -> y.
    The branches read t from the main graph: the If must run after conv1 and before conv2."""
    shape = [1, C, L, L]
    then = helper.make_graph([relu(branch_input, "o1")], "then", [], [vi("o1", shape)])
    other = helper.make_graph([helper.make_node("Sigmoid", [branch_input], ["o2"])], "else", [], [vi("o2", shape)])
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["t"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("ReduceMean", ["x"], ["m"], keepdims=0, name="mean"),
        helper.make_node("Greater", ["m", "zero"], ["cond"], name="gt"),
        helper.make_node("If", ["cond"], ["u"], then_branch=then, else_branch=other, name="if"),
        helper.make_node("Conv", ["u", "w2"], ["v"], pads=[1, 1, 1, 1], name="conv2"),
        helper.make_node("Add", ["v", "t"], ["y"], name="add"),
    ]
    inits = [weight("w1", (C, C, 3, 3)), weight("w2", (C, C, 3, 3)), numpy_helper.from_array(np.float32(0), "zero")]
    return make_model(nodes, [vi("x", shape)], [vi("y", shape)], inits, check=check)


def loop_model():
    """conv1 -> t; Loop 3 times { acc = acc + t } (t read from the main graph) -> conv2 -> y."""
    shape = [1, C, L, L]
    body = helper.make_graph(
        [helper.make_node("Add", ["acc_in", "t"], ["acc_out"]), helper.make_node("Identity", ["c_in"], ["c_out"])],
        "body",
        [vi("i", [], TensorProto.INT64), vi("c_in", [], TensorProto.BOOL), vi("acc_in", shape)],
        [vi("c_out", [], TensorProto.BOOL), vi("acc_out", shape)],
    )
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["t"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Loop", ["trips", "", "x"], ["acc"], body=body, name="loop"),
        helper.make_node("Conv", ["acc", "w2"], ["y"], pads=[1, 1, 1, 1], name="conv2"),
    ]
    inits = [
        weight("w1", (C, C, 3, 3)),
        weight("w2", (C, C, 3, 3)),
        numpy_helper.from_array(np.array(3, np.int64), "trips"),
    ]
    return make_model(nodes, [vi("x", shape)], [vi("y", shape)], inits)


@pytest.mark.parametrize("build", [if_model, loop_model], ids=["if", "loop"])
def test_body_reading_a_main_graph_tensor_gives_an_exact_plan(tmp_path, capsys, build):
    model = build()
    out, _ = write_and_check(tmp_path, capsys, model)
    doc = read_plan(out)
    producer = {t: i for i, s in enumerate(doc["steps"]) for t in s["outputs"]}
    control = next(i for i, s in enumerate(doc["steps"]) if "t" in s["inputs"] and s["device"] == "host")
    assert producer["t"] < control  # the body's outer read is an input of its step
    assert any(s["device"] == "hailo" for s in doc["steps"])
    for sign in (1.0, -1.0):  # both branches of the If
        feeds = {"x": np.abs(random_feeds(model)["x"]) * sign}
        assert_tight(plan_run(out, feeds)["y"], ort_run(model, feeds)["y"])


def test_outer_reads_are_one_definition_for_protos_and_graphs():
    """Nested bodies: the inner If reads `a` (main graph) and `b` (the outer body's own value)."""
    import onnx_graphsurgeon as gs

    from rewriter.ir.scope import node_inputs, outer_tensors, subgraph_refs

    shape = [1, 3]
    inner = helper.make_graph([helper.make_node("Add", ["a", "b"], ["o"])], "inner", [], [vi("o", shape)])
    outer_then = helper.make_graph(
        [relu("a", "b"), helper.make_node("If", ["c"], ["r"], then_branch=inner, else_branch=inner)],
        "then",
        [],
        [vi("r", shape)],
    )
    node = helper.make_node("If", ["c"], ["u"], then_branch=outer_then, else_branch=outer_then)
    assert subgraph_refs(node) == ["a", "c"]
    assert node_inputs(node) == ["c", "a"]
    model = make_model(
        [relu("x", "a"), helper.make_node("Greater", ["x0", "x0"], ["c"]), node],
        [vi("x", shape), vi("x0", [], TensorProto.FLOAT)],
        [vi("u", shape)],
    )
    graph = gs.import_onnx(model)
    gs_if = next(n for n in graph.nodes if n.op == "If")
    assert [t.name for t in outer_tensors(gs_if)] == subgraph_refs(model.graph.node[2])
    assert onnx.checker.check_model(model) is None
