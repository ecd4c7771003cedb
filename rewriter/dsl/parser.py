"""Rule text -> RuleDef syntax trees, through the parse cache (rewriter/dsl/parse_cache.py); a
file the cache does not hold is parsed by lark (rewriter/dsl/lalr.py)."""

from __future__ import annotations

import copy
import functools
import gc
from pathlib import Path

from . import ast as A
from .errors import RuleError, RuleSyntaxError, located
from .parse_cache import cached_rules


@functools.lru_cache(maxsize=1)
def _grammar() -> str:
    return (Path(__file__).parent / "grammar.lark").read_text()


MAX_NESTING = 200  # tree depth: real rules stay near 10, and the stages after parsing recurse


def read_rule_file(path: Path) -> str:
    """A rule file's text; unreadable or not UTF-8 is a one-line rule error."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise RuleError(f"cannot read rule file {path}: {e.strerror or e}") from e
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise RuleSyntaxError(
            f"not UTF-8 text (byte 0x{data[e.start]:02x}); rule files are UTF-8", str(path), line, col
        ) from None


def parse_text(text: str, filename: str = "<string>") -> list[A.RuleDef]:
    """Parse rule text into RuleDefs (through the disk cache); raise RuleSyntaxError on bad syntax.
    File-level `ops NAME = {...}` sets are resolved into the rules' op variables; every rule holds
    the file's `let`s and `def`s."""
    src = text if text.endswith("\n") else text + "\n"
    paused = gc.isenabled()
    gc.disable()  # the trees hold no cycles to collect; full collections made big files superlinear
    try:
        scope, *rules = cached_rules(lambda s: _parse(s, filename), _grammar(), src, filename)
    finally:
        if paused:
            gc.enable()
    for r in rules:  # every rule reads the file's lets and defs (shared: nothing edits them)
        r.lets, r.defs = scope.lets, scope.defs
    return rules


def _parse(src: str, filename: str) -> list:
    from .lalr import parse_items

    return _resolve_file(parse_items(src, filename), src, filename)


def _resolve_file(items: list, src: str, filename: str) -> list:
    """[FileScope(lets, defs), RuleDef...] of a file's items: op sets resolved into the rules' op
    variables, `...NAME` pattern lines spliced in, names defined twice refused."""
    sets: dict[str, list] = {}
    lets: dict[str, A.LetDef] = {}

    def expand(items: list) -> list[str]:
        out: list[str] = []
        for x in items:
            if isinstance(x, tuple):  # `...NAME`: a set defined earlier in the file
                _, name, pos = x
                if name not in sets:
                    raise located(
                        f"unknown op set '{name}' (define it above with `ops {name} = {{...}}`)",
                        filename,
                        src,
                        pos.line,
                        pos.col,
                    )
                out.extend(sets[name])
            elif x not in out:
                out.append(x)
        return list(dict.fromkeys(out))

    defs: dict[str, A.FuncDef] = {}
    patterns: dict[str, A.PatternDef] = {}
    for it in items:
        if isinstance(it, A.PatternDef):
            if it.name in patterns:
                first = patterns[it.name].pos.line
                raise located(
                    f"pattern '{it.name}' defined twice (first at line {first})", filename, src, it.pos.line, it.pos.col
                )
            patterns[it.name] = it
        if isinstance(it, (A.LetDef, A.FuncDef)):
            first = lets.get(it.name) or defs.get(it.name)
            if first is not None:
                raise located(
                    f"'{it.name}' defined twice (first at line {first.pos.line})",
                    filename,
                    src,
                    it.pos.line,
                    it.pos.col,
                )
            (lets if isinstance(it, A.LetDef) else defs)[it.name] = it
        if isinstance(it, A.OpSetDef):
            if it.name in sets:
                raise located(f"op set '{it.name}' defined twice", filename, src, it.pos.line, it.pos.col)
            sets[it.name] = expand(it.ops)
    rules = [it for it in items if isinstance(it, A.RuleDef)]
    for r in rules:
        _splice_patterns(r, patterns, src, filename)
        for v in r.opvars.values():
            if v.set_name is not None:
                if v.set_name not in sets:
                    raise located(
                        f"unknown op set '{v.set_name}' (define it with `ops {v.set_name} = {{...}}`)",
                        filename,
                        src,
                        v.pos.line,
                        v.pos.col,
                    )
                v.ops = list(sets[v.set_name])
            else:
                v.ops = expand(v.ops)
    return [A.FileScope(lets, defs), *rules]


def _splice_patterns(rule: A.RuleDef, patterns: dict, src: str, filename: str) -> None:
    """`...NAME` lines of the rule's `match:` become the lines of `pattern NAME:` (copies: each
    rule compiles its own), its op variables the rule's."""
    if not any(isinstance(m, tuple) for m in rule.match):
        return
    match: list[A.MatchNode] = []
    for m in rule.match:
        if not isinstance(m, tuple):
            match.append(m)
            continue
        _, name, pos = m
        if name not in patterns:
            raise located(
                f"unknown pattern '{name}' (define it with `pattern {name}:`)", filename, src, pos.line, pos.col
            )
        for line in copy.deepcopy(patterns[name].match):
            if isinstance(line, A.OpVar):
                if line.name in rule.opvars:
                    raise located(
                        f"op variable '{line.name}' of pattern '{name}' is declared by the rule too",
                        filename,
                        src,
                        pos.line,
                        pos.col,
                    )
                rule.opvars[line.name] = line
            else:
                match.append(line)
    rule.match = match
