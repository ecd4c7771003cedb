"""Syntax tree of rule files (what parser.py builds and compile.py checks)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass
class Pos:
    """A place in a rule file: line and column, from 1."""

    line: int
    col: int


@dataclass
class Expr:
    """An expression of a where-clause, rewrite argument or attribute value."""

    pos: Pos
    text: str  # source text, for traces and messages


@dataclass
class Name(Expr):
    """A name: a binding of the pattern, a let, an op variable or `target`."""

    id: str


@dataclass
class Lit(Expr):
    """A literal: number, string, true/false or none."""

    value: Any  # int, float, str, bool or None


@dataclass
class ListE(Expr):
    """`[a, b, ...]`."""

    items: list[Expr]


@dataclass
class Call(Expr):
    """`f(args)`: a helper or built-in; in a rewrite, also an op with `{attrs}`."""

    func: str
    args: list[Expr]
    attrs: list | None = None  # `Op(x) {k: v}` in a rewrite: list[AttrItem]


@dataclass
class Attr(Expr):
    """`obj.name`: a field of a target fact (`target.ops.Conv.group_split`)."""

    obj: Expr
    name: str


@dataclass
class Spread(Expr):
    """`...xs` in the arguments of a rewrite op: the items of a list of values."""

    x: Expr


@dataclass
class ListComp(Expr):
    """`[item for var in seq]`."""

    item: Expr
    var: str
    seq: Expr


@dataclass
class Index(Expr):
    """`obj[index]`."""

    obj: Expr
    index: Expr


@dataclass
class Slice(Expr):
    """`obj[lo:hi]`, either bound left out."""

    obj: Expr
    lo: Expr | None
    hi: Expr | None


@dataclass
class Unary(Expr):
    """`-x` or `not x`."""

    op: str  # "-" or "not"
    x: Expr


@dataclass
class Bin(Expr):
    """`left op right`: arithmetic, comparison, `and`/`or`, `in`."""

    op: str  # + - * / // % == != < <= > >= and or
    left: Expr
    right: Expr


@dataclass
class MatchArg:
    """An input of a pattern node: `x`, `w: const`, `b?`, `...rest`."""

    name: str  # "_" is a wildcard
    const: bool
    optional: bool
    pos: Pos
    rest: bool = False  # `...name`: the list of all remaining inputs


@dataclass
class AttrItem:
    """`key: value` in braces, or `...name` (capture the rest / spread them)."""

    key: str | None  # None for a `...name` spread/rest capture
    value: Expr | None
    rest: str | None
    pos: Pos


@dataclass
class MatchNode:
    """`outs = Op(args) {attrs}` in a match block."""

    outputs: list[str]
    op: str
    args: list[MatchArg]
    attrs: list[AttrItem]
    pos: Pos
    op_pos: Pos
    output_pos: list[Pos] = field(default_factory=list)


@dataclass
class RewriteNode:
    """`outs = Op(args) {attrs}`; with `value` set instead (`y = x`), value y is replaced."""

    outputs: list[str]
    op: str | None
    args: list[Expr]
    attrs: list[AttrItem]
    pos: Pos
    op_pos: Pos
    output_pos: list[Pos] = field(default_factory=list)
    value: Expr | None = None


@dataclass
class OpVar:
    """`op U in {Relu, Sigmoid}` in a match block: U is one of `ops` in each match."""

    name: str
    ops: list[str]
    pos: Pos
    set_name: str | None = None  # the file-level `ops NAME = {...}` it names, if any


@dataclass
class HostPin:
    """`host: "reason"` / `host y, z: "reason"` in a rewrite block."""

    values: list[str]  # empty: every node the rule creates (or, creating none, matched)
    reason: Expr
    pos: Pos


@dataclass
class RuleDef:
    """A rule as written: pattern, where-clauses, rewrite, host pins and its file's lets."""

    name: str
    priority: int
    match: list[MatchNode]
    where: list[Expr]
    rewrite: list[RewriteNode]
    file: str
    pos: Pos
    comment: str | None  # leading `#` comment, used as summary
    opvars: dict = field(default_factory=dict)  # name -> OpVar
    host: list = field(default_factory=list)  # HostPin statements
    lets: dict = field(default_factory=dict)  # file-level `let NAME = expr`: name -> LetDef
    defs: dict = field(default_factory=dict)  # file-level `def NAME(params) = expr`: name -> FuncDef


@dataclass
class LetDef:
    """`let NAME = expr` at file level."""

    name: str
    value: Expr
    pos: Pos


@dataclass
class FuncDef:
    """`def NAME(p, q) = expr` at file level: a named expression over its parameters."""

    name: str
    params: list[str]
    body: Expr
    pos: Pos
    param_pos: list[Pos]


@dataclass
class PatternDef:
    """`pattern NAME:` at file level: match lines (and op variables) a rule splices in with `...NAME`."""

    name: str
    match: list  # MatchNode and OpVar, in written order
    pos: Pos


@dataclass
class FileScope:
    """What every rule of a file reads besides itself: its `let`s and `def`s (stored once in the
    parse cache, not once per rule)."""

    lets: dict
    defs: dict


@dataclass
class OpSetDef:
    """`ops NAME = {Op, ...}` at file level."""

    name: str
    ops: list[str]
    pos: Pos


# the fields of each expression class that hold sub-expressions (a list, an Expr or None); a
# Call's attribute values (`Op(x) {k: v}` in a rewrite) are sub-expressions too
_KIDS = {
    ListE: ("items",),
    Call: ("args",),
    Attr: ("obj",),
    Spread: ("x",),
    ListComp: ("item", "seq"),
    Index: ("obj", "index"),
    Slice: ("obj", "lo", "hi"),
    Unary: ("x",),
    Bin: ("left", "right"),
}


def children(e: Expr) -> list[Expr]:
    """The direct sub-expressions of e."""
    out: list = []
    for name in _KIDS.get(type(e), ()):
        v = getattr(e, name)
        if isinstance(v, list):
            out.extend(v)
        elif v is not None:
            out.append(v)
    if type(e) is Call and e.attrs:
        out.extend(a.value for a in e.attrs if a.value is not None)
    return out


def walk(e: Expr):
    """Yield e and all its sub-expressions."""
    yield e
    for k in children(e):
        yield from walk(k)


def map_attr_values(items: list, f) -> list:
    """`{k: v}` items (AttrItem) with each value v as f(v); `...rest` items as they are."""
    return [replace(a, value=f(a.value)) if a.value is not None else a for a in items]


def map_children(e: Expr, f) -> Expr:
    """e with its direct sub-expressions replaced by f(sub): a copy when f changed one, else e."""
    fields = _KIDS.get(type(e))
    if not fields:
        return e
    changes = {}
    for name in fields:
        v = getattr(e, name)
        changes[name] = [f(k) for k in v] if isinstance(v, list) else None if v is None else f(v)
    if type(e) is Call and e.attrs is not None:
        changes["attrs"] = map_attr_values(e.attrs, f)
    if all(_same(changes[k], getattr(e, k)) for k in changes):
        return e
    return replace(e, **changes)


def _same(new, old) -> bool:
    """The same objects, item by item for lists (AttrItems: the same value object)."""
    if isinstance(new, list):
        return len(new) == len(old) and all(_same(a, b) for a, b in zip(new, old))
    if isinstance(new, AttrItem):
        return new.value is old.value
    return new is old
