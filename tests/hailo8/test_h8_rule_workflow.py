"""A rule author's workflow on the CLI: source node names, --disable-rule, --rules-first, unique
rule names, repeatable --trace-rule with "consumed by", and one-line errors for a rule that breaks
the graph."""

import io
import json
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import onnx
import pytest
from onnx import helper
from util import TCN_MODEL, make_model, rewrite_and_run, vi, weight

CONV1 = "/tcn_encoder/network/network.0/net/conv1/Conv"


def cli(*args):
    from rewriter.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def conv1d_relu(tmp_path):
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="src_conv", kernel_shape=[3], pads=[1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="src_relu"),
        helper.make_node("Mul", ["r", "k"], ["y"], name="src_mul"),
    ]
    inits = [weight("w", [8, 4, 3]), onnx.numpy_helper.from_array(np.full([1], 2.0, np.float32), "k")]
    model = make_model(nodes, [vi("x", [1, 4, 32])], [vi("y", None)], inits)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    return path


@pytest.fixture
def tcn():
    if not TCN_MODEL.is_file():
        pytest.skip(f"TCN fixture not present at {TCN_MODEL.parent}")
    return TCN_MODEL


def test_source_node_names_cut_the_rewritten_graph(tcn, tmp_path):
    code, out, err = cli("inspect", tcn, "--start-node", CONV1, "-q", "--json")
    assert code == 0, err
    doc = json.loads(out)
    rows = {r["node"]: r for r in doc["placement"]}
    cut = [r for r in rows.values() if r["reason"].startswith("cut by")]
    assert [r["node"] for r in cut] == ["/Transpose"]  # what precedes conv1 goes to the host
    first_hailo = next(r for r in doc["placement"] if r["device"] == "hailo")
    assert first_hailo["op"] == "Conv" and first_hailo["origin"] == [CONV1]
    res = rewrite_and_run(tcn, tmp_path, extra_args=["--end-node", CONV1], name="tcn_end")
    hailo = next(s for s in res.doc["steps"] if s["device"] == "hailo")
    convs = [n for n in res.segments[hailo["name"]].graph.node if n.op_type == "Conv"]
    origins = {p.value for n in convs for p in n.metadata_props if p.key == "rewriter.origin"}
    assert json.dumps([CONV1]) in origins and len(convs) == 2  # conv1 and the parallel downsample


def test_placement_table_shows_source_names(tcn):
    code, out, _ = cli("inspect", tcn, "--start-node", CONV1, "-q")
    assert code == 0
    table = out.split("Sent to host")[1]
    assert "source nodes" in table and CONV1 in table


def test_unknown_cut_name_is_one_line(tcn):
    code, _, err = cli("inspect", tcn, "--end-node", "/no/such/Conv", "-q")
    assert code == 2 and err.count("\n") == 1 and "before or after rewriting" in err


def test_disable_rule(tmp_path):
    path = conv1d_relu(tmp_path)
    code, out, err = cli("inspect", path, "--disable-rule", "conv1d_to_conv2d", "-q", "--json")
    assert code == 0, err
    ops = [r["op"] for r in json.loads(out)["placement"]]
    assert "Unsqueeze" not in ops and "Conv" in ops  # the Conv1d stays rank 3
    code, _, err = cli("inspect", path, "--disable-rule", "no_such_rule", "-q")
    assert code == 2 and err == "rewrite: error: --disable-rule no_such_rule: no loaded rule has that name\n"


USER_RULE = """
rule my_conv1d_relu:
    match:
        c = Conv(x, w: const) {...attrs}
        y = Relu(c)
    where:
        rank(x) == 3 and attrs["dilations"] == None
    rewrite:
        y = Relu(Conv(x, w) {...attrs, dilations: [1]})
"""


def test_user_rules_first_and_trace_of_consumed_nodes(tmp_path):
    path = conv1d_relu(tmp_path)
    rules = tmp_path / "mine.rw"
    rules.write_text(USER_RULE)
    code, out, err = cli(
        "inspect", path, "--rules", rules, "--trace-rule", "my_conv1d_relu", "--trace-rule", "conv1d_to_conv2d", "-q"
    )
    assert code == 0, err
    mine = out.split("Trace of rule my_conv1d_relu:")[1].split("Trace of rule")[0]
    assert "node 'src_conv' (Conv): consumed by rule conv1d_to_conv2d (conv1d.rw:" in mine
    assert "Trace of rule conv1d_to_conv2d:" in out and "applied conv1d_to_conv2d at 'src_conv'" in out
    code, out, err = cli("inspect", path, "--rules", rules, "--rules-first", "--trace-rule", "my_conv1d_relu", "-q")
    assert code == 0, err
    assert "applied my_conv1d_relu at 'src_relu'" in out
    rewrite_and_run(path, tmp_path, extra_args=["--rules", rules, "--rules-first"], name="first")  # parity


def test_rule_names_are_unique_across_all_files(tmp_path):
    path = conv1d_relu(tmp_path)
    rules = tmp_path / "mine.rw"
    rules.write_text(USER_RULE.replace("my_conv1d_relu", "conv1d_to_conv2d"))
    code, _, err = cli("inspect", path, "--rules", rules, "-q")
    assert code == 2 and err.count("\n") == 1
    assert f"{rules}:2:6: duplicate rule name 'conv1d_to_conv2d' (first defined at " in err
    assert "conv1d.rw:" in err


def test_rule_that_breaks_the_graph_is_one_line(tmp_path):
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[1, 1]),
        helper.make_node("Mul", ["c", "one"], ["y"], name="mul_by_ones"),
    ]
    inits = [weight("w", [4, 3, 1, 1]), onnx.numpy_helper.from_array(np.ones([2, 1, 4, 5, 5], np.float32), "one")]
    model = make_model(nodes, [vi("x", [1, 3, 5, 5])], [vi("y", None)], inits)
    path = tmp_path / "bcast.onnx"
    onnx.save(model, str(path))
    rules = tmp_path / "bad.rw"
    rules.write_text("""
rule mul_one_is_identity:
    match:
        y = Mul(x, c: const)
    where:
        value(c) == 1.0
    rewrite:
        y = Identity(x)
""")
    code, _, err = cli(path, "--rules", rules, "-o", tmp_path / "out.plan", "-q")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "rule mul_one_is_identity" in err and "at node 'mul_by_ones'" in err
    assert "changes the shape of 'y' from [2, 1, 4, 5, 5] to [1, 4, 5, 5]" in err
    assert not (tmp_path / "out.plan").exists()


def test_helpers_file_in_the_pipeline(tmp_path):
    path = conv1d_relu(tmp_path)
    (tmp_path / "h.py").write_text(
        "import numpy as np\nfrom rewriter.dsl import helper\n\n\n"
        "@helper('halved', kinds=('const',))\ndef halved(k):\n    '''Half of k.'''\n    return np.asarray(k) / 2\n"
    )
    rules = tmp_path / "mine.rw"
    rules.write_text("""
rule mul_as_two_halves:
    match:
        y = Mul(x, k: const)
    where:
        value(k) == 2.0
    rewrite:
        y = Add(Mul(x, halved(k)), Mul(x, halved(k)))
""")
    res = rewrite_and_run(
        path, tmp_path, extra_args=["--rules", rules, "--helpers", tmp_path / "h.py", "--rules-first"], name="halves"
    )
    assert res.ops()["Add"] == 1
    code, _, err = cli("inspect", path, "--rules", rules, "-q")
    assert code == 2 and "unknown function 'halved'" in err
