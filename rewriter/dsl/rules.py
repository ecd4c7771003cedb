"""Rule / RuleSet, and the load-time checks that turn RuleDefs into compiled rules."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rewriter.ir.opfacts import is_onnx_op

from . import ast as A
from .defs import check_defs, expand, expand_rule
from .errors import RuleSyntaxError, located
from .expr import BUILTINS, RESERVED, EvalError, Evaluator
from .helpers import HelperRegistry
from .parser import parse_text, read_rule_file
from .pattern import Pattern, pattern_bindings, plan_pattern


@dataclass
class Rule:
    """A compiled rule: its pattern, conditions and rewrite, and where it was written."""

    name: str
    file: str
    line: int
    priority: int
    summary: str
    defn: A.RuleDef = field(repr=False)
    pattern: Pattern = field(repr=False)
    match_values: set = field(repr=False, default_factory=set)
    roots: list = field(repr=False, default_factory=list)
    helpers: object = field(repr=False, default=None)  # the registry the rule was checked against

    @property
    def anchor_op(self) -> str:
        return self.pattern.anchor_op

    @property
    def anchor_ops(self) -> frozenset:
        return self.pattern.anchor_ops

    @property
    def pins_only(self) -> bool:
        """A rule of `host:` pins alone: it keeps what it matched and annotates it."""
        return bool(self.defn.host) and not self.defn.rewrite


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

    def without(self, names: Iterable[str]) -> RuleSet:
        drop = set(names)
        return RuleSet([r for r in self.rules if r.name not in drop])

    @property
    def helpers(self) -> HelperRegistry:
        """The helper registry the rules were loaded with (merged if they differ)."""
        regs = list({id(r.helpers): r.helpers for r in self.rules if r.helpers is not None}.values())
        if not regs:
            return HelperRegistry()
        out = regs[0]
        for reg in regs[1:]:
            out = out.merged(reg)
        return out

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
        if n.op is None:
            return n.value.text
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
    if not d.rewrite and d.host:
        rhs = f"host: {d.host[0].reason.text}"
    return f"{lhs} -> {rhs}"


# ---------------------------------------------------------------- checks
class _Checker:
    """Load-time checks of one file's RuleDefs; every error is file:line:col + source + caret."""

    def __init__(self, file: str, text: str, helpers):
        self.file, self.text, self.helpers = file, text, helpers
        self._lets: tuple | None = None  # (the file's lets, their values)

    def err(self, pos: A.Pos, msg: str) -> RuleSyntaxError:
        return located(msg, self.file, self.text, pos.line, pos.col)

    def op(self, name: str, pos: A.Pos, opvars: dict | None = None):
        if opvars and name in opvars:
            return
        if not is_onnx_op(name):
            raise self.err(pos, f"unknown ONNX op '{name}'")

    def is_op(self, name: str, opvars: dict) -> bool:
        return name in opvars or (name not in self.helpers and name not in BUILTINS and is_onnx_op(name))

    # -- expressions
    def expr(self, e: A.Expr, bound: dict, opvars: dict, in_rewrite: bool = False, spread_ok: bool = False):
        """Check names, calls (arity, declared argument kinds) and where ops may appear.
        `bound` maps names to their kind ("value", "const", "attr", "attrs", "op", "local")."""
        if isinstance(e, A.Name):
            if e.id not in bound and e.id not in RESERVED:
                raise self.err(e.pos, f"name '{e.id}' is not bound")
            if bound.get(e.id) == "op" and not in_rewrite:
                return
            return
        if isinstance(e, A.Spread):
            if not spread_ok:
                raise self.err(e.pos, "'...' spreads only into the inputs of a rewrite op")
            self.expr(e.x, bound, opvars, in_rewrite)
            return
        if isinstance(e, A.ListComp):
            if e.var in bound:
                raise self.err(e.pos, f"comprehension variable '{e.var}' shadows a bound name")
            self.expr(e.seq, bound, opvars, in_rewrite)
            self.expr(e.item, {**bound, e.var: "local"}, opvars, in_rewrite)
            return
        if isinstance(e, A.Call):
            if in_rewrite and self.is_op(e.func, opvars):
                self.op(e.func, e.pos, opvars)
                for a in e.args:
                    self.expr(a, bound, opvars, in_rewrite, spread_ok=True)
                self.attrs(e.attrs or [], bound, opvars)
                return
            if e.attrs:
                raise self.err(e.attrs[0].pos, f"'{e.func}' is not an op: it takes no attributes")
            self.call(e, bound)
            for a in e.args:
                self.expr(a, bound, opvars, in_rewrite)
            return
        for sub in A.children(e):
            self.expr(sub, bound, opvars, in_rewrite)

    def call(self, e: A.Call, bound: dict):
        """Known function, right number of arguments, declared kinds."""
        if any(isinstance(a, A.Spread) for a in e.args):
            raise self.err(e.pos, f"'...' cannot spread into '{e.func}': only into rewrite ops")
        n = len(e.args)
        if e.func in BUILTINS:
            lo, hi, kinds, _ = BUILTINS[e.func]
            if n < lo or (hi is not None and n > hi):
                want = str(lo) if lo == hi else f"{lo} to {hi}" if hi else f"at least {lo}"
                raise self.err(e.pos, f"'{e.func}' takes {want} argument(s), got {n}")
            self.kinds(e, kinds, bound, e.func)
            return
        if e.func not in self.helpers:
            kind = "function" if not e.func[:1].isupper() else "helper or op"
            raise self.err(e.pos, f"unknown {kind} '{e.func}'")
        spec = self.helpers.spec(e.func) if hasattr(self.helpers, "spec") else None
        if spec is None:
            return
        msg = spec.arity_error(n)
        if msg:
            raise self.err(e.pos, msg)
        self.kinds(e, spec.kinds, bound, f"helper '{e.func}'")

    def kinds(self, e: A.Call, kinds, bound: dict, what: str):
        if not kinds:
            return
        for i, (arg, kind) in enumerate(zip(e.args, kinds)):
            have = bound.get(arg.id) if isinstance(arg, A.Name) else None
            if have is None or have == "local" or kind == "any":
                if isinstance(arg, A.Lit) and arg.value is not None and kind in ("value", "const"):
                    raise self.err(
                        arg.pos, f"argument {i + 1} of {what} must be a graph value, not the literal {arg.text}"
                    )
                continue
            is_value = have in ("value", "const")
            if kind == "value" and not is_value:
                raise self.err(
                    arg.pos, f"argument {i + 1} of {what} must be a graph value; '{arg.id}' is an {_KIND_TEXT[have]}"
                )
            if kind == "const" and have != "const":
                raise self.err(
                    arg.pos,
                    f"argument {i + 1} of {what} must be a constant "
                    f"(capture it as `{arg.id}: const`); '{arg.id}' is "
                    f"{'a value that may vary' if is_value else 'an ' + _KIND_TEXT[have]}",
                )
            if kind == "attr" and is_value:
                raise self.err(
                    arg.pos, f"argument {i + 1} of {what} must be an attribute or number; '{arg.id}' is a graph value"
                )

    def attrs(self, items: list, bound: dict, opvars: dict):
        keys = set()
        for it in items:
            if it.rest is not None:
                if bound.get(it.rest) != "attrs":
                    raise self.err(it.pos, f"'...{it.rest}' is not an attribute capture")
            else:
                if it.key in keys:
                    raise self.err(it.pos, f"attribute '{it.key}' given twice")
                keys.add(it.key)
                self.expr(it.value, bound, opvars)

    def lets(self, d: A.RuleDef, helpers) -> dict:
        """The values of the file's `let`s (every rule of a file holds the same ones: evaluated once)."""
        if self._lets is None or self._lets[0] is not d.lets:
            lets: dict = {}
            for name, let in d.lets.items():
                value = expand(let.value, d.defs, set(), self.err) if d.defs else let.value  # a let may call defs
                self.expr(value, {k: "attr" for k in lets}, {})
                try:
                    lets[name] = Evaluator(helpers).eval(value, lets)
                except EvalError as e:
                    raise self.err(let.value.pos, f"bad value for '{name}': {e}") from None
            self._lets = (d.lets, lets)
        return self._lets[1]

    # -- a rule
    def compile(self, d: A.RuleDef, helpers) -> Rule:
        opvars = d.opvars
        for st in d.rewrite:  # `y = f(...)` of a helper, builtin or def computes a value, not a node
            if (
                st.op is not None
                and st.op not in opvars
                and (st.op in self.helpers or st.op in BUILTINS or st.op in d.defs)
            ):
                st.value = A.Call(st.op_pos, st.op, st.op, st.args, st.attrs or None)
                st.op, st.args, st.attrs = None, [], []
        if d.defs:  # calls of the file's defs become their bodies before anything reads the rule
            taken = set(pattern_bindings(d.match)) | set(opvars) | set(d.lets)
            expand_rule(d, taken, self.err)
        for v in opvars.values():
            if is_onnx_op(v.name):
                raise self.err(v.pos, f"op variable '{v.name}' has the name of an ONNX op")
            if not v.ops:
                raise self.err(v.pos, f"op variable '{v.name}' has no ops")
            for op in v.ops:
                if not is_onnx_op(op):
                    raise self.err(v.pos, f"unknown ONNX op '{op}' in the set of '{v.name}'")
        used_vars = {n.op for n in d.match if n.op in opvars}
        for v in opvars.values():
            if v.name not in used_vars:
                raise self.err(v.pos, f"op variable '{v.name}' is not used in the pattern")
        defined_out: dict[str, A.Pos] = {}
        for n in d.match:
            self.op(n.op, n.op_pos, opvars)
            for a in n.args[:-1]:
                if a.rest:
                    raise self.err(a.pos, f"'...{a.name}' must be the last input of the pattern node")
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
        lets = self.lets(d, helpers)
        for name in list(binds) + list(opvars):
            if name in RESERVED:
                raise self.err(d.pos, f"'{name}' is reserved (the target's facts)")
            if name in lets:
                raise self.err(d.pos, f"'{name}' is a file-level constant (let); pick another name")
        consts = {a.name for n in d.match for a in n.args if a.const}
        bound: dict[str, str] = {k: ("const" if k in consts else v) for k, v in binds.items()}
        bound.update({k: "op" for k in opvars})
        bound.update({k: "attr" for k in lets})
        attr_names = {k for k, v in binds.items() if v != "value"}
        literals = {}
        for i, n in enumerate(d.match):
            for it in n.attrs:
                if it.key is not None and not isinstance(it.value, A.Name):
                    self.expr(it.value, {}, {})
                    try:
                        literals[(i, it.key)] = Evaluator(helpers).eval(it.value, {})
                    except EvalError as e:
                        raise self.err(it.value.pos, f"bad attribute literal: {e}") from None
        plan = plan_pattern(d.match)
        if isinstance(plan, int):
            raise self.err(d.match[plan].pos, "pattern node is not connected to the last (anchor) node")
        for w in d.where:
            self.expr(w, bound, opvars)
        match_values = {k for k, v in binds.items() if v == "value"}
        free = match_values - set(defined_out)
        assigned: set[str] = set()
        for st in d.rewrite:
            if st.op is not None and not self.is_op(st.op, opvars):
                self.op(st.op, st.op_pos, opvars)
            scope = {**bound, **{a: "value" for a in assigned}}
            if st.op is None:
                if len(st.outputs) != 1:
                    raise self.err(st.pos, "a value can replace only one value")
                self.expr(st.value, scope, opvars, in_rewrite=True)
            else:
                for a in st.args:
                    self.expr(a, scope, opvars, in_rewrite=True, spread_ok=True)
                self.attrs(st.attrs, bound, opvars)
            for o, p in zip(st.outputs, st.output_pos or [st.pos] * len(st.outputs)):
                if o == "_":
                    raise self.err(p, "'_' cannot be assigned in a rewrite")
                if o in free:
                    raise self.err(p, f"'{o}' is an input of the pattern and cannot be reassigned")
                if o in assigned:
                    raise self.err(p, f"'{o}' is assigned twice in the rewrite")
                if o in attr_names or o in opvars:
                    raise self.err(p, f"'{o}' is an attribute capture, not a value")
                assigned.add(o)
        for h in d.host:
            for v in h.values:
                if v not in match_values and v not in assigned:
                    raise self.err(h.pos, f"host pin: '{v}' is not a value of the rule")
            self.expr(h.reason, bound, opvars)
        roots = [o for o in d.match[-1].outputs if o != "_"]
        if d.rewrite or not d.host:  # a rule of host pins alone keeps what it matched
            for o in roots:
                if o not in assigned:
                    raise self.err(d.pos, f"rewrite does not assign the replaced root value '{o}'")
        pattern = Pattern(d.match, d.where, plan, literals, opvars, lets)
        return Rule(d.name, d.file, d.pos.line, d.priority, _summary(d), d, pattern, match_values, roots, helpers)


