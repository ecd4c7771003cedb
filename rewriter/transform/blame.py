"""When the rewritten graph fails to export or infer, name the rule-made node that broke it.

The driver already refuses rewrites that change a replaced value's type; this is the net under
it (a helper returning a wrong-sized constant, a native pass): the first node, in graph order,
that onnx's inference rejects or whose recorded output shape disagrees with what it computes.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from rewriter.ir.annotations import origin_of, rule_of


def _shape(s):
    return None if s is None else [d if isinstance(d, (int, np.integer)) else None for d in s]


def blame(graph: gs.Graph) -> str | None:
    """A one-line message naming the culprit node and the rule that made it, or None."""
    from rewriter.dsl.localshape import InferenceFailed, infer_results

    for node in graph.nodes:
        rule = rule_of(node)
        try:
            results = infer_results(node)
        except InferenceFailed as exc:
            return _message(node, rule, f"is invalid: {exc}")
        if results is None:
            continue
        for out, got in zip(node.outputs, results):
            if got is None or out.shape is None or got[1] is None:
                continue
            have, want = _shape(out.shape), _shape(got[1])
            if len(have) != len(want) or any(a is not None and b is not None and a != b for a, b in zip(have, want)):
                return _message(
                    node,
                    rule,
                    f"computes shape {list(got[1])} for '{out.name}', which the graph records as {list(out.shape)}",
                )
    return None


def _message(node: gs.Node, rule: str | None, what: str) -> str:
    source = ", ".join(origin_of(node))
    by = f"made by rule {rule} from {source}" if rule else "not made by a rule"
    return f"node '{node.name}' ({node.op}, {by}) {what}"
