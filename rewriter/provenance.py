"""Which rule built a node: kept on the gs.Node while rewriting, written to ONNX node metadata."""
from __future__ import annotations

import onnx

RULE_KEY = "rewriter.rule"


def tag(node, rule: str) -> None:
    """Record that `rule` created `node` (a gs.Node)."""
    node.__dict__.setdefault("provenance", {})[RULE_KEY] = rule


def rule_of(node) -> str | None:
    return node.__dict__.get("provenance", {}).get(RULE_KEY)


def copy_tag(src, dst) -> None:
    rule = rule_of(src)
    if rule is not None:
        tag(dst, rule)


def stamp(model: onnx.ModelProto, gs_nodes) -> None:
    """Write provenance of `gs_nodes` (in export order) into the exported model's nodes."""
    for proto, node in zip(model.graph.node, gs_nodes):
        rule = rule_of(node)
        if rule is not None:
            entry = proto.metadata_props.add()
            entry.key, entry.value = RULE_KEY, rule


def rules_in(model: onnx.ModelProto) -> list[str]:
    """Sorted names of the rules that built nodes of an exported model."""
    found = {p.value for n in model.graph.node for p in n.metadata_props if p.key == RULE_KEY}
    return sorted(found)