_KIND_TEXT = {
    "attr": "attribute capture",
    "attrs": "attribute dict capture",
    "op": "op variable",
    "values": "list of values",
    "local": "comprehension variable",
    "value": "graph value",
    "const": "constant",
}


def parse_rules(text: str, filename: str = "<string>", helpers=None) -> RuleSet:
    """Parse and check rule text; raises RuleSyntaxError (file:line:col + caret). `helpers` is the
    registry of native helpers the rules may call (none by default: the DSL knows no helper)."""
    helpers = HelperRegistry() if helpers is None else helpers
    defs = parse_text(text, filename)
    checker = _Checker(filename, text if text.endswith("\n") else text + "\n", helpers)
    if defs and defs[0].defs:  # every rule holds the file's defs: checked once
        check_defs(defs[0].defs, defs[0].lets, RESERVED, BUILTINS, helpers, checker.err)
    seen: dict[str, A.RuleDef] = {}
    out = []
    for d in defs:
        if d.name in seen:
            raise checker.err(d.pos, f"duplicate rule name '{d.name}' (first defined at line {seen[d.name].pos.line})")
        seen[d.name] = d
        out.append(checker.compile(d, helpers))
    return RuleSet(out)


def load_rule_files(paths: Iterable[str | Path], helpers=None) -> RuleSet:
    """Load rule files in order into one RuleSet; rule names must be unique across files (a
    duplicate is a one-line error naming both places)."""
    rules = RuleSet()
    where: dict[str, Rule] = {}
    for p in paths:
        p = Path(p)
        text = read_rule_file(p)
        rs = parse_rules(text, str(p), helpers)
        for r in rs:
            if r.name in where:
                first = where[r.name]
                raise RuleSyntaxError(
                    f"duplicate rule name '{r.name}' (first defined at {first.file}:{first.line})",
                    str(p),
                    r.line,
                    r.defn.pos.col,
                )
            where[r.name] = r
        rules = rules + rs
    return rules


def list_rules(rule_files: Iterable[str | Path], helpers=None) -> list[tuple[str, str, int, str]]:
    """(name, file, line, summary) per rule, for the CLI."""
    return [(r.name, r.file, r.line, r.summary) for r in load_rule_files(rule_files, helpers)]
