"""rewriter.ir.edit.remove_dead_nodes (the rule driver's cleanup) does what gs's cleanup does, on
random DAGs with dead branches, values used twice, graph outputs in the middle of chains, graph
inputs nothing reads, and graphs with an If body (handed to gs)."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs
import pytest

from rewriter.ir.edit import remove_dead_nodes


def random_graph(seed: int) -> gs.Graph:
    rng = np.random.default_rng(seed)
    inputs = [gs.Variable(f"in{i}", np.float32, [2]) for i in range(int(rng.integers(1, 4)))]
    values = list(inputs)
    nodes = []
    for k in range(int(rng.integers(1, 40))):
        picks = rng.choice(len(values), size=int(rng.integers(1, 3)))
        ins = [values[int(i)] for i in picks]  # a value may feed a node twice
        outs = [gs.Variable(f"v{k}_{j}", np.float32, [2]) for j in range(int(rng.integers(1, 3)))]
        nodes.append(gs.Node("Add" if len(ins) == 2 else "Relu", f"n{k}", inputs=ins, outputs=outs))
        values += outs
    produced = values[len(inputs) :]
    count = min(len(produced), int(rng.integers(1, 4)))
    outputs = [produced[int(i)] for i in rng.choice(len(produced), size=count, replace=False)]
    order = [nodes[int(i)] for i in rng.permutation(len(nodes))] if rng.random() < 0.3 else nodes
    return gs.Graph(nodes=order, inputs=inputs, outputs=outputs)


def shape_of(graph: gs.Graph):
    return [(n.name, [t.name for t in n.inputs], [t.name for t in n.outputs]) for n in graph.nodes]


@pytest.mark.parametrize("seed", range(200))
def test_same_nodes_as_gs_cleanup(seed):
    ours, theirs = random_graph(seed), random_graph(seed)
    before = {n.name: n for n in ours.nodes}
    remove_dead_nodes(ours)
    theirs.cleanup(remove_unused_graph_inputs=False)
    assert shape_of(ours) == shape_of(theirs)
    assert [t.name for t in ours.inputs] == [t.name for t in theirs.inputs]
    kept = {n.name for n in ours.nodes}
    for name, node in before.items():
        if name not in kept:  # detached: no tensor still lists it as producer or consumer
            assert not node.inputs and not node.outputs
    for node in ours.nodes:
        for t in node.inputs:
            assert all(c.name in kept for c in t.outputs)


def test_graph_with_a_body_goes_to_gs():
    x = gs.Variable("x", np.float32, [2])
    cond = gs.Constant("c", np.array(True))
    inner_out = gs.Variable("inner", np.float32, [2])
    dead_out = gs.Variable("dead_inner", np.float32, [2])
    body = gs.Graph(
        nodes=[
            gs.Node("Relu", "b0", inputs=[x], outputs=[inner_out]),
            gs.Node("Relu", "b1", inputs=[x], outputs=[dead_out]),
        ],
        outputs=[inner_out],
    )
    y = gs.Variable("y", np.float32, [2])
    dead = gs.Variable("dead", np.float32, [2])
    graph = gs.Graph(
        nodes=[
            gs.Node("If", "if", attrs={"then_branch": body, "else_branch": body.copy()}, inputs=[cond], outputs=[y]),
            gs.Node("Relu", "unused", inputs=[x], outputs=[dead]),
        ],
        inputs=[x],
        outputs=[y],
    )
    remove_dead_nodes(graph)
    assert [n.name for n in graph.nodes] == ["if"]
    assert [n.name for n in body.nodes] == ["b0"]  # gs cleans bodies too


def _links(graph: gs.Graph) -> list:
    """Every producer/consumer list of the graph's tensors and nodes, by identity."""
    tensors = {id(t): t for n in graph.nodes for t in list(n.inputs) + list(n.outputs)}
    by_id = {id(n): n.name for n in graph.nodes}
    return sorted(
        (t.name, [by_id.get(id(n)) for n in t.inputs], [by_id.get(id(n)) for n in t.outputs]) for t in tensors.values()
    ) + [(n.name, [t.name for t in n.inputs], [t.name for t in n.outputs]) for n in graph.nodes]


@pytest.mark.parametrize("seed", range(20))
def test_detach_leaves_the_links_gs_clear_leaves(seed):
    """detach(node) finds the node in its tensors' lists by identity; the links left are those of
    node.inputs.clear(); node.outputs.clear() (values read twice included)."""
    from rewriter.ir.edit import detach

    for k in range(len(random_graph(seed).nodes)):
        ours, theirs = random_graph(seed), random_graph(seed)
        detach(ours.nodes[k])
        theirs.nodes[k].inputs.clear()
        theirs.nodes[k].outputs.clear()
        assert _links(ours) == _links(theirs)


def test_detach_removes_the_node_itself_not_an_equal_twin():
    """Two structurally equal nodes reading one value (gs's Node.__eq__ compares name, op, attrs and
    tensors): gs's list.remove may unlink the twin; detach unlinks the node it is given."""
    from rewriter.ir.edit import detach

    x = gs.Variable("x", np.float32, [2])
    twin_out = gs.Variable("y", np.float32, [2])
    first = gs.Node("Relu", "r", inputs=[x], outputs=[twin_out])
    second = gs.Node("Relu", "r", inputs=[x])
    second.outputs.append(twin_out)  # the same name, op, inputs and outputs: equal under Node.__eq__
    assert first == second and x.outputs[0] is first
    detach(second)
    assert len(x.outputs) == 1 and x.outputs[0] is first and twin_out.inputs[0] is first
    assert list(second.inputs) == [] and list(second.outputs) == []
