"""Graph outputs that no node computes. A plan output must be a plan input or made by a step, so an
output that folding turned into a constant gets a Constant node (a host step then emits it), and a
model that computes nothing at all is refused with a clear message instead of an empty plan."""

from __future__ import annotations

import onnx_graphsurgeon as gs

from rewriter.errors import UserError


def check_has_inputs(graph: gs.Graph) -> None:
    if not graph.inputs:
        raise UserError("the model has no inputs: its outputs are constants, there is nothing to run")


def constant_outputs_as_nodes(graph: gs.Graph) -> list[str]:
    """Give every graph output without a producer (that is not a graph input) a Constant node.
    Returns the names of the outputs handled."""
    inputs = {id(t) for t in graph.inputs}
    taken = set(graph.tensors())
    done = []
    for k, out in enumerate(graph.outputs):
        if id(out) in inputs or (isinstance(out, gs.Variable) and out.inputs):
            continue
        if not isinstance(out, gs.Constant):
            raise UserError(f"graph output {out.name!r} has no producer and no value")
        name = out.name
        values = gs.Constant(_fresh(f"{name}_value", taken), out.values)
        out.name = _fresh(f"{name}_const", taken)  # other readers keep the initializer, renamed
        made = gs.Variable(name, dtype=out.dtype, shape=list(out.shape))
        graph.nodes.append(
            gs.Node("Constant", name=_fresh(f"{name}_Constant", taken), attrs={"value": values}, outputs=[made])
        )
        graph.outputs[k] = made
        done.append(name)
    return done


def _fresh(base: str, taken: set) -> str:
    name, i = base, 0
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    taken.add(name)
    return name


def check_computes_something(graph: gs.Graph) -> None:
    if not graph.nodes:
        raise UserError(
            "the model computes nothing: every output is one of its inputs "
            "(no operation is left to place on a device or the host)"
        )
