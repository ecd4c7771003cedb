"""Match tracing: why a rule did not fire on each node the driver visited, and which other rule
consumed a node it could have used."""

from __future__ import annotations

from pathlib import Path

import onnx_graphsurgeon as gs

from .pattern import Failure


class Tracer:
    """Pass to apply_rules(tracer=...) (or several as tracers=[...]). Records one line per visited
    candidate node of rule `name`, and one per node of an op its pattern uses that another rule
    consumed."""

    def __init__(self, name: str):
        self.name = name
        self.wanted_ops: frozenset = frozenset()
        self.candidates = 0
        self._lines: list[str] = []

    def bind(self, rule) -> None:
        """Remember the ops the traced rule's pattern uses (its nodes may be consumed elsewhere)."""
        ops = set()
        for ops_i in rule.pattern.node_ops:
            ops |= ops_i
        self.wanted_ops = frozenset(ops)

    def observe(self, rule, node: gs.Node, ev) -> None:
        self.candidates += 1
        fail = Failure()
        got = rule.pattern.match(node, ev, fail)
        if got is not None:
            names = ", ".join(f"'{n.name}'" for n in got[1])
            self._lines.append(f"node '{node.name}' ({node.op}): {rule.name} matches [{names}]")
            return
        reason = fail.reason or "no match"
        if not reason.startswith("node '"):
            reason = f"node '{node.name}' ({node.op}): {reason}"
        self._lines.append(reason)

    def consumed(self, node: gs.Node, rule) -> None:
        """`rule` removed `node`; say so when the traced rule could have matched it."""
        if rule.name == self.name or node.op not in self.wanted_ops:
            return
        self._lines.append(
            f"node '{node.name}' ({node.op}): consumed by rule {rule.name} ({Path(rule.file).name}:{rule.line})"
        )

    def note(self, line: str) -> None:
        self._lines.append(line)

    def lines(self) -> list[str]:
        return list(self._lines)

    def __str__(self) -> str:
        return "\n".join(self._lines)


def trace_rule(name: str) -> Tracer:
    return Tracer(name)
