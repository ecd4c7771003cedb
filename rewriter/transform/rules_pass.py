"""A rule file as a pass: its rules applied by the DSL's worklist driver to a fixed point."""
from __future__ import annotations

from pathlib import Path

import onnx_graphsurgeon as gs

from rewriter.dsl import RuleSyntaxError, apply_rules, load_rule_files
from rewriter.errors import UserError
from rewriter.transform.pass_manager import Pass, PassContext


def load_rules_checked(path: Path):
    """Load one rule file; a missing file is a user error, syntax errors keep file:line:col."""
    if not Path(path).is_file():
        raise UserError(f"no such rule file: {path}")
    return load_rule_files([path])


class RuleFilePass(Pass):
    idempotent = True  # the driver runs the file's rules to their fixed point

    def __init__(self, path: Path, tracer=None):
        self.path = Path(path)
        self.rules = load_rules_checked(self.path)
        self.name = f"rules:{self.path.name}"
        self.tracer = tracer if tracer is not None and tracer.name in {r.name for r in self.rules} else None
        self.events = []

    def run(self, graph: gs.Graph, ctx: PassContext) -> list[str]:
        events = apply_rules(graph, self.rules, tracer=self.tracer)
        self.events.extend(events)
        return [f"{name} ({e.rule})" for e in events for name in e.created]


def rule_file_passes(paths: list[Path], trace_rule: str | None = None) -> tuple[list[Pass], object]:
    """One pass per file, in order; with --trace-rule, a tracer attached to the file defining it."""
    tracer = None
    if trace_rule:
        from rewriter.dsl import trace_rule as make_tracer
        tracer = make_tracer(trace_rule)
    passes = [RuleFilePass(p, tracer) for p in paths]
    if tracer is not None and not any(p.tracer is tracer for p in passes):
        raise UserError(f"--trace-rule {trace_rule}: no loaded rule has that name")
    return passes, tracer


__all__ = ["RuleFilePass", "rule_file_passes", "RuleSyntaxError"]
