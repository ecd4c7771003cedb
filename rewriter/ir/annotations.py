"""Annotations the compiler attaches to graph nodes, in one place: which rule built a node and
why a node must run on the host. They live on the gs.Node while rewriting (one dict per node)
and the rule name is written to the exported ONNX node's `metadata_props`."""
from __future__ import annotations

import onnx

RULE_KEY = "rewriter.rule"
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


def pin_to_host(node, reason: str) -> None:
    """Passes that know better (FSQ cut, input normalization) pin a node to the host."""
    _notes(node)[HOST_KEY] = reason


def host_reason(node) -> str | None:
    return _get(node, HOST_KEY)


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
