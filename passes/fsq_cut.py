"""Recognize FSQ quantizers (bound with tanh, scale, Round, rescale) and pin them to the host as one
step, so the Hailo segment ends at the last op before the quantizer (like the DFC's
--end-node-names). Round itself is not a Hailo op; its elementwise neighbours are, and leaving
them on the device would split the quantizer across a device round trip for no gain."""
from __future__ import annotations

import onnx_graphsurgeon as gs

from rewriter.transform.pass_manager import Pass, PassContext
from rewriter.ir.annotations import host_reason, pin_to_host

REASON = "FSQ quantizer (tanh bound, scale, Round, rescale) runs on the host as one step"
# elementwise ops an FSQ implementation wraps around Round, with at most one non-constant input
CHAIN_OPS = {"Tanh", "Sigmoid", "Mul", "Div", "Add", "Sub", "Clip", "Round"}


def _variables(node: gs.Node) -> list:
    return [t for t in node.inputs if isinstance(t, gs.Variable) and t.name]


def _backward(node: gs.Node, found: set[int], out: list[gs.Node]) -> None:
    """Walk producers through the bounding/scaling chain before Round."""
    for tensor in _variables(node):
        for producer in tensor.inputs:
            if id(producer) in found or producer.op not in CHAIN_OPS or producer.op == "Round":
                continue
            if len(_variables(producer)) != 1 or not _private(tensor, node):
                continue
            if producer.op in ("Add", "Sub") and not _is_offset(producer):
                continue
            found.add(id(producer))
            out.append(producer)
            _backward(producer, found, out)


def _private(tensor, node: gs.Node) -> bool:
    """`tensor` feeds only `node` and, for the value rounded, the straight-through estimator
    `z + (Round(z) - z)`: Round and up to two Sub/Add besides `node` (3 consumers in all)."""
    others = [c for c in tensor.outputs if c is not node]
    return len(others) <= 2 and all(c.op in ("Round", "Sub", "Add") for c in others)


def _is_offset(node: gs.Node) -> bool:
    """Add/Sub in the chain only with a constant (the half-level offset), not residual adds."""
    return any(isinstance(t, gs.Constant) for t in node.inputs)


def _forward(node: gs.Node, found: set[int], out: list[gs.Node], region: set[int]) -> None:
    """Rescale after Round (Div/Mul/Add/Sub by constants) and the straight-through-estimator
    `z + (Round(z) - z)` whose other operands come from inside the quantizer."""
    for tensor in node.outputs:
        for consumer in tensor.outputs:
            if id(consumer) in found or consumer.op not in CHAIN_OPS - {"Tanh", "Sigmoid"}:
                continue
            feeds = [t for t in _variables(consumer) if t.inputs]
            if all(id(t.inputs[0]) in region for t in feeds):
                found.add(id(consumer))
                region.add(id(consumer))
                out.append(consumer)
                _forward(consumer, found, out, region)


class FsqCut(Pass):
    name = "fsq-cut"
    idempotent = True

    def run(self, graph: gs.Graph, ctx: PassContext) -> list[str]:
        found: set[int] = {id(n) for n in graph.nodes if host_reason(n)}
        pinned = []
        for node in graph.nodes:
            if node.op != "Round" or id(node) in found:
                continue
            chain = [node]
            found.add(id(node))
            _backward(node, found, chain)
            region = {id(n) for n in chain}
            # STE: the pre-round value z feeds both Round and the Sub/Add around it
            for n in list(chain):
                for tensor in _variables(n):
                    if tensor.inputs:
                        region.add(id(tensor.inputs[0]))
            _forward(node, found, chain, region)
            for n in chain:
                pin_to_host(n, REASON)
                pinned.append(n.name)
        return pinned
