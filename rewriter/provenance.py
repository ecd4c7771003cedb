"""Which rule built a node, and which source nodes it stands for: kept on the gs.Node while
rewriting, written to ONNX node metadata."""
from __future__ import annotations

import json

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
    """Write provenance of `gs_nodes` (in export order) into the exported model's nodes: the rule
    that built a node and, as a JSON list, the source model's node names it stands for."""
    for proto, node in zip(model.graph.node, gs_nodes):
        rule = rule_of(node)
        if rule is not None:
            entry = proto.metadata_props.add()
            entry.key, entry.value = RULE_KEY, rule
        if has_origin(node):
            entry = proto.metadata_props.add()
            entry.key, entry.value = ORIGIN_KEY, json.dumps(origin_of(node))


def rules_in(model: onnx.ModelProto) -> list[str]:
    """Sorted names of the rules that built nodes of an exported model."""
    found = {p.value for n in model.graph.node for p in n.metadata_props if p.key == RULE_KEY}
    return sorted(found)


ORIGIN_KEY = "rewriter.origin"


def origin_of(node) -> list[str]:
    """Names of the source model's nodes that `node` stands for: recorded by the rule that made it,
    else the node's own name (an original node)."""
    return list(node.__dict__.get("provenance", {}).get(ORIGIN_KEY) or [node.name])


def set_origin(node, names) -> None:
    node.__dict__.setdefault("provenance", {})[ORIGIN_KEY] = list(dict.fromkeys(names))


def has_origin(node) -> bool:
    return ORIGIN_KEY in node.__dict__.get("provenance", {})
