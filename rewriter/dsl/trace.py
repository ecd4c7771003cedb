"""Match tracing: why a rule did not fire on each node the driver visited."""
from __future__ import annotations

import onnx_graphsurgeon as gs

from .pattern import Failure


class Tracer:
    """Pass to apply_rules(tracer=...). Records one line per visited node for rule `name`."""

    def __init__(self, name: str):
        self.name = name
        self._lines: list[str] = []

    def observe(self, rule, node: gs.Node, ev) -> None:
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

    def note(self, line: str) -> None:
        self._lines.append(line)

    def lines(self) -> list[str]:
        return list(self._lines)

    def __str__(self) -> str:
        return "\n".join(self._lines)


def trace_rule(name: str) -> Tracer:
    return Tracer(name)
