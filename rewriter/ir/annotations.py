"""Annotations the compiler attaches to graph nodes, in one place: which rule built a node, which
source-model nodes it stands for, and why a node must run on the host. They live on the gs.Node
while rewriting (one dict per node); rule and origin are written to the exported ONNX node's
`metadata_props`."""

from __future__ import annotations

import json

import onnx

RULE_KEY = "rewriter.rule"
ORIGIN_KEY = "rewriter.origin"
HOST_KEY = "rewriter.host"
_SLOT = "annotations"  # attribute name on gs.Node objects


def _notes(node) -> dict:
    return node.__dict__.setdefault(_SLOT, {})


def _get(node, key: str):
    return node.__dict__.get(_SLOT, {}).get(key)


def tag(node, rule: str) -> None:
    """Record that `rule` created `node` (a gs.Node)."""
    _notes(node)[RULE_KEY] = rule


def rule_of(node) -> str | None:
    return _get(node, RULE_KEY)


def copy_tag(src, dst) -> None:
    rule = rule_of(src)
    if rule is not None:
        tag(dst, rule)


def origin_of(node) -> list[str]:
    """Names of the source model's nodes that `node` stands for: recorded by the rule that made it,
    else the node's own name (an original node)."""
    return list(_get(node, ORIGIN_KEY) or [node.name])


def set_origin(node, names) -> None:
    _notes(node)[ORIGIN_KEY] = list(dict.fromkeys(names))


def has_origin(node) -> bool:
    return _get(node, ORIGIN_KEY) is not None


def pin_to_host(node, reason: str) -> None:
    """Passes and rules that know better (FSQ cut, input normalization) pin a node to the host."""
    _notes(node)[HOST_KEY] = reason


def host_reason(node) -> str | None:
    return _get(node, HOST_KEY)


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
