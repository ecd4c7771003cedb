"""Rule / RuleSet, and the load-time checks that turn RuleDefs into compiled rules."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterable, Iterator

import onnx

from . import ast as A
from .errors import RuleSyntaxError, located
from .expr import EvalError, Evaluator
from .parser import parse_text, read_rule_file
from .pattern import Pattern, plan_pattern, pattern_bindings

_BUILTINS = Evaluator({}).builtins


@dataclass
class Rule:
    name: str
    file: str
    line: int
    priority: int
    summary: str
    defn: A.RuleDef = field(repr=False)
    pattern: Pattern = field(repr=False)
    match_values: set = field(repr=False, default_factory=set)
    roots: list = field(repr=False, default_factory=list)

    @property
    def anchor_op(self) -> str:
        return self.pattern.anchor_op


class RuleSet:
    """An ordered collection of rules (file order); `by_priority()` is the order the driver uses."""

    def __init__(self, rules: Iterable[Rule] = ()):
        self.rules: list[Rule] = list(rules)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def __getitem__(self, key):
        if isinstance(key, str):
            for r in self.rules:
                if r.name == key:
                    return r
            raise KeyError(key)
        return self.rules[key]

    def __add__(self, other: RuleSet) -> RuleSet:
        return RuleSet(self.rules + list(other))

    def names(self) -> list[str]:
        return [r.name for r in self.rules]

    def by_priority(self) -> list[Rule]:
        return sorted(self.rules, key=lambda r: -r.priority)  # sorted() is stable


# ---------------------------------------------------------------- summary text
def _summary(d: A.RuleDef) -> str:
    if d.comment:
        return d.comment
    producers = {n.outputs[0]: n for n in d.match if len(n.outputs) == 1}
    interior = {n.outputs[0] for n in d.match[:-1] if len(n.outputs) == 1}

    def m(n: A.MatchNode) -> str:
        args = [m(producers[a.name]) if a.name in interior else a.name for a in n.args]
        return f"{n.op}({', '.join(args)})"

    rew = {n.outputs[0]: n for n in d.rewrite if len(n.outputs) == 1}
    used = set()

    def r(n: A.RewriteNode) -> str:
        args = []
        for a in n.args:
            if isinstance(a, A.Name) and a.id in rew and a.id not in d.match[-1].outputs:
                used.add(a.id)
                args.append(r(rew[a.id]))
            else:
                args.append(a.text)
        return f"{n.op}({', '.join(args)})"

    lhs = m(d.match[-1])
    roots = [o for o in d.match[-1].outputs if o != "_"]
    rhs = "; ".join(r(n) for n in d.rewrite if set(n.outputs) & set(roots))
    return f"{lhs} -> {rhs}"


# ---------------------------------------------------------------- checks
class _Checker:
    def __init__(self, file: str, text: str, helpers: dict):
        self.file, self.text, self.helpers = file, text, helpers

    def err(self, pos: A.Pos, msg: str) -> RuleSyntaxError:
        return located(msg, self.file, self.text, pos.line, pos.col)

    def op(self, name: str, pos: A.Pos):
        if not onnx.defs.has(name):
            raise self.err(pos, f"unknown ONNX op '{name}'")

    def expr(self, e: A.Expr, bound: set, allow_ops: bool = False):
        for sub in A.walk(e):
            if isinstance(sub, A.Name) and sub.id not in bound:
                raise self.err(sub.pos, f"name '{sub.id}' is not bound")
            if isinstance(sub, A.Call) and sub.func not in _BUILTINS and sub.func not in self.helpers:
                if allow_ops and onnx.defs.has(sub.func):
                    continue
                kind = "function" if not sub.func[:1].isupper() else "helper or op"
                raise self.err(sub.pos, f"unknown {kind} '{sub.func}'")

    def compile(self, d: A.RuleDef, helpers: dict) -> Rule:
        defined_out: dict[str, A.Pos] = {}
        for n in d.match:
            self.op(n.op, n.op_pos)
            for o in n.outputs:
                if o != "_" and o in defined_out:
                    raise self.err(n.pos, f"value '{o}' is produced twice in the pattern")
                defined_out[o] = n.pos
            keys = set()
            for it in n.attrs:
                if it.key is not None:
                    if it.key in keys:
                        raise self.err(it.pos, f"attribute '{it.key}' given twice")
                    keys.add(it.key)
        binds = pattern_bindings(d.match)
        attr_names = {k for k, v in binds.items() if v != "value"}
        literals = {}
        for i, n in enumerate(d.match):
            for it in n.attrs:
                if it.key is not None and not isinstance(it.value, A.Name):
                    self.expr(it.value, set())
                    try:
                        literals[(i, it.key)] = Evaluator(helpers).eval(it.value, {})
                    except EvalError as e:
                        raise self.err(it.value.pos, f"bad attribute literal: {e}") from None
        plan = plan_pattern(d.match)
        if isinstance(plan, int):
            raise self.err(d.match[plan].pos,
                           "pattern node is not connected to the last (anchor) node")
        bound = set(binds)
        for w in d.where:
            self.expr(w, bound)
        match_values = {k for k, v in binds.items() if v == "value"}
        free = match_values - set(defined_out)
        assigned: set[str] = set()
        for st in d.rewrite:
            self.op(st.op, st.op_pos)
            for a in st.args:
                self.expr(a, bound | assigned, allow_ops=True)
                for sub in A.walk(a):
                    if isinstance(sub, A.Call) and sub.func not in _BUILTINS \
                            and sub.func not in self.helpers:
                        self.op(sub.func, sub.pos)
            for it in st.attrs:
                if it.rest is not None:
                    if binds.get(it.rest) != "attrs":
                        raise self.err(it.pos, f"'...{it.rest}' is not an attribute capture")
                else:
                    self.expr(it.value, bound)
            for o, p in zip(st.outputs, st.output_pos or [st.pos] * len(st.outputs)):
                if o == "_":
                    raise self.err(p, "'_' cannot be assigned in a rewrite")
                if o in free:
                    raise self.err(p, f"'{o}' is an input of the pattern and cannot be reassigned")
                if o in assigned:
                    raise self.err(p, f"'{o}' is assigned twice in the rewrite")
                if o in attr_names:
                    raise self.err(p, f"'{o}' is an attribute capture, not a value")
                assigned.add(o)
        roots = [o for o in d.match[-1].outputs if o != "_"]
        for o in roots:
            if o not in assigned:
                raise self.err(d.pos, f"rewrite does not assign the replaced root value '{o}'")
        pattern = Pattern(d.match, d.where, plan, literals)
        return Rule(d.name, d.file, d.pos.line, d.priority, _summary(d), d, pattern,
                    match_values, roots)


def _helpers() -> dict:
    from passes.helpers import HELPERS  # registers built-in helpers on import
    return HELPERS


def parse_rules(text: str, filename: str = "<string>", helpers: dict | None = None) -> RuleSet:
    """Parse and check rule text; raises RuleSyntaxError (file:line:col + caret)."""
    helpers = _helpers() if helpers is None else helpers
    defs = parse_text(text, filename)
    checker = _Checker(filename, text if text.endswith("\n") else text + "\n", helpers)
    seen: dict[str, A.RuleDef] = {}
    out = []
    for d in defs:
        if d.name in seen:
            raise checker.err(d.pos, f"duplicate rule name '{d.name}' (first defined at line "
                                     f"{seen[d.name].pos.line})")
        seen[d.name] = d
        out.append(checker.compile(d, helpers))
    return RuleSet(out)


def load_rule_files(paths: Iterable[str | Path]) -> RuleSet:
    """Load rule files in order into one RuleSet; rule names must be unique across files."""
    rules = RuleSet()
    where: dict[str, Rule] = {}
    for p in paths:
        p = Path(p)
        text = read_rule_file(p)
        rs = parse_rules(text, str(p))
        for r in rs:
            if r.name in where:
                first = where[r.name]
                raise located(f"duplicate rule name '{r.name}' (first defined at "
                              f"{first.file}:{first.line})", str(p), text, r.line, r.defn.pos.col)
            where[r.name] = r
        rules = rules + rs
    return rules


def list_rules(rule_files: Iterable[str | Path]) -> list[tuple[str, str, int, str]]:
    """(name, file, line, summary) per rule, for the CLI."""
    return [(r.name, r.file, r.line, r.summary) for r in load_rule_files(rule_files)]
