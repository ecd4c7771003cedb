"""PassManager contract and the built-in cleanup passes (Identity / Dropout / dead nodes)."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs
import pytest
from fd_util import make_model, ort_run, random_feeds, save, vi
from onnx import helper

from passes.fold_constants import FoldConstants
from passes.remove_dead import RemoveDeadNodes
from rewriter.ir.load import load_graph, model_from_graph
from rewriter.transform.pass_manager import Pass, PassContext, PassError, PassManager, PassStat
from rewriter.transform.rules_pass import COMMON_RULES, rule_file_passes


def RemovePassthrough():  # noqa: N802  (the Identity/Dropout removal is a rule file now)
    return rule_file_passes([COMMON_RULES / "passthrough.rw"])[0][0]


S = [1, 2, 4, 4]


def _relu_graph(n=3) -> gs.Graph:
    x = gs.Variable("x", dtype=np.float32, shape=S)
    prev, nodes = x, []
    for i in range(n):
        out = gs.Variable(f"t{i}", dtype=np.float32, shape=S)
        nodes.append(gs.Node("Relu", name=f"relu{i}", inputs=[prev], outputs=[out]))
        prev = out
    return gs.Graph(nodes=nodes, inputs=[x], outputs=[prev], opset=17)


class Countdown(Pass):
    """Reports a change for the first `n` calls, then none."""

    def __init__(self, name, n):
        self.name, self.left, self.calls = name, n, 0

    def run(self, graph, ctx):
        self.calls += 1
        if self.left > 0:
            self.left -= 1
            return [f"node{self.left}"]
        return []


def test_fixed_point_loop_stops_when_nothing_changes():
    a, b = Countdown("a", 2), Countdown("b", 0)
    manager = PassManager([a, b], max_rounds=8)
    manager.run(_relu_graph())
    assert a.calls == 3 and b.calls == 3  # rounds 1, 2 change; round 3 is the quiet one
    assert [(s.name, s.round) for s in manager.stats] == [("a", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3), ("b", 3)]


def test_run_once_passes_run_before_the_loop_in_round_zero():
    once = Countdown("once", 5)
    once.repeat = False
    looped = Countdown("looped", 0)
    manager = PassManager([looped, once])
    manager.run(_relu_graph())
    assert once.calls == 1
    assert manager.stats[0].name == "once" and manager.stats[0].round == 0


def test_no_fixed_point_within_bound_raises_pass_error():
    manager = PassManager([Countdown("steady", 0), Countdown("flapper", 10**6)], max_rounds=3)
    with pytest.raises(PassError, match="3 rounds") as info:
        manager.run(_relu_graph())
    assert "flapper" in str(info.value)
    assert "steady" not in str(info.value).split("still changing:")[1]
    assert max(s.round for s in manager.stats) == 3


def test_stats_summary_and_explain():
    manager = PassManager([Countdown("a", 1), Countdown("b", 0)])
    manager.run(_relu_graph())
    assert all(isinstance(s, PassStat) and s.seconds >= 0 for s in manager.stats)
    assert manager.stats[0].changed == ["node0"]
    rows = {r["pass"]: r for r in manager.summary()}
    assert set(rows) == {"a", "b"}
    assert rows["a"]["runs"] == 2 and rows["a"]["changed"] == 1
    assert rows["b"]["runs"] == 2 and rows["b"]["changed"] == 0
    assert manager.explain() == ["[round 1] a: 1 node(s): node0"]


def test_explain_truncates_long_change_lists():
    class Many(Pass):
        name = "many"
        done = False

        def run(self, graph, ctx):
            if self.done:
                return []
            self.done = True
            return [f"n{i}" for i in range(20)]

    manager = PassManager([Many()])
    manager.run(_relu_graph())
    (line,) = manager.explain()
    assert line.startswith("[round 1] many: 20 node(s): n0, n1") and line.endswith("(+8)")


def test_pass_exception_becomes_pass_error_naming_the_pass():
    class Boom(Pass):
        name = "boom"

        def run(self, graph, ctx):
            raise KeyError("oops")

    with pytest.raises(PassError, match=r"pass 'boom' failed: KeyError") as info:
        PassManager([Countdown("first", 0), Boom()]).run(_relu_graph())
    assert "after: first" in str(info.value)


def test_context_is_given_to_passes():
    seen = []

    class Look(Pass):
        name = "look"

        def run(self, graph, ctx):
            seen.append(ctx)
            return []

    ctx = PassContext(target="T", options={"k": 1})
    PassManager([Look()]).run(_relu_graph(), ctx)
    assert seen == [ctx]


class DanglingInput(Pass):
    name = "dangle-maker"

    def run(self, graph, ctx):
        node = graph.nodes[1]
        if node.inputs[0].name == "ghost":
            return []
        node.inputs[0] = gs.Variable("ghost", dtype=np.float32, shape=S)
        return [node.name]


class WrongRankAttr(Pass):
    name = "rank-breaker"

    def run(self, graph, ctx):
        conv = next(n for n in graph.nodes if n.op == "Conv")
        if conv.attrs.get("kernel_shape") == [3]:
            return []
        conv.attrs["kernel_shape"] = [3]  # a 1-D kernel on a 2-D conv
        return [conv.name]


def _conv_graph() -> gs.Graph:
    x = gs.Variable("x", dtype=np.float32, shape=[1, 2, 8, 8])
    w = gs.Constant("w", np.ones((2, 2, 3, 3), np.float32))
    c = gs.Variable("c", dtype=np.float32, shape=[1, 2, 6, 6])
    y = gs.Variable("y", dtype=np.float32, shape=[1, 2, 6, 6])
    nodes = [
        gs.Node("Conv", name="conv", inputs=[x, w], outputs=[c], attrs={"kernel_shape": [3, 3]}),
        gs.Node("Relu", name="relu", inputs=[c], outputs=[y]),
    ]
    return gs.Graph(nodes=nodes, inputs=[x], outputs=[y], opset=17)


@pytest.mark.parametrize("breaker,graph", [(DanglingInput, _relu_graph), (WrongRankAttr, _conv_graph)])
def test_debug_mode_names_the_pass_that_broke_the_graph(breaker, graph):
    manager = PassManager([Countdown("harmless", 0), breaker()], debug=True)
    with pytest.raises(PassError, match=f"pass '{breaker.name}' broke the graph") as info:
        manager.run(graph())
    assert "after: harmless" in str(info.value)


@pytest.mark.parametrize("breaker,graph", [(DanglingInput, _relu_graph), (WrongRankAttr, _conv_graph)])
def test_without_debug_broken_graph_is_not_checked(breaker, graph, monkeypatch):
    """Without --debug the manager runs no checker or shape inference (they cost time on every
    pass): the broken graph comes back as the pass left it."""
    import onnx

    def forbidden(*args, **kwargs):
        raise AssertionError("checked without --debug")

    monkeypatch.setattr(onnx.checker, "check_model", forbidden)
    monkeypatch.setattr(onnx.shape_inference, "infer_shapes", forbidden)
    manager = PassManager([breaker()], debug=False)
    g = manager.run(graph())
    assert [s.name for s in manager.stats if s.changed] == [breaker.name]
    assert g is not None


def test_debug_mode_accepts_a_valid_pipeline(tmp_path):
    path = save(
        make_model(
            [helper.make_node("Identity", ["x"], ["i"]), helper.make_node("Relu", ["i"], ["y"])],
            [vi("x", S)],
            [vi("y", S)],
        ),
        tmp_path / "m.onnx",
    )
    graph, _ = load_graph(path)
    PassManager([FoldConstants(), RemovePassthrough(), RemoveDeadNodes()], debug=True).run(graph)
    assert [n.op for n in graph.nodes] == ["Relu"]


# ---- cleanup passes on loaded models --------------------------------------------------------


def _cleanup(tmp_path, model):
    path = save(model, tmp_path / "m.onnx")
    graph, _ = load_graph(path)
    manager = PassManager([FoldConstants(), RemovePassthrough(), RemoveDeadNodes()], debug=True)
    manager.run(graph)
    out = model_from_graph(graph)
    feeds = random_feeds(model)
    ref, got = ort_run(model, feeds), ort_run(out, feeds)
    assert list(got) == list(ref)
    for name in ref:
        np.testing.assert_array_equal(got[name], ref[name])
    return graph, manager


def test_identity_and_dropout_removed(tmp_path):
    nodes = [
        helper.make_node("Identity", ["x"], ["i"]),
        helper.make_node("Relu", ["i"], ["r"]),
        helper.make_node("Dropout", ["r"], ["d"]),
        helper.make_node("Sigmoid", ["d"], ["y"]),
    ]
    graph, manager = _cleanup(tmp_path, make_model(nodes, [vi("x", S)], [vi("y", S)]))
    assert [n.op for n in graph.nodes] == ["Relu", "Sigmoid"]
    assert graph.nodes[0].inputs[0].name == "x"
    removed = [c for s in manager.stats if s.name == "rules:passthrough.rw" for c in s.changed]
    assert len(removed) == 2


def test_identity_producing_graph_output_keeps_output_name(tmp_path):
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Identity", ["r"], ["y"]),
        helper.make_node("Sigmoid", ["r"], ["z"]),
    ]
    graph, _ = _cleanup(tmp_path, make_model(nodes, [vi("x", S)], [vi("y", S), vi("z", S)]))
    assert [n.op for n in graph.nodes] == ["Relu", "Sigmoid"]
    assert [t.name for t in graph.outputs] == ["y", "z"]
    assert graph.nodes[0].outputs[0].name == "y"


def test_dropout_chain_to_graph_output_removed(tmp_path):
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Identity", ["r"], ["i"]),
        helper.make_node("Dropout", ["i"], ["y"]),
    ]
    graph, _ = _cleanup(tmp_path, make_model(nodes, [vi("x", S)], [vi("y", S)]))
    assert [n.op for n in graph.nodes] == ["Relu"]
    assert [t.name for t in graph.outputs] == ["y"]


def test_identity_from_graph_input_to_graph_output_is_kept(tmp_path):
    nodes = [helper.make_node("Identity", ["x"], ["y"]), helper.make_node("Relu", ["x"], ["z"])]
    graph, _ = _cleanup(tmp_path, make_model(nodes, [vi("x", S)], [vi("y", S), vi("z", S)]))
    assert sorted(n.op for n in graph.nodes) == ["Identity", "Relu"]
    assert [t.name for t in graph.inputs] == ["x"] and [t.name for t in graph.outputs] == ["y", "z"]


def test_identity_between_two_graph_outputs_is_kept(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Identity", ["r"], ["y"])]
    graph, _ = _cleanup(tmp_path, make_model(nodes, [vi("x", S)], [vi("r", S), vi("y", S)]))
    assert [t.name for t in graph.outputs] == ["r", "y"]


def test_dropout_with_used_mask_is_kept(tmp_path):
    from onnx import TensorProto

    nodes = [helper.make_node("Dropout", ["x"], ["d", "mask"]), helper.make_node("Relu", ["d"], ["y"])]
    graph, _ = _cleanup(tmp_path, make_model(nodes, [vi("x", S)], [vi("y", S), vi("mask", S, TensorProto.BOOL)]))
    assert "Dropout" in [n.op for n in graph.nodes]


def test_dead_nodes_removed_but_unused_graph_input_kept(tmp_path):
    nodes = [
        helper.make_node("Relu", ["x"], ["y"]),
        helper.make_node("Sigmoid", ["x"], ["dead1"]),
        helper.make_node("Tanh", ["dead1"], ["dead2"]),
    ]
    graph, manager = _cleanup(tmp_path, make_model(nodes, [vi("x", S), vi("unused", S)], [vi("y", S)]))
    assert [n.op for n in graph.nodes] == ["Relu"]
    assert [t.name for t in graph.inputs] == ["x", "unused"]


def test_graph_input_names_never_renamed(tmp_path):
    nodes = [helper.make_node("Identity", ["in:0"], ["a"]), helper.make_node("Add", ["a", "in/1"], ["y"])]
    graph, _ = _cleanup(tmp_path, make_model(nodes, [vi("in:0", S), vi("in/1", S)], [vi("y", S)]))
    assert [t.name for t in graph.inputs] == ["in:0", "in/1"]
    assert [n.op for n in graph.nodes] == ["Add"]
    assert [t.name for t in graph.nodes[0].inputs] == ["in:0", "in/1"]
