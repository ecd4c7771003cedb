"""Rule files as passes: each file's rules applied by the DSL's worklist driver to a fixed point.

All files of a run (the common ones, the target's, the user's) are loaded together, so a rule name
is unique across all of them; `--disable-rule` drops rules by name and `--trace-rule` (repeatable)
attaches tracers that every file's pass shares (a tracer hears when another rule consumes a node
its rule could have used)."""

from __future__ import annotations

import os
from pathlib import Path

import onnx_graphsurgeon as gs

from rewriter.dsl import RuleSyntaxError, apply_rules, load_rule_files
from rewriter.dsl.parser import read_rule_file
from rewriter.errors import UserError
from rewriter.target import RULES_DIR
from rewriter.transform.pass_manager import Pass, PassContext

COMMON_RULES = RULES_DIR / "common"


_LOADED: dict[tuple, tuple] = {}  # rule files already loaded in this process (see load_rules_checked)


def load_rules_checked(paths, helpers):
    """Load rule files together; a missing file is a user error, syntax errors keep file:line:col.
    A process that rewrites several models (tests, notebooks, benchmarks) loads the same files
    once: the result is kept, keyed by the files' names and texts and the helper registry, whose
    rules are never changed after loading."""
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.is_file():
            raise UserError(f"no such rule file: {path}")
    if os.environ.get("REWRITER_NO_CACHE"):
        return load_rule_files(paths, helpers)
    key = (tuple((str(p), read_rule_file(p)) for p in paths), id(helpers), len(helpers or ()))
    hit = _LOADED.get(key)
    if hit is not None and hit[0] is helpers:
        return hit[1]
    rules = load_rule_files(paths, helpers)
    if len(_LOADED) >= 16:
        _LOADED.pop(next(iter(_LOADED)))
    _LOADED[key] = (helpers, rules)
    return rules


class RuleFilePass(Pass):
    idempotent = True  # the driver runs the file's rules to their fixed point
    leaves_sorted = True  # the driver sorts the graph it edits (and one it finds unsorted)

    def __init__(self, path: Path, rules, tracers=()):
        self.path = Path(path)
        self.rules = rules
        self.name = f"rules:{self.path.name}"
        self.tracers = list(tracers)
        self.events = []

    def run(self, graph: gs.Graph, ctx: PassContext) -> list[str]:
        events = apply_rules(graph, self.rules, target=ctx.target, tracers=self.tracers, assume_sorted=ctx.sorted)
        self.events.extend(events)
        return [f"{name} ({e.rule})" for e in events for name in (e.created or e.matched[-1:])]


def rule_file_passes(paths: list[Path], trace_rules=(), helpers=None, disabled=()) -> tuple[list[Pass], list]:
    """One pass per file, in order, the files loaded together. Returns the passes and the tracers
    (one per traced rule name, in the order given)."""
    from rewriter.dsl import trace_rule as make_tracer

    paths = [Path(p) for p in paths]
    if isinstance(trace_rules, str):
        trace_rules = [trace_rules]
    rules = load_rules_checked(paths, helpers)
    known = set(rules.names())
    for name in disabled:
        if name not in known:
            raise UserError(f"--disable-rule {name}: no loaded rule has that name")
    for name in trace_rules:
        if name not in known:
            raise UserError(f"--trace-rule {name}: no loaded rule has that name")
        if name in disabled:
            raise UserError(f"--trace-rule {name}: the rule is disabled (--disable-rule)")
    rules = rules.without(disabled)
    tracers = [make_tracer(name) for name in dict.fromkeys(trace_rules)]
    for t in tracers:
        t.bind(rules[t.name])
    by_file: dict[str, list] = {}
    for r in rules:
        by_file.setdefault(r.file, []).append(r)
    from rewriter.dsl import RuleSet

    passes = [RuleFilePass(p, RuleSet(by_file.get(str(p), [])), tracers) for p in paths]
    return passes, tracers


__all__ = ["COMMON_RULES", "RuleFilePass", "RuleSyntaxError", "rule_file_passes"]
