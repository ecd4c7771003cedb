"""Syntax tree of rule files (what parser.py builds and compile.py checks)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Pos:
    line: int
    col: int


@dataclass
class Expr:
    pos: Pos
    text: str  # source text, for traces and messages


@dataclass
class Name(Expr):
    id: str


@dataclass
class Lit(Expr):
    value: Any  # int, float, str, bool or None


@dataclass
class ListE(Expr):
    items: list[Expr]


@dataclass
class Call(Expr):
    func: str
    args: list[Expr]


@dataclass
class Index(Expr):
    obj: Expr
    index: Expr


@dataclass
class Slice(Expr):
    obj: Expr
    lo: Expr | None
    hi: Expr | None


@dataclass
class Unary(Expr):
    op: str  # "-" or "not"
    x: Expr


@dataclass
class Bin(Expr):
    op: str  # + - * / // % == != < <= > >= and or
    left: Expr
    right: Expr


@dataclass
class MatchArg:
    name: str  # "_" is a wildcard
    const: bool
    optional: bool
    pos: Pos


@dataclass
class AttrItem:
    key: str | None  # None for a `...name` spread/rest capture
    value: Expr | None
    rest: str | None
    pos: Pos


@dataclass
class MatchNode:
    outputs: list[str]
    op: str
    args: list[MatchArg]
    attrs: list[AttrItem]
    pos: Pos
    op_pos: Pos


@dataclass
class RewriteNode:
    outputs: list[str]
    op: str
    args: list[Expr]
    attrs: list[AttrItem]
    pos: Pos
    op_pos: Pos
    output_pos: list[Pos] = field(default_factory=list)


@dataclass
class RuleDef:
    name: str
    priority: int
    match: list[MatchNode]
    where: list[Expr]
    rewrite: list[RewriteNode]
    file: str
    pos: Pos
    comment: str | None  # leading `#` comment, used as summary


def walk(e: Expr):
    """Yield e and all its sub-expressions."""
    yield e
    kids: list = []
    if isinstance(e, ListE):
        kids = e.items
    elif isinstance(e, Call):
        kids = e.args
    elif isinstance(e, Index):
        kids = [e.obj, e.index]
    elif isinstance(e, Slice):
        kids = [k for k in (e.obj, e.lo, e.hi) if k is not None]
    elif isinstance(e, Unary):
        kids = [e.x]
    elif isinstance(e, Bin):
        kids = [e.left, e.right]
    for k in kids:
        yield from walk(k)
