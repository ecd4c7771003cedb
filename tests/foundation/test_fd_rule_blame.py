"""rewriter/transform/blame.py: a graph a pass broke is reported by the node and the rule that made it."""

import numpy as np
import onnx_graphsurgeon as gs

from rewriter.ir.annotations import set_origin, tag
from rewriter.transform.blame import blame


def _graph(shape_of_y):
    x = gs.Variable("x", np.float32, [1, 4])
    r = gs.Variable("r", np.float32, [1, 4])
    y = gs.Variable("y", np.float32, shape_of_y)
    relu = gs.Node("Relu", "relu", {}, [x], [r])
    mul = gs.Node("Mul", "made_mul", {}, [r, gs.Constant("c", np.ones([3, 1, 4], np.float32))], [y])
    tag(mul, "my_rule")
    set_origin(mul, ["/model/Mul"])
    return gs.Graph(nodes=[relu, mul], inputs=[x], outputs=[y], opset=17)


def test_blame_names_the_rule_and_source_node():
    message = blame(_graph([1, 4]))
    assert message == (
        "node 'made_mul' (Mul, made by rule my_rule from /model/Mul) computes shape "
        "[3, 1, 4] for 'y', which the graph records as [1, 4]"
    )


def test_consistent_graph_has_no_culprit():
    assert blame(_graph([3, 1, 4])) is None


def test_invalid_node_is_named():
    g = _graph([3, 1, 4])
    g.nodes[1].inputs[1] = gs.Constant("c2", np.ones([5], np.float32))  # cannot broadcast with 4
    assert "is invalid" in blame(g) and "my_rule" in blame(g)
