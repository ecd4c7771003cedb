"""Rules leave alone a node a pass pinned to the host (input normalization, the FSQ quantizer): the
pass decided it runs there as it is, and a rewritten node would lose the pin and its reason."""

import onnx_graphsurgeon as gs
from dsl_util import model, rules

from rewriter.dsl import apply_rules
from rewriter.ir.annotations import host_reason, pin_to_host

TEXT = """<ir_version: 8, opset_import: ["" : 17]>
g (float[1,3,4] x) => (float[1,3,4] y) {
  r = Relu(x)
  y = Relu(r)
}"""

TO_SIGMOID = """
rule relu_to_sigmoid:
    match:
        y = Relu(x)
    rewrite:
        y = Sigmoid(x)
"""


def test_a_pinned_node_is_not_rewritten():
    graph = gs.import_onnx(model(TEXT))
    first, second = graph.nodes
    pin_to_host(first, "runs on the host")
    events = apply_rules(graph, rules(TO_SIGMOID))
    assert [e.matched for e in events] == [[second.name]]
    assert [n.op for n in graph.nodes] == ["Relu", "Sigmoid"]
    assert host_reason(graph.nodes[0]) == "runs on the host"
