"""If nodes: inline the branch a constant condition selects, and explain the ones that stay.

Constant folding makes a condition constant when it depends only on shapes (pinned inputs) or on
frozen inputs (`--freeze sr=16000`); the taken branch then becomes ordinary nodes of the enclosing
graph, so shapes and constants flow through it and the rules see its ops. Repeated with folding to
a fixed point (rewriter.ir.load), which also inlines nested Ifs once their parent is inlined.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs


def constant_if(node: gs.Node) -> bool:
    return node.op == "If" and bool(node.inputs) and isinstance(node.inputs[0], gs.Constant)


def inline_constant_ifs(graph: gs.Graph) -> int:
    """Replace every If of `graph` whose condition is a constant by its taken branch; returns how
    many were inlined. Branch-local tensors are renamed after the If node so they cannot clash with
    the enclosing graph's names; each If output is written by an Identity of the branch output
    (outputs may be outer tensors or constants; the Identity pass removes them)."""
    count = 0
    nodes: list[gs.Node] = []
    for node in list(graph.nodes):
        if not constant_if(node):
            nodes.append(node)
            continue
        taken = bool(np.asarray(node.inputs[0].values).ravel()[0])
        branch: gs.Graph = node.attrs["then_branch" if taken else "else_branch"]
        prefix = node.name or "If"
        for tensor in _local_tensors(branch):
            tensor.name = f"{prefix}/{'then' if taken else 'else'}/{tensor.name}"
        for inner in branch.nodes:
            inner.name = f"{prefix}/{inner.name}" if inner.name else ""
        outputs = list(node.outputs)
        node.inputs.clear()
        node.outputs.clear()
        nodes.extend(branch.nodes)
        for inner_out, out in zip(branch.outputs, outputs):
            nodes.append(gs.Node("Identity", name=f"{prefix}/out_{out.name}", inputs=[inner_out], outputs=[out]))
        count += 1
    if count:
        graph.nodes = nodes
    return count


def _local_tensors(graph: gs.Graph) -> list[gs.Tensor]:
    """Tensors a subgraph defines itself: its nodes' outputs and the constants only it reads."""
    members = {id(n) for n in graph.nodes}
    local = {id(t): t for n in graph.nodes for t in n.outputs}
    for n in graph.nodes:
        for t in n.inputs:
            if isinstance(t, gs.Constant) and all(id(c) in members for c in t.outputs):
                local[id(t)] = t
    return list(local.values())


def if_hint(graph: gs.Graph, tensor: gs.Variable) -> str:
    """When `tensor` is an output of an If whose condition is not constant, say which graph inputs
    the condition depends on, so the user knows what to freeze."""
    producer = tensor.inputs[0] if tensor.inputs else None
    if producer is None or producer.op != "If":
        return ""
    sources = _graph_inputs_behind(graph, producer.inputs[0])
    if sources:
        return (
            f"; its condition depends on input {', '.join(repr(s) for s in sources)}: freeze it with "
            f"--freeze {sources[0]}=VALUE so one branch is chosen"
        )
    return "; its branches produce different shapes and its condition is not constant"


def _graph_inputs_behind(graph: gs.Graph, tensor: gs.Tensor) -> list[str]:
    inputs = {id(t): t.name for t in graph.inputs}
    seen: set[int] = set()
    found: list[str] = []
    stack = [tensor]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        if id(t) in inputs:
            found.append(inputs[id(t)])
        for producer in t.inputs:
            stack.extend(producer.inputs)
    return sorted(found)
